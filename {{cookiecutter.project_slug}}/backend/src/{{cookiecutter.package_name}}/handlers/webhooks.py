"""Webhook subscriptions over HTTP: create (the signing secret is shown once),
list, read, delete, ping one; and the dead letters, deliveries given up on."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated

from fastapi import APIRouter{% if cookiecutter.auth != "none" %}, Depends{% endif %}, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..db import webhooks
from ..domain.events import EVENT_TYPES, ping
from ..domain.webhooks import (
    EVENT_TYPES_MAX,
    URL_MAX_LENGTH,
    DeadLetter,
    InvalidDestinationError,
    Subscription,
    SubscriptionId,
    check_url,
)
{%- if cookiecutter.auth != "none" %}
from .authentication import authentication_problems, require_scope
{%- endif %}
from .dependencies import DatabaseDep, SettingsDep
from .problems import InvalidParam, problem_response, problem_responses

{% if cookiecutter.auth != "none" -%}
# Subscriptions (where events go, with their secrets) and dead letters are the
# operators' business, not any caller's: every route needs this scope. Set on the
# routers, so each route they make carries it (the app lists routes, includes none).
MANAGE_SCOPE = "webhooks:manage"
OPERATORS_ONLY = [Depends(require_scope(MANAGE_SCOPE))]
{% endif -%}
router = APIRouter(
    prefix="/v1/webhook-subscriptions",
    tags=["webhooks"],
{%- if cookiecutter.auth != "none" %}
    dependencies=OPERATORS_ONLY,
    responses=authentication_problems(),
{%- endif %}
)
dead_letters_router = APIRouter(
    prefix="/v1/webhook-dead-letters",
    tags=["webhooks"],
{%- if cookiecutter.auth != "none" %}
    dependencies=OPERATORS_ONLY,
    responses=authentication_problems(),
{%- endif %}
)
SECRET_BYTES = 32
DEAD_LETTERS_MAX = 200


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: Annotated[str, Field(min_length=1, max_length=URL_MAX_LENGTH)]
    event_types: Annotated[
        list[str],
        Field(min_length=1, max_length=EVENT_TYPES_MAX, description=f"Any of {EVENT_TYPES}"),
    ]


class SubscriptionOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    enabled: bool

    @classmethod
    def of(cls, subscription: Subscription) -> SubscriptionOut:
        return cls(
            id=subscription.id,
            url=subscription.url,
            event_types=list(subscription.event_types),
            enabled=subscription.enabled,
        )


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(
        description="The Standard Webhooks signing secret (whsec_…): shown only now."
    )


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def invalid(request: Request, name: str, reason: str) -> Response:
    return problem_response(
        request,
        422,
        detail=f"{name}: {reason}",
        invalid_params=[InvalidParam(name=name, reason=reason)],
    )


def not_found(request: Request, subscription_id: int) -> Response:
    return problem_response(
        request, 404, detail=f"webhook subscription {subscription_id} does not exist"
    )


SubscriptionIdPath = Annotated[int, Field(ge=1, le=2**63 - 1)]


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    operation_id="createWebhookSubscription",
    responses=problem_responses(400, 422, 503),
)
async def create_subscription(
    body: SubscriptionCreate,
    request: Request,
    response: Response,
    database: DatabaseDep,
    settings: SettingsDep,
) -> SubscriptionCreated | Response:
    """Subscribe a URL to event types; deliveries are signed with the returned secret."""
    try:
        url = check_url(body.url, allow_private=settings.webhooks.allow_private_destinations)
    except InvalidDestinationError as error:
        return invalid(request, "url", str(error))
    unknown = sorted(set(body.event_types) - set(EVENT_TYPES))
    if unknown:
        return invalid(request, "event_types", f"unknown {unknown}; accepted: {EVENT_TYPES}")
    secret = new_secret()
    subscription = await webhooks.create_subscription(
        database, url, secret, sorted(set(body.event_types))
    )
    response.headers["Location"] = f"{router.prefix}/{subscription.id}"
    return SubscriptionCreated(**SubscriptionOut.of(subscription).model_dump(), secret=secret)


@router.get(
    "",
    response_model=list[SubscriptionOut],
    operation_id="listWebhookSubscriptions",
    responses=problem_responses(413, 503),
)
async def list_subscriptions(database: DatabaseDep) -> list[SubscriptionOut]:
    return [SubscriptionOut.of(s) for s in await webhooks.list_subscriptions(database)]


@router.get(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    operation_id="getWebhookSubscription",
    responses=problem_responses(404, 422, 503),
)
async def get_subscription(
    subscription_id: SubscriptionIdPath, request: Request, database: DatabaseDep
) -> SubscriptionOut | Response:
    found = await webhooks.get_subscription(database, SubscriptionId(subscription_id))
    return not_found(request, subscription_id) if found is None else SubscriptionOut.of(found)


@router.delete(
    "/{subscription_id}",
    status_code=204,
    operation_id="deleteWebhookSubscription",
    responses=problem_responses(404, 422, 503),
)
async def delete_subscription(
    subscription_id: SubscriptionIdPath, request: Request, database: DatabaseDep
) -> Response:
    if not await webhooks.delete_subscription(database, SubscriptionId(subscription_id)):
        return not_found(request, subscription_id)
    return Response(status_code=204)


@router.post(
    "/{subscription_id}/ping",
    status_code=202,
    operation_id="pingWebhookSubscription",
    responses=problem_responses(404, 409, 422, 503),
)
async def ping_subscription(
    subscription_id: SubscriptionIdPath, request: Request, database: DatabaseDep
) -> Response:
    """Queue a webhook.ping event for this subscription alone."""
    found = await webhooks.get_subscription(database, SubscriptionId(subscription_id))
    if found is None:
        return not_found(request, subscription_id)
    if not found.enabled:
        detail = f"webhook subscription {subscription_id} is disabled"
        return problem_response(request, 409, detail=detail)
    await webhooks.ping(database, ping(found.id, secrets.token_hex(8)), found.id)
    return Response(status_code=202)


@dead_letters_router.get(
    "",
    response_model=list[DeadLetter],
    operation_id="listWebhookDeadLetters",
    responses=problem_responses(422, 503),
)
async def list_dead_letters(
    database: DatabaseDep,
    subscription_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=DEAD_LETTERS_MAX)] = 50,
) -> list[DeadLetter]:
    """Deliveries given up after their last attempt, newest first."""
    return await webhooks.dead_letters(
        database, None if subscription_id is None else SubscriptionId(subscription_id), limit
    )
