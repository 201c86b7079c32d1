"""The lean path answers as FastAPI's own handler does, byte for byte, and is taken.

Two apps of the same routes: one adds them with handlers.routes.add_routes (LeanRoute),
the other includes the router as FastAPI's tutorial does (APIRoute, FastAPI's handler).
Each request goes to both; status, headers and body must be the same, 422s included,
with FastAPI's default error handlers and with this service's problem handlers; and
the lean routes reached both through FastAPI's router and through
handlers.lean_dispatch (as the service's app reaches them), which skips FastAPI's
inner stack for the requests the lean path answers, and only for those."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    Security,
)
from fastapi.exceptions import ResponseValidationError
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.responses import PlainTextResponse
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount

from {{ cookiecutter.package_name }}.handlers.lean_dispatch import LeanDispatchMiddleware
from {{ cookiecutter.package_name }}.handlers.lean_route import LeanRoute
from {{ cookiecutter.package_name }}.handlers.problems import register_problem_handlers
from {{ cookiecutter.package_name }}.handlers.routes import add_routes

pytestmark = pytest.mark.anyio


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1)
    quantity: int = Field(ge=1)


class ItemOut(BaseModel):
    id: int
    name: str
    quantity: int
    tag: str | None
    caller: str
    scopes: list[str]


class Token(SecurityBase):
    """A security scheme as handlers.authentication.BearerToken is one."""

    def __init__(self) -> None:
        self.model = HTTPBearerModel()
        self.scheme_name = "token"

    async def __call__(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            raise HTTPException(401, "No token.", headers={"WWW-Authenticate": "Bearer"})
        return header.removeprefix("Bearer ")


token = Token()


async def caller(name: Annotated[str, Depends(token)], security: SecurityScopes) -> str:
    """A sub-dependency of the scheme, reading the scopes its route asks for."""
    if security.scopes and name != "admin":
        raise HTTPException(403, f"Needs {security.scope_str}.")
    return name


class Label(BaseModel):
    """A response model whose after-validator runs on instances too (FastAPI validates
    the returned instance, so the label is upper-cased even after an assignment)."""

    text: str

    @model_validator(mode="after")
    def upper(self) -> Label:
        self.text = self.text.upper()
        return self


class Page:
    """A class dependency whose instances are async callables: FastAPI calls the class
    (in a thread), it does not await it."""

    def __init__(self, size: int = 10) -> None:
        self.size = size

    async def __call__(self) -> int:
        return self.size


async def generated() -> AsyncIterator[str]:
    """A yield dependency: the lean path hands its routes to FastAPI."""
    yield "generated"


router = APIRouter(prefix="/items")


@router.get("/{item_id}", response_model=ItemOut)
async def read_item(
    item_id: Annotated[int, Path(ge=1, le=1000)],
    request: Request,
    who: Annotated[str, Security(caller, scopes=["items:read"])],
    x_tag: Annotated[str | None, Header(max_length=8)] = None,
    quantity: Annotated[int, Query(ge=1, le=10)] = 1,
) -> ItemOut:
    return ItemOut(
        id=item_id,
        name=request.url.path,
        quantity=quantity,
        tag=x_tag,
        caller=who,
        scopes=["items:read"],
    )


@router.post("", status_code=201, response_model=ItemOut)
async def create_item(
    body: ItemIn, response: Response, who: Annotated[str, Depends(caller)]
) -> ItemOut | Response:
    if body.name == "conflict":
        return Response(status_code=409)
    response.headers["Location"] = "/items/7"
    return ItemOut(id=7, name=body.name, quantity=body.quantity, tag=None, caller=who, scopes=[])


@router.get("/{item_id}/plain")
async def read_plain(item_id: Annotated[int, Path(ge=1)]) -> dict[str, Any]:
    """No response model declared: FastAPI's serialization of a dict."""
    return {"id": item_id, "tags": ("a", "b")}


@router.get("/{item_id}/generated")
async def read_generated(
    item_id: Annotated[int, Path(ge=1)], value: Annotated[str, Depends(generated)]
) -> dict[str, Any]:
    return {"id": item_id, "value": value}


@router.get("/{item_id}/label", response_model=Label)
async def read_label(item_id: Annotated[int, Path(ge=1)]) -> Label:
    label = Label(text="item")
    label.text = f"item {item_id}"
    return label


@router.get("/{item_id}/page")
async def read_page(
    item_id: Annotated[int, Path(ge=1)], page: Annotated[Page, Depends(Page)]
) -> dict[str, int]:
    return {"id": item_id, "size": page.size}


@router.get("/{item_id}/broken", response_model=ItemOut)
async def read_broken(item_id: Annotated[int, Path(ge=1)]) -> Any:
    return {"id": item_id}


class Note(BaseModel):
    """A response model with a default, an optional field and an alias: each
    response_model_* option changes what the lean path's direct dump writes."""

    id: int
    text: str = "note"
    tag: str | None = None
    page_size: int = Field(default=10, alias="pageSize")


class SignedNote(Note):
    """Returned where a Note is declared: only Note's fields are written."""

    signature: str = "unsigned"


async def read_note(item_id: Annotated[int, Path(ge=1)]) -> Note:
    if item_id == 2:
        return SignedNote(id=item_id)
    return Note(id=item_id, text="note")  # set, though equal to the default


NOTE_OPTIONS: dict[str, dict[str, Any]] = {
    "as-declared": {},
    "exclude-unset": {"response_model_exclude_unset": True},
    "exclude-defaults": {"response_model_exclude_defaults": True},
    "exclude-none": {"response_model_exclude_none": True},
    "include": {"response_model_include": {"id", "text"}},
    "exclude": {"response_model_exclude": {"text"}},
    "by-name": {"response_model_by_alias": False},
}
for option, arguments in NOTE_OPTIONS.items():
    router.add_api_route("/{item_id}/note-" + option, read_note, response_model=Note, **arguments)


@router.delete("/{item_id}", status_code=204)
async def delete_item(item_id: Annotated[int, Path(ge=1)]) -> None:
    """A status without a body: FastAPI writes none, whatever the endpoint returns."""


@router.get("/{item_id}/unchanged", response_model=Note)
async def read_unchanged(item_id: Annotated[int, Path(ge=1)], response: Response) -> Note:
    """The status set on the sub-response, here one without a body, is the answer's."""
    response.status_code = 304 if item_id == 1 else 203
    return Note(id=item_id)


def app_of(*, lean: bool, problems: bool, dispatch: bool = False) -> FastAPI:
    app = FastAPI()
    if lean:
        add_routes(app.router, router.routes)
    else:
        app.include_router(router)
    if dispatch:
        app.add_middleware(LeanDispatchMiddleware, fastapi_app=app)
    if problems:
        register_problem_handlers(app)
    return app


JSON = {"content-type": "application/json"}
ADMIN = {"authorization": "Bearer admin"}
# (method, path, headers, body, taken by the lean path)
REQUESTS: list[tuple[str, str, dict[str, str], bytes | None, bool]] = [
    ("GET", "/items/3", ADMIN, None, True),
    ("GET", "/items/3?quantity=4", {**ADMIN, "x-tag": "blue"}, None, True),
    ("GET", "/items/3", {"authorization": "Bearer bob"}, None, True),  # 403 from caller
    ("GET", "/items/3", {}, None, True),  # 401 from the scheme
    ("GET", "/items/0", ADMIN, None, False),
    ("GET", "/items/zero?quantity=11", ADMIN, None, False),
    ("GET", "/items/3", {**ADMIN, "x-tag": "far too long"}, None, False),
    ("GET", "/items/0", {}, None, False),  # the scheme runs first: 401, not 422
    ("POST", "/items", {**ADMIN, **JSON}, b'{"name": "pen", "quantity": 2}', True),
    ("POST", "/items", {**ADMIN, **JSON}, b'{"name": "conflict", "quantity": 2}', True),
    ("POST", "/items", {**ADMIN, **JSON}, b'{"name": "pen", "quantity": "2"}', False),
    ("POST", "/items", {**ADMIN, **JSON}, b'{"name": "pen", "quantity": 2, "x": 1}', False),
    ("POST", "/items", {**ADMIN, **JSON}, b'{"name": "pen",', False),
    ("POST", "/items", {**ADMIN, **JSON}, b"\xff\xfe", False),
    ("POST", "/items", {**ADMIN, **JSON}, b"", False),
    ("POST", "/items", ADMIN, b'{"name": "pen", "quantity": 2}', False),
    (
        "POST",
        "/items",
        {**ADMIN, "content-type": "application/json; charset=utf-8"},
        b'{"name": "pen", "quantity": 2}',
        False,
    ),
    ("POST", "/items", {**ADMIN, "content-type": "text/plain"}, b"pen", False),
    # Nested deeper than json's recursion limit: FastAPI's 400, not a 500.
    ("POST", "/items", {**ADMIN, **JSON}, b"[" * 100_000 + b"]" * 100_000, False),
    ("GET", "/items/5/plain", {}, None, True),
    ("GET", "/items/5/label", {}, None, True),
    ("GET", "/items/5/page?size=3", {}, None, False),
    ("GET", "/items/5/generated", {}, None, False),
    *(("GET", f"/items/1/note-{option}", {}, None, True) for option in NOTE_OPTIONS),
    ("GET", "/items/2/note-as-declared", {}, None, True),
    ("GET", "/items/2/note-by-name", {}, None, True),
    ("DELETE", "/items/5", {}, None, True),
    ("GET", "/items/1/unchanged", {}, None, True),
    ("GET", "/items/2/unchanged", {}, None, True),
]


@pytest.fixture
def solved_by_fastapi(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests FastAPI's own handler answers (it looks up the endpoint's
    context for its error messages first, once per request); the lean path never does."""
    calls: list[int] = []
    context_of = fastapi.routing._extract_endpoint_context

    def counted(function: Any) -> Any:
        calls.append(1)
        return context_of(function)

    monkeypatch.setattr(fastapi.routing, "_extract_endpoint_context", counted)
    return calls


@pytest.fixture
def through_fastapis_stack(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests that reach FastAPI's inner stack (its ExceptionMiddleware,
    then the router), which the dispatch skips for the requests the lean path answers."""
    calls: list[int] = []
    call = ExceptionMiddleware.__call__

    async def counted(self: ExceptionMiddleware, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            calls.append(1)
        await call(self, scope, receive, send)

    monkeypatch.setattr(ExceptionMiddleware, "__call__", counted)
    return calls


async def answer(app: FastAPI, request: tuple[str, str, dict[str, str], bytes | None]) -> Any:
    method, path, headers, body = request
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.request(method, path, headers=headers, content=body)
    return response.status_code, response.headers.multi_items(), response.content


@pytest.mark.parametrize("dispatch", [False, True], ids=["router", "dispatch"])
@pytest.mark.parametrize("problems", [False, True], ids=["fastapi-errors", "problem-handlers"])
@pytest.mark.parametrize("request_", REQUESTS, ids=[f"{r[0]} {r[1]} {r[4]}" for r in REQUESTS])
async def test_the_lean_path_answers_as_fastapi_does(
    request_: tuple[str, str, dict[str, str], bytes | None, bool],
    problems: bool,
    dispatch: bool,
    solved_by_fastapi: list[int],
    through_fastapis_stack: list[int],
) -> None:
    *sent, lean = request_
    expected = await answer(app_of(lean=False, problems=problems), tuple(sent))  # type: ignore[arg-type]
    solved_by_fastapi.clear()
    through_fastapis_stack.clear()
    app = app_of(lean=True, problems=problems, dispatch=dispatch)
    answered = await answer(app, tuple(sent))  # type: ignore[arg-type]

    assert answered == expected
    assert (not solved_by_fastapi) is lean
    # Dispatched, a request the lean path answers skips FastAPI's stack; one it
    # declines goes through it once, from the start.
    assert len(through_fastapis_stack) == (1 if not dispatch or not lean else 0)


# Every request the lean path answers, and the one FastAPI refuses as not JSON (our
# 422 handler breaks the cycle FastAPI's error makes with its cause).
FREED_REQUESTS = [request_[:4] for request_ in REQUESTS if request_[4]] + [
    ("POST", "/items", {**ADMIN, **JSON}, b'{"name": "pen",')
]


@pytest.mark.parametrize(
    "request_", FREED_REQUESTS, ids=[f"{r[0]} {r[1]} {r[3]!r}" for r in FREED_REQUESTS]
)
async def test_a_request_leaves_no_reference_cycle(
    request_: tuple[str, str, dict[str, str], bytes | None],
) -> None:
    """Its Request, and all it refers to, is freed when the request ends, not at the
    garbage collector's next pass: a worker's collections find less, and sooner."""
    app = app_of(lean=True, problems=True, dispatch=True)
    await answer(app, request_)  # the dispatch's table and first-use caches
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await answer(app, request_)
        gc.collect()
        kept = [found for found in gc.garbage if isinstance(found, Request)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert kept == []


# Not a lean route's: 404, 405 and the slash redirect stay FastAPI's router's.
UNROUTED = [("GET", "/nowhere"), ("PUT", "/items/3"), ("GET", "/items/"), ("OPTIONS", "/items")]


@pytest.mark.parametrize(("method", "path"), UNROUTED)
async def test_what_no_lean_route_answers_goes_to_fastapis_stack(
    method: str, path: str, through_fastapis_stack: list[int]
) -> None:
    sent: tuple[str, str, dict[str, str], bytes | None] = (method, path, {}, None)
    expected = await answer(app_of(lean=True, problems=True), sent)
    through_fastapis_stack.clear()
    answered = await answer(app_of(lean=True, problems=True, dispatch=True), sent)
    assert answered == expected
    assert through_fastapis_stack == [1]


async def test_a_route_of_another_kind_first_keeps_the_routers_order(
    through_fastapis_stack: list[int],
) -> None:
    """A Mount before the lean routes may match their paths: the router decides."""
    app = FastAPI()
    app.router.routes.append(Mount("/items/3", app=PlainTextResponse("mounted")))
    add_routes(app.router, router.routes)
    app.add_middleware(LeanDispatchMiddleware, fastapi_app=app)
    mounted = await answer(app, ("GET", "/items/3/plain", {}, None))
    other = await answer(app, ("GET", "/items/4/plain", {}, None))
    assert (mounted[0], mounted[2]) == (200, b"mounted")
    assert (other[0], other[2]) == (200, b'{"id":4,"tags":["a","b"]}')
    assert through_fastapis_stack == [1, 1]


async def test_routes_changed_after_the_first_request_are_the_routers(
    through_fastapis_stack: list[int],
) -> None:
    """The table follows the router's list: a route put first or taken away after the
    first request answers, or stops answering, as with the router."""
    app = app_of(lean=True, problems=False, dispatch=True)
    assert (await answer(app, ("GET", "/items/3/plain", {}, None)))[0] == 200
    app.router.routes.insert(0, Mount("/items/3", app=PlainTextResponse("mounted")))
    mounted = await answer(app, ("GET", "/items/3/plain", {}, None))
    del app.router.routes[0]
    plain = "/items/{item_id}/plain"
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != plain]
    removed = await answer(app, ("GET", "/items/3/plain", {}, None))
    assert (mounted[0], mounted[2]) == (200, b"mounted")
    assert removed[0] == 404


async def started(app: FastAPI) -> None:
    """The app's lifespan, as a server runs it before any request: FastAPI builds its
    middleware stack (its ExceptionMiddleware and the handlers it holds) then."""
    events = iter(({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}))

    async def receive() -> dict[str, str]:
        return next(events)

    async def send(message: Any) -> None:
        pass

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)


@pytest.mark.parametrize("dispatch", [False, True], ids=["router", "dispatch"])
async def test_exception_handlers_are_those_fastapis_stack_holds(dispatch: bool) -> None:
    """One added once the app has started reaches neither FastAPI's stack nor the lean path."""
    app = app_of(lean=True, problems=False, dispatch=dispatch)
    await started(app)
    app.add_exception_handler(401, lambda request, exc: PlainTextResponse("late", 499))
    status, _, body = await answer(app, ("GET", "/items/3", {}, None))
    assert (status, body) == (401, b'{"detail":"No token."}')


async def test_the_dispatch_must_be_the_innermost_middleware() -> None:
    """Outside another middleware it would skip it: the app refuses to start."""
    app = app_of(lean=True, problems=False)
    app.add_middleware(GZipMiddleware)
    app.add_middleware(LeanDispatchMiddleware, fastapi_app=app)
    with pytest.raises(TypeError, match="innermost"):
        app.build_middleware_stack()


async def test_routes_with_what_the_lean_path_lacks_keep_fastapis_handler() -> None:
    app = app_of(lean=True, problems=False)
    lean = {route.path: route.lean for route in app.routes if isinstance(route, LeanRoute)}
    assert lean == {
        "/items/{item_id}": True,
        "/items": True,
        "/items/{item_id}/plain": True,
        "/items/{item_id}/generated": False,
        "/items/{item_id}/label": True,
        "/items/{item_id}/page": False,
        "/items/{item_id}/broken": True,
        **{"/items/{item_id}/note-" + option: True for option in NOTE_OPTIONS},
        "/items/{item_id}/unchanged": True,
    }


async def test_a_response_validation_error_names_the_endpoint_as_fastapis_does() -> None:
    """The 500's logged message says which endpoint returned what (file, line, route)."""
    messages = []
    for lean in (False, True):
        app = app_of(lean=lean, problems=False)

        async def recorded(_: Request, exc: Exception) -> PlainTextResponse:
            messages.append(str(exc))
            return PlainTextResponse("", 500)

        app.add_exception_handler(ResponseValidationError, recorded)
        status, _, _ = await answer(app, ("GET", "/items/5/broken", {}, None))
        assert status == 500
    assert messages[1] == messages[0]
    assert "GET /items/{item_id}/broken" in messages[1]


@pytest.mark.parametrize("dispatch", [False, True], ids=["router", "dispatch"])
async def test_dependency_overrides_hand_requests_to_fastapi(
    dispatch: bool, solved_by_fastapi: list[int]
) -> None:
    async def overridden(name: Annotated[str, Depends(token)]) -> str:
        return f"{name}, overridden"

    app = app_of(lean=True, problems=False, dispatch=dispatch)
    app.dependency_overrides[caller] = overridden
    status, _, body = await answer(app, ("GET", "/items/3", ADMIN, None))

    assert (status, solved_by_fastapi) == (200, [1])
    assert b'"caller":"admin, overridden"' in body


async def test_the_openapi_document_is_fastapis() -> None:
    lean, included = app_of(lean=True, problems=True), app_of(lean=False, problems=True)
    assert lean.openapi() == included.openapi()
