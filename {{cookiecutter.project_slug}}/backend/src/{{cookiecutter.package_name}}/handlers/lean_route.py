"""A FastAPI route class whose routes answer through a lean path, prepared once per route.

FastAPI's own handler is general: per request it parses the Content-Type with the
email package, walks the dependency tree looking up overrides, generators and
thread pools, builds a sub-response every route may or may not use, opens two
AsyncExitStacks, and validates the endpoint's returned model again before
serializing it. `LeanRoute` looks at the route once, at startup, and when it uses
only what the lean path supports (path, query and header parameters that are plain
scalars; one JSON body model; Request, Response and SecurityScopes parameters;
dependencies that are async callables, sub-dependencies and security schemes
included, cached per request as FastAPI caches them), runs that tree directly.

Every parameter is validated before any dependency runs (validation has no side
effects); if any is missing or invalid, or the body is not plain JSON, the request
is handed to FastAPI's own handler, which answers it from the start: a 422 (or the
401 of a dependency that runs first) is FastAPI's own, byte for byte. So are
requests while `dependency_overrides` are set or FastAPI's native telemetry is on,
and every route that uses anything else (yield dependencies, sync dependencies or
endpoints, forms, streams, background tasks, ...). Routes, OpenAPI and exception
handlers are FastAPI's: only how a supported request is answered changes. Only a
route in the app's own list takes the lean path (handlers.routes.add_routes):
FastAPI answers the routes of an included router with its handler, whatever their class.

Hand-written because FastAPI has no such mode; it reads FastAPI's Dependant and
ModelField, and prepares nothing (FastAPI's path then) if their shape is not the
one expected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute, serialize_response
from fastapi.security import SecurityScopes
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel, ValidationError
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

# FastAPI's own reading of parameters, aliases and dependency caching, so that the
# lean path reads a request as FastAPI does. Internal names: with a FastAPI that
# lacks them, every route keeps FastAPI's handler (and test_routes.py says so).
try:
    from fastapi._compat import field_annotation_is_sequence
    from fastapi.dependencies.models import (
        _get_cache_key,
        _get_oauth_scopes,
        _is_async_gen_callable,
        _is_coroutine_callable,
        _is_gen_callable,
    )
    from fastapi.dependencies.utils import _get_param_aliases, _get_param_model, _is_json_field
    from fastapi.routing import _extract_endpoint_context
except ImportError:  # pragma: no cover - another FastAPI
    FASTAPI_INTERNALS = False
else:
    FASTAPI_INTERNALS = True

# Parameter sources the lean path reads, and the request attribute each comes from.
_SOURCES = ("path", "query", "header")
_JSON = "application/json"
# A value the request did not send: FastAPI's Undefined plays this part.
_MISSING = object()
_IMMUTABLE = frozenset({type(None), bool, int, float, str, bytes})


class _UnsupportedError(Exception):
    """The route uses something the lean path does not do: FastAPI's path answers."""


class _FallbackError(Exception):
    """This request is FastAPI's to answer (a parameter is missing or invalid, ...)."""


@dataclass
class _Param:
    name: str
    alias: str
    source: str
    # pydantic-core's validation of the field, as FastAPI's ModelField.validate calls it
    # (through two Python wrappers that add nothing here); raises ValidationError.
    validate: Callable[..., Any]
    required: bool
    default: Any
    copy_default: bool


@dataclass
class _Node:
    """One dependant of the tree: the endpoint or one of its dependencies."""

    call: Callable[..., Any]
    name: str | None
    use_cache: bool
    cache_key: Any
    params: list[_Param]
    request_name: str | None
    response_name: str | None
    scopes_name: str | None
    scopes: list[str]
    children: list[_Node] = field(default_factory=list)


def _scalar_param(model_field: Any, source: str) -> _Param:
    info = model_field.field_info
    if (
        _get_param_model(model_field) is not None
        or _is_json_field(model_field)
        or field_annotation_is_sequence(info.annotation)
    ):
        raise _UnsupportedError
    aliases = _get_param_aliases(model_field)
    if len(aliases) != 1 or aliases[0][0] != aliases[0][1]:
        raise _UnsupportedError
    if not info.is_required() and info.validate_default:
        raise _UnsupportedError
    default = model_field.default
    return _Param(
        model_field.name,
        aliases[0][1],
        source,
        _validator(model_field),
        info.is_required(),
        default,
        # FastAPI copies the default for each request; an immutable one needs no copy.
        copy_default=type(default) not in _IMMUTABLE,
    )


def _validator(model_field: Any) -> Callable[..., Any]:
    """What ModelField.validate runs: its TypeAdapter's validator, from attributes."""
    return partial(model_field._type_adapter.validator.validate_python, from_attributes=True)


def _dump_options(route: APIRoute) -> dict[str, Any]:
    """The route's response_model_* arguments, as serialize_response takes them."""
    return {
        "include": route.response_model_include,
        "exclude": route.response_model_exclude,
        "by_alias": route.response_model_by_alias,
        "exclude_unset": route.response_model_exclude_unset,
        "exclude_defaults": route.response_model_exclude_defaults,
        "exclude_none": route.response_model_exclude_none,
    }


def _node(dependant: Dependant, *, root: bool) -> _Node:
    call = dependant.call
    if (
        call is None
        or dependant.cookie_params
        or (dependant.body_params and not root)
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.concurrency is not None
        or not _is_async_callable(call)
    ):
        raise _UnsupportedError
    scopes = _get_oauth_scopes(dependant=dependant)
    return _Node(
        call=call,
        name=dependant.name,
        use_cache=dependant.use_cache,
        cache_key=_get_cache_key(dependant=dependant),
        params=[
            _scalar_param(model_field, source)
            for source in _SOURCES
            for model_field in getattr(dependant, f"{source}_params")
        ],
        request_name=dependant.request_param_name,
        response_name=dependant.response_param_name,
        scopes_name=dependant.security_scopes_param_name,
        scopes=scopes,
        children=[_node(child, root=False) for child in dependant.dependencies],
    )


def _is_async_callable(call: Callable[..., Any]) -> bool:
    """What FastAPI awaits (a coroutine function, an object whose __call__ is one such as
    a security scheme), by FastAPI's own test: a class is called in a thread even when
    its instances' __call__ is async. Not a generator (a yield dependency needs
    FastAPI's exit stacks)."""
    return bool(
        _is_coroutine_callable(call)
        and not _is_gen_callable(call)
        and not _is_async_gen_callable(call)
    )


def _passes_instances_through(model: type[BaseModel]) -> bool:
    """Whether validating an instance of `model` returns it unchanged: its core schema
    is the model itself. An after or wrap model_validator wraps it and runs on
    instances too (a before one, and field validators, do not)."""
    schema: Any = model.__pydantic_core_schema__
    if schema["type"] == "definitions":
        schema = schema["schema"]
    return bool(schema["type"] == "model")


def _walk(node: _Node) -> list[_Node]:
    return [node, *(descendant for child in node.children for descendant in _walk(child))]


def _source_of(request: Request, source: str) -> Any:
    if source == "path":
        return request.path_params
    if source == "query":
        return request.query_params
    return request.headers


class _Plan:
    """What a route's lean path does, decided once: raises _UnsupportedError if it can't."""

    def __init__(self, route: APIRoute) -> None:
        if (
            not FASTAPI_INTERNALS
            or route.is_sse_stream
            or route.is_json_stream
            or route._embed_body_fields
            or getattr(route, "max_body_size", None) is not None
            or route.dependant.call is None
            or not _is_async_callable(route.dependant.call)
        ):
            raise _UnsupportedError
        self.root = _node(route.dependant, root=True)
        self.nodes = _walk(self.root)
        self.sources = sorted({param.source for node in self.nodes for param in node.params})
        self.uses_response = any(node.response_name for node in self.nodes)
        self.body_name: str | None = None
        self.validate_body = _validator(route.body_field) if route.body_field else None
        if route.dependant.body_params:
            (body_param,) = route.dependant.body_params
            if type(body_param.field_info) is not params.Body:
                raise _UnsupportedError
            self.body_name = body_param.name
        self.route = route
        self.response_field = route.response_field
        self.dump_options = _dump_options(route)
        self.status_code = route.status_code
        # Whether the route's own status allows a body, decided once.
        self.body_allowed = route.status_code is None or is_body_allowed_for_status_code(
            route.status_code
        )
        self.use_dump_json = route.response_field is not None and isinstance(
            route.response_class, DefaultPlaceholder
        )
        # An instance of exactly the response model needs no validation before its
        # serialization (pydantic would pass it through unchanged), only the dump.
        model = route.response_model
        self.exact_model: type[BaseModel] | None = None
        self.dump_exact: Callable[[Any], bytes] | None = None
        if (
            self.use_dump_json
            and route.response_field is not None
            and isinstance(model, type)
            and issubclass(model, BaseModel)
            and model.model_config.get("revalidate_instances", "never") == "never"
            and _passes_instances_through(model)
        ):
            self.exact_model = model
            # What ModelField.serialize_json runs, through TypeAdapter.dump_json (two
            # wrappers that pass 16 keywords on): pydantic-core's to_json, given only
            # the options that differ from its defaults (the same as dump_json's).
            defaults = {"include": None, "exclude": None, "by_alias": None}
            options = {
                name: value
                for name, value in self.dump_options.items()
                if value != defaults.get(name, False)
            }
            to_json = route.response_field._type_adapter.serializer.to_json
            self.dump_exact = partial(to_json, **options)
        self.response_class = (
            route.response_class.value
            if isinstance(route.response_class, DefaultPlaceholder)
            else route.response_class
        )

    def validated(self, request: Request) -> list[dict[str, Any]]:
        """Every node's parameters, validated; _FallbackError if one is missing or invalid."""
        sources = {source: _source_of(request, source) for source in self.sources}
        validated = []
        for node in self.nodes:
            values: dict[str, Any] = {}
            for param in node.params:
                value = sources[param.source].get(param.alias)
                if value is None:
                    if param.required:
                        raise _FallbackError
                    values[param.name] = (
                        deepcopy(param.default) if param.copy_default else param.default
                    )
                    continue
                try:
                    values[param.name] = param.validate(value)
                except ValidationError:
                    raise _FallbackError from None
            validated.append(values)
        return validated

    async def body(self, request: Request) -> Any:
        if self.validate_body is None:
            return _MISSING
        if request.headers.get("content-type") != _JSON:
            raise _FallbackError  # FastAPI parses other media types, and answers empty bodies
        try:
            raw = await request.body()
        except HTTPException:
            raise  # the body limit's 413, answered as FastAPI answers it
        except Exception:
            raise _FallbackError from None
        if not raw:
            raise _FallbackError
        try:
            document = json.loads(raw)
        # Not JSON, not UTF-8, or nested past the recursion limit (a RecursionError):
        # FastAPI answers each with its 400.
        except Exception:
            raise _FallbackError from None
        try:
            return self.validate_body(document)
        except ValidationError:
            raise _FallbackError from None

    async def respond(self, request: Request) -> Response:
        """The endpoint's response; _FallbackError before any dependency has run, if FastAPI
        must answer instead."""
        validated = self.validated(request)
        body = await self.body(request)
        sub_response: Response | None = None
        if self.uses_response:
            sub_response = Response()
            del sub_response.headers["content-length"]
            sub_response.status_code = None  # type: ignore[assignment]
        endpoint_values = await _values_of(self.root, iter(validated), {}, request, sub_response)
        if self.body_name is not None:
            endpoint_values[self.body_name] = body
        content = await self.root.call(**endpoint_values)
        if isinstance(content, Response):
            return content
        try:
            return await self._serialized(content, sub_response)
        except ResponseValidationError as error:
            # With the endpoint's file, line and route in its message, as FastAPI's.
            context = dict(_extract_endpoint_context(self.root.call))
            mount_path = request.scope.get("root_path", "").rstrip("/")
            context["path"] = f"{request.method} {mount_path}{self.route.dependant.path}"
            raise ResponseValidationError(
                error.errors(),
                body=error.body,
                endpoint_ctx=context,  # type: ignore[arg-type]
            ) from None

    async def _serialized(self, content: Any, sub_response: Response | None) -> Response:
        """As FastAPI's handler builds the response from the endpoint's return value."""
        status_code = self.status_code
        body_allowed = self.body_allowed
        if sub_response is not None and sub_response.status_code:
            status_code = sub_response.status_code
            body_allowed = is_body_allowed_for_status_code(status_code)
        if self.dump_exact is not None and type(content) is self.exact_model:
            body = self.dump_exact(content)
        else:
            body = await serialize_response(
                field=self.response_field,
                response_content=content,
                dump_json=self.use_dump_json,
                **self.dump_options,
            )
        if self.use_dump_json:
            if status_code is None:
                response = Response(body, media_type=_JSON)
            else:
                response = Response(body, status_code, media_type=_JSON)
        elif status_code is None:
            response = self.response_class(body)
            # The class's own default status, which may not allow a body.
            body_allowed = is_body_allowed_for_status_code(response.status_code)
        else:
            response = self.response_class(body, status_code=status_code)
        if not body_allowed:
            response.body = b""
        if sub_response is not None:
            response.headers.raw.extend(sub_response.headers.raw)
        return response


async def _values_of(
    node: _Node,
    positions: Iterator[dict[str, Any]],
    cache: dict[Any, Any],
    request: Request,
    sub_response: Response | None,
) -> dict[str, Any]:
    """The arguments of `node`: its validated parameters (the next of `positions`, in
    _walk's order) and its dependencies' values, solved depth first, each cached per
    request as FastAPI caches them. A function of its own, not a closure in respond():
    a closure that calls itself holds itself in its own cell, a reference cycle that
    kept each request's Request, and all it refers to, until the garbage collector's
    next pass."""
    values = next(positions)
    for child in node.children:
        child_values = await _values_of(child, positions, cache, request, sub_response)
        if child.use_cache and child.cache_key in cache:
            solved = cache[child.cache_key]
        else:
            solved = await child.call(**child_values)
        if child.name is not None:
            values[child.name] = solved
        cache.setdefault(child.cache_key, solved)
    if node.request_name:
        values[node.request_name] = request
    if node.response_name:
        values[node.response_name] = sub_response
    if node.scopes_name:
        values[node.scopes_name] = SecurityScopes(scopes=list(node.scopes))
    return values


def _replaying(request: Request, receive: Receive) -> Receive:
    """`receive` as FastAPI's handler needs it: the body again, if the lean path read it."""
    body: bytes | None = getattr(request, "_body", None)
    if body is None:
        return receive
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# Set in the scope when FastAPI's handler must answer a request the lean path declined
# (handlers.lean_dispatch hands it to FastAPI's stack, whose router calls the route again).
HANDED_OVER = "lean_route.handed_over"


class LeanRoute(APIRoute):
    """An APIRoute (same declaration, OpenAPI and exception handlers) that answers
    through the lean path when the route allows it; `lean` says whether it does."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        try:
            plan = _Plan(self)
        except (_UnsupportedError, AttributeError, TypeError, ValueError):
            self.lean = False
            return
        self.lean = True
        self._plan = plan
        self._fastapi_app = self.app
        self.app = self._app

    def fastapi_answers(self, scope: Scope) -> bool:
        """Whether FastAPI's handler answers this request rather than the lean path."""
        provider = self.dependency_overrides_provider
        return bool(
            scope.get("fastapi.telemetry") is not None
            or HANDED_OVER in scope
            or (provider is not None and provider.dependency_overrides)
        )

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answers through the lean path (the app's exception handlers answer what it
        raises, as scope["starlette.exception_handlers"] names them), or declines: then
        returns the `receive` FastAPI's handler must read instead (the body again)."""
        request = Request(scope, receive, send)
        handed_over = False
        plan = self._plan

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            nonlocal handed_over
            try:
                response = await plan.respond(request)
            except _FallbackError:
                handed_over = True
                return
            await response(scope, receive, send)

        await wrap_app_handling_exceptions(answer, request)(scope, receive, send)
        return _replaying(request, receive) if handed_over else None

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route's app, as Starlette's router calls it."""
        if not self.fastapi_answers(scope):
            replay = await self.answer(scope, receive, send)
            if replay is None:
                return
            receive = replay
        await self._fastapi_app(scope, receive, send)
