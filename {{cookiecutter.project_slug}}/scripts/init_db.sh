#!/usr/bin/env bash
# Create the database if it is missing, then migrate it to the latest revision.
# Safe to run twice. Uses $APP_DATABASE__URL, else scripts/resolve_database.py.
set -euo pipefail

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_bin="$project_root/backend/.venv/bin"
if [[ ! -x "$venv_bin/python" ]]; then
    echo "init_db: no virtual environment in backend/.venv; run 'make install' first" >&2
    exit 1
fi

if [[ -z "${APP_DATABASE__URL:-}" ]]; then
    APP_DATABASE__URL="$(python3 "$project_root/scripts/resolve_database.py")"
fi
export APP_DATABASE__URL

"$venv_bin/python" "$project_root/scripts/create_database.py" "$APP_DATABASE__URL"
cd "$project_root/backend"
"$venv_bin/alembic" upgrade head
echo "init_db: migrated to $("$venv_bin/alembic" current 2>/dev/null | tr -d '\n')"
