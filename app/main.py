"""The application factory: lifespan, middleware, routers, error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from app import api_docs, cors, observability, ops, search
from app.actors.router import router as actors_router
from app.analytics.router import router as analytics_router
from app.auth import document_scopes
from app.campaigns.router import router as campaigns_router
from app.charts.router import router as charts_router
from app.config import Settings, get_settings
from app.cors import ProblemCORSMiddleware
from app.db.database import Database
from app.db.engine import create_engine_for
from app.embeds.router import router as embeds_router
from app.errors import PROBLEM_JSON, install_error_handlers
from app.feed import router as feed_router
from app.formats import document_formats
from app.hosts import TrustedHostMiddleware
from app.http.conditional import ConditionalGetMiddleware
from app.http.head import HeadMiddleware
from app.http.renderings import RenderedCache, Renderings
from app.idempotency import Replayed, replayed
from app.imports.router import router as imports_router
from app.letters.router import router as letters_router
from app.limits import BodyLimitMiddleware
from app.live.hub import LiveCounts
from app.observability import RequestContextMiddleware
from app.pages.router import STATIC_DIR
from app.pages.router import router as pages_router
from app.ratelimit import AddressRateLimitMiddleware, WindowCounter
from app.security_headers import SecurityHeadersMiddleware
from app.webhooks.router import router as webhooks_router
from app.webhooks.worker import running_worker

DESCRIPTION = """A registry of open letters, their signatories and their recipients.

Reads are public. Writes need `Authorization: Bearer <key>` (keys come from
`undersigned keys create`; in `/docs`, paste the key under **Authorize**). Errors are
`application/problem+json` (RFC 9457). Lists are pages of `{"items": [...], "next_cursor": ...}`
with a `Link: <…>; rel="next"` header.
"""

PROBLEM_SCHEMA = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "title", "status", "detail"],
}


def _document_problems(schema: dict[str, Any]) -> None:
    """Make the document say what the service does: every error is problem+json; bodies can be
    too large or of the wrong type; any request can be rate-limited or time out."""
    problem = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    extra = {"429": "Rate limited (when limits are on)", "503": "The database took too long"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            for status, description in extra.items():
                answers.setdefault(status, {"description": description})
            if "requestBody" in operation:
                answers.setdefault("413", {"description": "Body over the limit"})
                answers.setdefault("415", {"description": "Unsupported media type"})
            for status, answer in answers.items():
                if status[0] in "45":
                    answer.update(problem)
    schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """Build the app. `database` lets tests hand in an engine they control; otherwise the
    lifespan builds one from the settings and disposes of it at shutdown."""
    settings = settings or get_settings()
    observability.configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        app.state.database = database or Database(create_engine_for(settings))
        # What this app keeps between requests, its own (two apps in a process share nothing):
        # the renderings of the hot reads and the writes counted per API key.
        app.state.renderings = Renderings(RenderedCache(max_bytes=settings.render_cache_bytes))
        app.state.key_counter = WindowCounter()
        app.state.live = LiveCounts(settings, app.state.database)
        app.state.live.hook_exit_signals()
        try:
            async with running_worker(app.state.database, settings) as worker:
                app.state.webhook_worker = worker
                yield
        finally:
            await app.state.live.aclose()
            await app.state.database.aclose()
            if owned:
                app.state.database.dispose()

    # /docs and /redoc are api_docs' pages, whose assets this service serves itself.
    app = FastAPI(
        title="Undersigned",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    if database is not None:
        app.state.database = database
    install_error_handlers(app)
    app.add_exception_handler(Replayed, replayed)
    # Outermost last: request id and logs -> security headers -> Host check -> body read whole
    # and checked -> CORS -> HEAD as GET -> conditional
    # GETs -> routes.
    app.add_middleware(ConditionalGetMiddleware)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=["*"],
        allow_methods=cors.METHODS,
        allow_headers=["*"],
        expose_headers=cors.EXPOSED,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout_seconds,
        max_json_depth=settings.max_json_depth,
    )
    if settings.rate_limit_per_address:
        app.add_middleware(AddressRateLimitMiddleware, per_minute=settings.rate_limit_per_address)
    app.add_middleware(TrustedHostMiddleware, allowed=settings.host_names())
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)

    # Routes are matched in order, one by one: the hot reads (counts, badges, widgets,
    # timelines) come first. No two routes share a method and a path pattern, so order changes
    # nothing else.
    app.include_router(analytics_router)
    app.include_router(embeds_router)
    app.include_router(ops.router)
    app.include_router(observability.router)
    app.include_router(campaigns_router)
    app.include_router(letters_router)
    app.include_router(actors_router)
    app.include_router(search.router)
    app.include_router(imports_router)
    app.include_router(feed_router)
    app.include_router(webhooks_router)
    app.include_router(charts_router)
    app.include_router(pages_router)
    app.include_router(api_docs.router)
    app.mount(api_docs.ASSETS_URL, api_docs.assets(), name="docs-assets")  # (before its parent)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
            document_formats(schema)
            _document_problems(schema)
            document_scopes(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
