"""A sample protected route: who the token says the caller is. Give your own routes
the same dependency (PrincipalDep), or require_scope("…") for a scope."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from .authentication import PrincipalDep, authentication_problems

router = APIRouter(prefix="/v1", tags=["identity"])


class Me(BaseModel):
    subject: str
    scopes: list[str]


@router.get("/me", response_model=Me, operation_id="getMe", responses=authentication_problems())
async def get_me(principal: PrincipalDep) -> Me:
    """The caller's subject and the scopes its token grants."""
    return Me(subject=principal.subject, scopes=sorted(principal.scopes))
