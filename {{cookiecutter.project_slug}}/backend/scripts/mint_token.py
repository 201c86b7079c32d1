"""`make token SUB=alice SCOPES="ledger:read ledger:write"`: print a one-hour token
signed by the development key, which only the local and test configurations trust."""

from __future__ import annotations

import argparse

from {{ cookiecutter.package_name }}.auth.development import mint
from {{ cookiecutter.package_name }}.configuration import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("subject", help="the token's sub claim")
    parser.add_argument("scopes", nargs="?", default="", help="space-separated scopes")
    parser.add_argument("--minutes", type=int, default=60, help="lifetime (default 60)")
    arguments = parser.parse_args()
    audience = load_settings().auth.audience
    print(mint(arguments.subject, arguments.scopes, audience, arguments.minutes * 60))


if __name__ == "__main__":
    main()
