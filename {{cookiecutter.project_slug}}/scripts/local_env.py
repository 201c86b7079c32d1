#!/usr/bin/env python3
"""Write the local .env docker compose reads: random passwords for the database owner
(POSTGRES_PASSWORD) and the API's role (APP_ROLE_PASSWORD). Never overwrites a file
that exists. Standard library only. Usage: python3 scripts/local_env.py .env
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    if path.exists():
        return 0
    # URL-safe, so the passwords go into database URLs unquoted.
    lines = [
        f"{name}={secrets.token_urlsafe(24)}" for name in ("POSTGRES_PASSWORD", "APP_ROLE_PASSWORD")
    ]
    path.write_text(
        "\n".join(["# Local passwords for docker compose; never commit this file.", *lines, ""])
    )
    path.chmod(0o600)
    print(f"local_env: wrote {path} with random passwords", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
