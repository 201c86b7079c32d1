"""The ledger's settings, for its routes (put on app.state by handlers/ledger.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..configuration import LedgerSettings


# async for the reason given in dependencies.py: no worker thread per request.
async def get_ledger_settings(request: Request) -> LedgerSettings:
    settings: LedgerSettings = request.app.state.ledger_settings
    return settings


LedgerSettingsDep = Annotated[LedgerSettings, Depends(get_ledger_settings)]
