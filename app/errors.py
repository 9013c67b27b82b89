"""Domain errors carry their HTTP status; one set of handlers renders every error as RFC 9457
`application/problem+json` with `type`, `title`, `status`, `detail` (and `errors` naming the
fields that failed validation)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout as AsyncPoolTimeout
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("undersigned.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://undersigned.dev/problems/"


class AppError(Exception):
    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(
        self, detail: str, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}


class NotFound(AppError):
    status, title, slug = 404, "Not found", "not-found"


class NotAcceptable(AppError):
    status, title, slug = 406, "Not acceptable", "not-acceptable"


class Conflict(AppError):
    status, title, slug = 409, "Conflict", "conflict"


class Invalid(AppError):
    """Input that parsed but breaks a rule. `field` names where (`body.published_on`)."""

    status, title, slug = 422, "Invalid input", "invalid"

    def __init__(self, detail: str, *, field: str | None = None, extra: dict[str, Any] | None = None):
        errors = [{"loc": field.split("."), "field": field, "msg": detail}] if field else []
        merged = {"errors": errors, **(extra or {})} if errors else dict(extra or {})
        super().__init__(f"{field}: {detail}" if field else detail, extra=merged)


class Unauthorized(AppError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str):
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="undersigned"'})


class Forbidden(AppError):
    status, title, slug = 403, "Forbidden", "forbidden"


class PayloadTooLarge(AppError):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(AppError):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class Moved(AppError):
    """An actor id that was merged into another: 301 for reads (308 for writes, which keep their
    method and body) to the same path under the kept actor's id."""

    status, title, slug = 301, "Moved permanently", "moved"

    def __init__(self, detail: str, *, old_id: int, new_id: int):
        super().__init__(detail, extra={"actor_id": new_id})
        self.old_id = old_id
        self.new_id = new_id

    def location(self, request: Request) -> str:
        path = request.url.path.replace(f"/actors/{self.old_id}", f"/actors/{self.new_id}", 1)
        query = request.url.query
        return path + (f"?{query}" if query else "")


class Unavailable(AppError):
    status, title, slug = 503, "Service unavailable", "unavailable"


# One type per status wherever it is raised (a route, the framework, a middleware): a client
# tells problems apart by `type`, so a 413 from the body limit and one from a route must agree.
HTTP_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("Bad request", "bad-request"),
    401: ("Unauthorized", "unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("Not found", "not-found"),
    405: ("Method not allowed", "method-not-allowed"),
    406: ("Not acceptable", "not-acceptable"),
    408: ("Request timeout", "request-timeout"),
    409: ("Conflict", "conflict"),
    413: ("Payload too large", "payload-too-large"),
    415: ("Unsupported media type", "unsupported-media-type"),
    422: ("Invalid input", "invalid"),
    429: ("Too many requests", "too-many-requests"),
    500: ("Internal server error", "internal"),
    503: ("Service unavailable", "unavailable"),
}


def problem_bytes(status: int, detail: str, **extra: Any) -> bytes:
    """A problem document as bytes, for the middlewares that answer before any route."""
    title, slug = HTTP_PROBLEMS.get(status, ("Error", str(status)))
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return json.dumps(body).encode()


def problem(status: int, title: str, detail: str, *, slug: str | None = None, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + (slug or str(status)), "title": title, "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    status = exc.status
    if isinstance(exc, Moved):
        status = 301 if request.method in ("GET", "HEAD") else 308
        exc.headers["Location"] = exc.location(request)
    response = problem(status, exc.title, exc.detail, slug=exc.slug, **exc.extra)
    response.headers.update(exc.headers)
    return response


async def _refused_first(request: Request) -> JSONResponse | None:
    """A write route's 401 or 403, before anything is said about its input."""
    from app.auth import key_before_validation  # (auth renders its refusals with these errors)

    try:
        await key_before_validation(request)
    except AppError as refused:
        return await _app_error(request, refused)
    return None


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if (refused := await _refused_first(request)) is not None:
        return refused
    errors = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        errors.append(
            {"loc": loc, "field": _field(loc), "msg": err.get("msg", "invalid"), "type": err.get("type")}
        )
    detail = "; ".join(f"{e['field']}: {e['msg']}" for e in errors[:10]) or "invalid input"
    return problem(422, "Invalid input", detail, slug="invalid", errors=errors)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (FastAPI makes one route per method)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        if (refused := await _refused_first(request)) is not None:
            return refused
        # A body that is not JSON (or not the declared encoding): invalid input, in the body.
        errors = [{"loc": ["body"], "field": "body", "msg": "not valid JSON", "type": "json_invalid"}]
        return problem(422, "Invalid input", "body: not valid JSON", slug="invalid", errors=errors)
    title, slug = HTTP_PROBLEMS.get(exc.status_code, ("Error", str(exc.status_code)))
    response = problem(exc.status_code, title, str(exc.detail), slug=slug)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        response.headers["Allow"] = _allowed_methods(request)
    return response


async def _out_of_range(_request: Request, exc: Exception) -> JSONResponse:
    # A number the database cannot hold (an id past 64 bits on SQLite, 32 bits on PostgreSQL).
    log.info("value out of range: %s", exc)
    return problem(422, "Invalid input", "a number in the request is out of range", slug="invalid")


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    # Unique and foreign-key violations that a service did not turn into a clearer error.
    log.info("integrity error: %s", exc)
    return problem(
        409,
        "Conflict",
        "the write conflicts with existing data (a duplicate or a missing reference)",
        slug="conflict",
    )


async def _operational_error(_request: Request, exc: Exception) -> JSONResponse:
    text = str(exc).lower()
    if "statement timeout" in text or "canceling statement" in text or "database is locked" in text:
        response = problem(
            503, "Service unavailable", "the database took too long; try again shortly", slug="unavailable"
        )
        response.headers["Retry-After"] = "5"
        return response
    raise exc


async def _pool_timeout(_request: Request, exc: Exception) -> JSONResponse:
    # Every connection is busy (long requests, a burst): the caller should come back shortly.
    log.warning("no database connection free: %s", exc)
    response = problem(
        503, "Service unavailable", "the service is busy; try again shortly", slug="unavailable"
    )
    response.headers["Retry-After"] = "5"
    return response


async def _too_deep(_request: Request, exc: Exception) -> JSONResponse:
    # Input nested past what the parsers recurse through (the body middleware refuses most first).
    log.info("recursion in a request: %s", exc)
    return problem(422, "Invalid input", "the input is nested too deeply", slug="invalid")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """The last resort: a bug. Still problem+json, with the request id to quote in a report
    (the traceback goes to the log, under the same id)."""
    request_id = str(getattr(request.state, "request_id", "") or "")
    log.error("unexpected error (request %s)", request_id, exc_info=exc)
    response = problem(
        500,
        "Internal server error",
        f"an unexpected error; quote request id {request_id} when reporting it",
        slug="internal",
        request_id=request_id,
    )
    response.headers["X-Request-ID"] = request_id
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(OperationalError, _operational_error)
    app.add_exception_handler(DataError, _out_of_range)
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(PoolTimeout, _pool_timeout)
    app.add_exception_handler(AsyncPoolTimeout, _pool_timeout)  # the hot reads' own small pool
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(Exception, _unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the problem documents it may answer with, for an honest OpenAPI."""
    described = {
        301: "The actor was merged into another: `Location` names it",
        401: "No valid API key",
        403: "The key lacks the scope",
        404: "Unknown slug or id",
        409: "Duplicate",
        413: "Body over the limit",
        415: "Unsupported media type",
        422: "Invalid input",
        503: "The database took too long",
    }
    return {
        s: {
            "description": described.get(s, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
