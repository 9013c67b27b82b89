"""Request ids, one structured log line per request, and Prometheus metrics.

Every response carries `X-Request-ID` (the caller's, when it sends a sane one). The access log
is one JSON object per line: request id, method, route template, status, duration, the name of
the API key that wrote (never the key itself). `/metrics` serves request counts and latencies by
route, the database pool's use and the open SSE streams, in the Prometheus text format (per
worker process).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.database import Database

access_log = logging.getLogger("undersigned.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "undersigned_requests", "HTTP requests answered", ["method", "route", "status"], registry=REGISTRY
)
LATENCY = Histogram(
    "undersigned_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
HOT_READS = Counter(
    "undersigned_hot_reads",
    "Hot reads of a letter (counts, timeline, badge, widget) by how they were answered: "
    "not_modified (304), cached (bytes rendered before), joined (waited for a rendering in "
    "progress), rendered (computed)",
    ["outcome"],
    registry=REGISTRY,
)
SSE_STREAMS = Gauge("undersigned_sse_streams_open", "Server-Sent Event streams open", registry=REGISTRY)


class PoolCollector(Collector):
    """Reads the pool of an app's database at scrape time."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pool: Any = self.database.engine.pool
        checked_out = GaugeMetricFamily("undersigned_db_pool_checked_out", "Connections in use")
        size = GaugeMetricFamily("undersigned_db_pool_size", "Connections the pool keeps")
        if pool is not None and hasattr(pool, "checkedout"):
            checked_out.add_metric([], float(pool.checkedout()))
            size.add_metric([], float(pool.size()))
        yield checked_out
        yield size


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    json.dumps(
                        {
                            "request_id": request_id,
                            "method": method,
                            "path": scope.get("path"),
                            "route": template,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "key": scope.get("state", {}).get("key_name"),
                        },
                        separators=(",", ":"),
                    )
                )


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    # The counters are the process's (`REGISTRY`); the pool is the one of the app asked.
    pool = CollectorRegistry(auto_describe=False)
    pool.register(PoolCollector(request.app.state.database))
    return Response(generate_latest(REGISTRY) + generate_latest(pool), media_type=CONTENT_TYPE_LATEST)


def configure_logging(level: str) -> None:
    """Send the access log (one JSON object per line) to stderr, once per process."""
    logger = logging.getLogger("undersigned")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
