"""Conditional GETs: a strong `ETag` on every read and `If-None-Match` answered with 304.

Endpoints that can tell their version cheaply (a letter's counts, badge and embed: from the
letter's `version`) set their own `ETag` and answer 304 before computing anything; for the
others this middleware hashes the body of a complete (single-chunk) 200 response. Streamed
responses (exports, SSE) pass through untouched.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import NotFound
from app.models import ChangeRecord, Letter


def etag_for(*parts: object) -> str:
    """A strong validator from the values a response depends on."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f'"{digest}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return etag in candidates


_KEPT_ON_304 = {b"etag", b"cache-control", b"vary", b"content-location", b"expires", b"last-modified"}


class ConditionalGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if_none_match = dict(scope.get("headers", [])).get(b"if-none-match", b"").decode("latin-1") or None
        start: Message | None = None
        passthrough = False

        async def wrapped(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                if message["status"] != 200:
                    passthrough = True
                    await send(message)
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            if message.get("more_body", False):  # streamed: leave it alone
                passthrough = True
                await send(start)
                await send(message)
                return
            headers = list(start.get("headers", []))
            existing = next((v.decode("latin-1") for k, v in headers if k == b"etag"), None)
            etag = existing or etag_for(message.get("body", b""))
            if existing is None:
                headers.append((b"etag", etag.encode()))
            if etag_matches(if_none_match, etag):
                kept = [(k, v) for k, v in headers if k in _KEPT_ON_304]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({**start, "headers": headers})
            await send(message)

        await self.app(scope, receive, wrapped)


def not_modified(if_none_match: str | None, etag: str, cache_control: str) -> Response | None:
    """The 304 to send when the client's copy is current, else None. Routes that know their
    validator cheaply (before computing anything) call this first, then `set_validators`."""
    if not etag_matches(if_none_match, etag):
        return None
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})


def set_validators(response: Response, etag: str, cache_control: str) -> Response:
    """Put a route's own `ETag` (which this middleware then keeps) and `Cache-Control` on it."""
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache_control
    return response


@dataclass(frozen=True)
class LetterState:
    """A letter row and its validator: the letter's `version` (bumped by every write that can
    change what its reads show) and the newest change record's id (every write of anything
    records one, so even a party renamed or a seat filled elsewhere moves it)."""

    letter: Letter
    state: str
    database: str = ""

    def etag(self, *parts: object) -> str:
        """A strong validator for one rendering: the database and the letter (its id and
        creation time, as ids can come back after a delete or a rollback), its state, and
        whatever else (kind of response, day, query parameters) changes the bytes. Unique
        enough to key a cache of rendered bytes shared by several databases in one process."""
        return etag_for(self.database, self.letter.id, self.letter.created_at, self.state, *parts)


def letter_state(session: Session, slug: str) -> LetterState:
    """The letter and its validator from one SELECT of index lookups, or a 404 — what a route
    needs to answer 304 before computing anything."""
    latest_change = select(func.max(ChangeRecord.id)).scalar_subquery()
    row = session.execute(select(Letter, latest_change).where(Letter.slug == slug)).one_or_none()
    if row is None:
        raise NotFound(f"no letter with slug '{slug}'")
    letter, change_id = row
    database = session.get_bind().engine.url.render_as_string(hide_password=True)
    return LetterState(letter=letter, state=f"{letter.version}.{change_id or 0}", database=database)


class RenderedCache:
    """Rendered bytes of hot reads (a letter's counts) by their strong validator, kept in the
    worker process. Exact by construction: the key is the ETag, which changes with every write
    that could change the bytes, so an entry is either right or never asked for again; the
    oldest entries make room for new ones."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
