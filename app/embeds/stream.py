"""The counts stream: Server-Sent Events of a letter's counts.

At once a `counts` event with the document `GET /v1/letters/{slug}/counts` returns; then, every
`sse_poll_seconds`, one short read of the letter's validator through the database (so a write
by any worker process is seen), and a new `counts` event when the validator moved and the
document differs; a `: heartbeat` comment when nothing was sent for `sse_heartbeat_seconds`.
No transaction stays open between polls: each poll is a session of its own, run in a worker
thread. A process serves at most `sse_max_streams` streams; past that it answers 503. A stream
ends after `sse_max_seconds` (the browser reconnects after `retry`), so a graceful restart never
waits long on open streams and reconnecting clients spread over the workers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.db import Database, session_scope
from app.embeds import service
from app.errors import NotFound, Unavailable
from app.http_cache import letter_ref
from app.observability import SSE_STREAMS

RETRY_MS = 5000  # how long a browser waits before it reconnects a dropped stream
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class StreamSlots:
    """Open streams of one app (one per worker process). Only the event loop touches it."""

    limit: int
    open: int = field(default=0)

    def acquire(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        SSE_STREAMS.inc()
        return True

    def release(self) -> None:
        self.open -= 1
        SSE_STREAMS.dec()


def slots_for(app: FastAPI, limit: int) -> StreamSlots:
    slots: StreamSlots | None = getattr(app.state, "sse_slots", None)
    if slots is None:
        slots = app.state.sse_slots = StreamSlots(limit=limit)
    return slots


def event(name: str, data: str, *, retry: int | None = None) -> str:
    """One SSE event; `data` must be a single line (compact JSON is)."""
    head = f"retry: {retry}\n" if retry is not None else ""
    return f"{head}event: {name}\ndata: {data}\n\n"


async def _read_state(database: Database, slug: str) -> str | None:
    try:
        return (await letter_ref(database, slug)).state
    except NotFound:  # the letter was deleted while the stream was open
        return None


def _read_counts(database: Database, slug: str) -> tuple[str, str] | None:
    """(validator, counts JSON) read in one transaction, so they agree."""
    with session_scope(database.read_sessions) as session:
        try:
            found = service.letter_state(session, slug)
        except NotFound:  # the letter was deleted while the stream was open
            return None
        return found.state, service.counts_of(session, found.letter).model_dump_json()


async def counts_events(
    request: Request, database: Database, slug: str, *, poll: float, heartbeat: float, lifetime: float
) -> AsyncIterator[str]:
    ends = time.monotonic() + lifetime
    first = await run_in_threadpool(_read_counts, database, slug)
    if first is None:
        return
    state, body = first
    yield event("counts", body, retry=RETRY_MS)
    last_sent = time.monotonic()
    tick = min(poll, heartbeat)
    next_poll = time.monotonic() + poll
    while True:
        await anyio.sleep(tick)
        if await request.is_disconnected():
            return
        now = time.monotonic()
        if now >= ends:  # the client reconnects after `retry` and gets the counts at once
            return
        if now >= next_poll:
            next_poll = now + poll
            current = await _read_state(database, slug)
            if current is None:
                yield event("gone", "{}")
                return
            if current != state:
                fresh = await run_in_threadpool(_read_counts, database, slug)
                if fresh is None:
                    yield event("gone", "{}")
                    return
                state, new_body = fresh
                if new_body != body:
                    body = new_body
                    yield event("counts", body)
                    last_sent = time.monotonic()
                    continue
        if time.monotonic() - last_sent >= heartbeat:
            yield ": heartbeat\n\n"
            last_sent = time.monotonic()


class SlotResponse(StreamingResponse):
    """A streaming response that gives its slot back however the stream ends (finished,
    client gone, server shutting down), even if the body never started."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream", headers=HEADERS)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def open_stream(
    request: Request,
    database: Database,
    slug: str,
    *,
    poll: float,
    heartbeat: float,
    lifetime: float,
    limit: int,
) -> SlotResponse:
    slots = slots_for(request.app, limit)
    if not slots.acquire():
        raise Unavailable(
            f"this server has {slots.limit} counts streams open; try again shortly",
            headers={"Retry-After": "10"},
        )
    return SlotResponse(
        counts_events(request, database, slug, poll=poll, heartbeat=heartbeat, lifetime=lifetime),
        release=slots.release,
    )
