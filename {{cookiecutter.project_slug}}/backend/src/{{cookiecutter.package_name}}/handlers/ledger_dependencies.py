"""The ledger's settings, for its routes (put on app.state by handlers/ledger.py){% if cookiecutter.auth != "none" %},
and the principals its scopes let read or write{% endif %}."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..configuration import LedgerSettings
{%- if cookiecutter.auth != "none" %}
from ..domain.ownership import READ_SCOPE, WRITE_SCOPE
from ..principal import Principal
from .authentication import require_scope
{%- endif %}


# async for the reason given in dependencies.py: no worker thread per request.
async def get_ledger_settings(request: Request) -> LedgerSettings:
    settings: LedgerSettings = request.app.state.ledger_settings
    return settings


LedgerSettingsDep = Annotated[LedgerSettings, Depends(get_ledger_settings)]
{%- if cookiecutter.auth != "none" %}
ReaderDep = Annotated[Principal, Depends(require_scope(READ_SCOPE))]
WriterDep = Annotated[Principal, Depends(require_scope(WRITE_SCOPE))]
{%- endif %}
