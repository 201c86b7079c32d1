#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432: start the Debian cluster if it
# is installed but stopped. Rendered projects find their own database otherwise
# (their scripts/resolve_database.py), so a missing server is not an error here.
set -euo pipefail

if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    exit 0
fi
if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)"
    echo "starting PostgreSQL $version (cluster main)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
else
    echo "no PostgreSQL on 127.0.0.1:5432; rendered projects will start a throwaway cluster if they can"
fi
