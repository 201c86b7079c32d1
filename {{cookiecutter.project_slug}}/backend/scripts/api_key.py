"""API keys: `make api-key NAME=billing SCOPES="ledger:read"` creates one and prints it,
once (only its hash is stored); `make revoke-api-key NAME=billing` revokes it, and
every worker refuses it within auth.api_key_cache_seconds.

The key's principal has `api-key:<name>` as its subject (the owner of what it
creates: never a token's user, whose subject cannot take that form) and the scopes
given. The environment's settings give the database and the pepper: run
it with the deployment's APP_DATABASE__URL and APP_AUTH__API_KEY_PEPPER."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from {{ cookiecutter.package_name }}.auth.api_keys import new_key, secret_hash
from {{ cookiecutter.package_name }}.configuration import ConfigurationError, load_settings
from {{ cookiecutter.package_name }}.db import api_keys
from {{ cookiecutter.package_name }}.principal import Principal


async def create(name: str, scopes: str) -> str:
    settings = load_settings()
    key_id, secret, key = new_key()
    pepper = settings.auth.api_key_pepper.get_secret_value().encode()
    principal = Principal(name, frozenset(scopes.split()))
    connection = await asyncpg.connect(settings.database.url.get_secret_value())
    try:
        await api_keys.create(
            connection, key_id, name, principal, secret_hash(pepper, key_id, secret)
        )
    finally:
        await connection.close()
    return key


async def revoke(name: str) -> bool:
    settings = load_settings()
    connection = await asyncpg.connect(settings.database.url.get_secret_value())
    try:
        return await api_keys.revoke(connection, name)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    creating = commands.add_parser("create", help="create a key and print it once")
    creating.add_argument("name", help="the key's name; its principal's subject is api-key:<name>")
    creating.add_argument("scopes", nargs="?", default="", help="space-separated scopes")
    revoking = commands.add_parser("revoke", help="revoke the active key of this name")
    revoking.add_argument("name")
    arguments = parser.parse_args()
    try:
        run(arguments)
    except ConfigurationError as error:
        # The keys to fix, as the service prints them, not a traceback.
        sys.exit(f"api-key: {error}")


def run(arguments: argparse.Namespace) -> None:
    if arguments.command == "create":
        try:
            print(asyncio.run(create(arguments.name, arguments.scopes)))
        except asyncpg.UniqueViolationError:
            sys.exit(f"an active key is already named {arguments.name!r}: revoke it first")
        except asyncpg.CheckViolationError:
            sys.exit("a name is 1 to 100 characters")
    elif not asyncio.run(revoke(arguments.name)):
        sys.exit(f"no active key is named {arguments.name!r}")


if __name__ == "__main__":
    main()
