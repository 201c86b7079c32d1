#!/usr/bin/env python3
"""Write the local .env docker compose reads: random passwords for the database owner
(POSTGRES_PASSWORD) and the API's role (APP_ROLE_PASSWORD). A value the file already
has is kept; a missing one (a .env from before the variable existed) is appended.
The file is created readable by its owner only. Standard library only.
Usage: python3 scripts/local_env.py .env
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

NAMES = ("POSTGRES_PASSWORD", "APP_ROLE_PASSWORD")


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    existing = path.read_text() if path.exists() else ""
    present = {line.split("=", 1)[0].strip() for line in existing.splitlines() if "=" in line}
    # URL-safe, so the passwords go into database URLs unquoted.
    lines = [f"{name}={secrets.token_urlsafe(24)}" for name in NAMES if name not in present]
    if not lines:
        return 0
    if not existing:
        lines.insert(0, "# Local passwords for docker compose; never commit this file.")
    elif not existing.endswith("\n"):
        lines.insert(0, "")
    # Created with mode 0600 at once: no moment in which others may read the passwords.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as env_file:
        env_file.write("\n".join([*lines, ""]))
    added = ", ".join(line.split("=", 1)[0] for line in lines if "=" in line)
    print(f"local_env: {path}: added {added}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
