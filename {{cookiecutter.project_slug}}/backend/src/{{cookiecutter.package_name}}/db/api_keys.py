"""API keys' rows: created and revoked by scripts/api_key.py, read by the verifier
(auth/api_keys.py) with the id a key carries. Only the secret's hash is stored."""

from __future__ import annotations

import asyncpg

from ..principal import Principal
from .pool import Database

_FIND = """
SELECT secret_hash, subject, scopes FROM api_keys WHERE id = $1 AND revoked_at IS NULL
"""
_ACTIVE_IDS = "SELECT id FROM api_keys WHERE revoked_at IS NULL LIMIT $1"
_CREATE = """
INSERT INTO api_keys (id, name, subject, scopes, secret_hash) VALUES ($1, $2, $3, $4, $5)
"""
_REVOKE = "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL"


async def find_active(database: Database, key_id: str) -> tuple[bytes, Principal] | None:
    async with database.connection() as connection:
        row = await connection.fetchrow(_FIND, key_id)
    if row is None:
        return None
    return bytes(row["secret_hash"]), Principal(row["subject"], frozenset(row["scopes"]))


async def active_ids(database: Database, limit: int) -> list[str]:
    """The ids of active keys, at most `limit` (in no particular order)."""
    async with database.connection() as connection:
        rows = await connection.fetch(_ACTIVE_IDS, limit)
    return [row["id"] for row in rows]


async def create(
    connection: asyncpg.Connection,
    key_id: str,
    name: str,
    principal: Principal,
    secret_hash: bytes,
) -> None:
    """Raises asyncpg.UniqueViolationError if an active key already has this name."""
    scopes = sorted(principal.scopes)
    await connection.execute(_CREATE, key_id, name, principal.subject, scopes, secret_hash)


async def revoke(connection: asyncpg.Connection, name: str) -> bool:
    """True if an active key of this name was revoked."""
    status = await connection.execute(_REVOKE, name)
    return status != "UPDATE 0"
