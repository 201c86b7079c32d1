"""The principals the ledger's scopes let read or write (the ownership rules that
follow are the domain's: domain/ownership.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ..domain.ownership import READ_SCOPE, WRITE_SCOPE
from ..principal import Principal
from .authentication import require_scope

ReaderDep = Annotated[Principal, Depends(require_scope(READ_SCOPE))]
WriterDep = Annotated[Principal, Depends(require_scope(WRITE_SCOPE))]
