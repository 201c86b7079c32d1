"""The API as a Vercel Python function (cloud_target=vercel, optional; DEPLOYMENT.md).

Vercel finds `app` in this file when the Vercel project's root directory is
`backend/`. Every function instance is a process with a pool of its own, and Vercel
starts as many instances as traffic asks for, a number the database never sees
coming. So whatever the configuration says, an instance here opens at most
SERVERLESS_POOL_MAX_SIZE connections, keeps none open while idle, and caches no
prepared statements, because APP_DATABASE__URL must point at a pooler in
transaction mode (PgBouncer, or the provider's pooled endpoint).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Vercel installs the dependencies from pyproject.toml, not this project itself.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from {{ cookiecutter.package_name }}.configuration import Settings, load_settings
from {{ cookiecutter.package_name }}.startup import create_app

SERVERLESS_POOL_MAX_SIZE = 2


def serverless_settings() -> Settings:
    """The configured settings with the pool pinned for one function instance."""
    settings = load_settings()
    pool = settings.database.pool.model_copy(
        update={
            "min_size": 0,
            "max_size": min(settings.database.pool.max_size, SERVERLESS_POOL_MAX_SIZE),
            "statement_cache_size": 0,
        }
    )
    database = settings.database.model_copy(update={"pool": pool})
    return settings.model_copy(update={"database": database})


app = create_app(serverless_settings())
