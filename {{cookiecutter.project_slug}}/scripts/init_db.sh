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
if ! upgrade_log="$("$venv_bin/alembic" upgrade head 2>&1)"; then
    echo "$upgrade_log" >&2
    # Two projects rendered with the same name share the default database name.
    if grep -q "Can't locate revision" <<<"$upgrade_log"; then
        echo "init_db: the database is at a revision this project does not have: another" \
            "project migrated it. Set APP_DATABASE__URL to a database of this project's own." >&2
    fi
    exit 1
fi
echo "$upgrade_log" >&2
echo "init_db: migrated to $("$venv_bin/alembic" current 2>/dev/null | tr -d '\n')"
