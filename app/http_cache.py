"""Conditional GETs: a strong `ETag` on every read and `If-None-Match` answered with 304.

The hot reads of one letter (counts, timeline, badge, widget) go through `letter_read`: their
validator comes from one indexed row read on the event loop (no worker thread, no ORM), a
current client gets its 304 and a repeat reader the bytes this process rendered for that
validator before, so a read costs about what reading one row costs, whatever the letter's size;
only a new state of the letter is computed (from the rollups), in a worker thread. For the
other reads this middleware hashes the body of a
complete (single-chunk) 200 response. Streamed responses (exports, SSE) pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import Database, fetch_one_sync, session_scope
from app.errors import NotFound
from app.models import Letter
from app.observability import HOT_READS


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


class _HeadAnswered(Exception):
    """Raised from `send` to stop producing a streamed body nobody will read."""


class HeadMiddleware:
    """HEAD is GET without the body (RFC 9110 §9.3.2). Routes are declared for GET only; this
    answers HEAD with the GET's status and headers (its `Content-Length` and `ETag` included, a
    304 when `If-None-Match` matches) and no body. A streamed body (an export) is not produced:
    its producer is stopped once the headers are out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def send_head(message: Message) -> None:
            nonlocal answered
            if message["type"] != "http.response.body":
                await send(message)
                return
            if not answered:
                answered = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                raise _HeadAnswered

        with contextlib.suppress(_HeadAnswered):
            await self.app({**scope, "method": "GET"}, receive, send_head)


def not_modified(if_none_match: str | None, etag: str, cache_control: str | None) -> Response | None:
    """The 304 to send when the client's copy is current, else None. Routes that know their
    validator cheaply (before computing anything) call this first, then `set_validators`."""
    if not etag_matches(if_none_match, etag):
        return None
    response = Response(status_code=304, headers={"ETag": etag})
    if cache_control is not None:
        response.headers["Cache-Control"] = cache_control
    return response


def set_validators(response: Response, etag: str, cache_control: str | None) -> Response:
    """Put a route's own `ETag` (which this middleware then keeps) and `Cache-Control` on it."""
    response.headers["ETag"] = etag
    if cache_control is not None:
        response.headers["Cache-Control"] = cache_control
    return response


def _committed_sql(dialect: str) -> str:
    """What moves with every committed write (the letter list's validator): the newest change
    record's id (every write of anything records one), and on PostgreSQL the writing
    transactions in progress. PostgreSQL hands ids out in insert order,
    and a transaction that took a lower id than the newest one visible may commit later: while
    it runs its xid is in the snapshot's in-progress list, which it leaves when it ends (one
    that starts later takes a higher id). The list is the statement's own snapshot's, so it
    agrees with the id read beside it; left out are only the transactions known to be of
    another database or of no client (autovacuum), which record no change of ours. SQLite
    commits one writer at a time, in id order."""
    newest = "(SELECT max(id) FROM change_records)"
    if dialect != "postgresql":
        return newest
    running = (
        "(SELECT string_agg(x::text, ',' ORDER BY x) FROM pg_snapshot_xip(pg_current_snapshot()) AS x"
        " WHERE NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.backend_xid = x::xid"
        " AND (a.datname IS DISTINCT FROM current_database() OR a.backend_type <> 'client backend')))"
    )
    return f"{newest}, {running}"


# The letter's validator in one SELECT of index lookups: its `version`, bumped by every write
# that can change what its reads show (its fields, parts and signatures, and the actors and
# seats those count under), the registry's version (`RegistryVersion`: seats and names that
# change every letter's breakdowns), and its id and creation time (ids can come back after a
# delete or a rollback). Both versions are bumped by an UPDATE of one row, so they grow in the
# order their writers commit. A write to one letter leaves the others' validators as they were.
# Raw SQL, read the same way on the event loop (`Database.fetch_one`) and inside a session
# (`fetch_one_sync`), so that both give the same validator to the byte.
LETTER_VALIDATOR_SQL = (
    "SELECT id, created_at, version, (SELECT version FROM registry_version WHERE id = 1)"
    " FROM letters WHERE slug = %s"
)


# The letters' validator (for reads of many letters): what moves with every write, and the
# newest letter write (an index lookup; every write to a letter or its signatures sets its
# `updated_at`, so even one that would record no change moves it).
@lru_cache(maxsize=4)
def letters_validator_sql(dialect: str) -> str:
    return f"SELECT (SELECT max(updated_at) FROM letters), {_committed_sql(dialect)}"


@lru_cache(maxsize=64)
def _database_label(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@dataclass(frozen=True)
class LetterRef:
    """A letter's id and validator."""

    id: int
    created_at: str
    state: str
    database: str

    @classmethod
    def from_row(cls, slug: str, row: tuple[Any, ...] | None, engine: Engine) -> LetterRef:
        if row is None:
            raise NotFound(f"no letter with slug '{slug}'")
        ident, created_at, version, *committed = row
        return cls(ident, str(created_at), ".".join(map(str, [version, *committed])), _database_label(engine))

    def etag(self, *parts: object) -> str:
        """A strong validator for one rendering: the database, the letter, its state, and
        whatever else (kind of response, day, query parameters) changes the bytes. Unique
        enough to key a cache of rendered bytes shared by several databases in one process."""
        return etag_for(self.database, self.id, self.created_at, self.state, *parts)


async def letter_ref(database: Database, slug: str) -> LetterRef:
    """The letter's id and validator, or a 404, without a thread: what a hot read needs to
    answer 304, or from its cache, before computing anything."""
    row = await database.fetch_one(LETTER_VALIDATOR_SQL, (slug,))
    return LetterRef.from_row(slug, row, database.engine)


@dataclass(frozen=True)
class LetterState:
    """A letter row and its validator, read in one session (so they agree)."""

    letter: Letter
    ref: LetterRef

    @property
    def state(self) -> str:
        return self.ref.state

    def etag(self, *parts: object) -> str:
        return self.ref.etag(*parts)


def letter_state(session: Session, slug: str) -> LetterState:
    """The letter and its validator in the session's transaction, or a 404."""
    connection = session.connection()
    row = fetch_one_sync(connection, LETTER_VALIDATOR_SQL, (slug,))
    ref = LetterRef.from_row(slug, row, connection.engine)
    letter = session.get(Letter, ref.id)
    if letter is None:  # deleted between the two reads
        raise NotFound(f"no letter with slug '{slug}'")
    return LetterState(letter=letter, ref=ref)


@dataclass(frozen=True)
class Rendered:
    """A rendering kept by `RENDERED`: the body, and the headers that go with it (a page's
    `Link`)."""

    body: bytes
    headers: dict[str, str] = dataclass_field(default_factory=dict)


class RenderedCache:
    """Renderings of hot reads (a letter's counts, a page of the letter list) by their strong
    validator, kept in the worker process. Exact by construction: the key is the ETag, which
    changes with every write that could change the bytes, so an entry is either right or never
    asked for again; the oldest entries make room for new ones."""

    def __init__(self, size: int = 1024, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.size = size
        self.max_bytes = max_bytes  # bounded in bytes too: one rendering can be large
        self.bytes = 0
        self._entries: OrderedDict[str, Rendered] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Rendered | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: Rendered) -> None:
        size = len(value.body)
        if size * 8 > self.max_bytes:
            return  # one rendering may take an eighth of the room at most
        with self._lock:
            if (old := self._entries.pop(key, None)) is not None:
                self.bytes -= len(old.body)
            self._entries[key] = value
            self.bytes += size
            while len(self._entries) > self.size or self.bytes > self.max_bytes:
                _key, dropped = self._entries.popitem(last=False)
                self.bytes -= len(dropped.body)


RENDERED = RenderedCache()


async def letter_read(
    request: Request,
    slug: str,
    parts: tuple[object, ...],
    render: Callable[[Session, Letter], bytes],
    *,
    media_type: str,
    cache_control: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A hot read of one letter (counts, badge, widget, timeline): the validator from
    `letter_ref` on the event loop; a 304 when the client's copy is current; the bytes from
    `RENDERED` when this process rendered them for this validator already; else `render` in a
    worker thread, in a read session, keyed by the validator read in that same session."""
    database: Database = request.app.state.database
    ref = await letter_ref(database, slug)
    etag = ref.etag(*parts)
    if (hit := not_modified(request.headers.get("if-none-match"), etag, cache_control)) is not None:
        HOT_READS.labels("not_modified").inc()
        hit.headers.update(headers or {})
        return hit
    etag, rendered = await _rendering(etag, functools.partial(_render_letter, database, slug, parts, render))
    return set_validators(
        Response(rendered.body, media_type=media_type, headers=headers), etag, cache_control
    )


def _letters_etag(engine: Engine, row: tuple[Any, ...] | None, parts: tuple[object, ...]) -> str:
    return etag_for(_database_label(engine), "letters", *(row or ()), *parts)


async def letters_read(
    request: Request,
    parts: tuple[object, ...],
    render: Callable[[Session], Rendered],
    *,
    media_type: str,
) -> Response:
    """A read of many letters at once (a page of the letter list) kept as `letter_read` keeps
    a letter's: keyed by the letters' validator (read on the event loop) and `parts` (which
    must hold everything else the bytes depend on: the URL, the day); a 304 when the client's
    copy is current, else the rendering this process made for that validator, else `render`'s
    in a worker thread. A write anywhere moves the key, so the rendering is exact; readers who
    miss together share one rendering."""
    database: Database = request.app.state.database
    etag = _letters_etag(
        database.engine,
        await database.fetch_one(letters_validator_sql(database.engine.dialect.name), ()),
        parts,
    )
    if (hit := not_modified(request.headers.get("if-none-match"), etag, None)) is not None:
        HOT_READS.labels("not_modified").inc()
        return hit
    etag, rendered = await _rendering(etag, functools.partial(_render_letters, database, parts, render))
    return set_validators(
        Response(rendered.body, media_type=media_type, headers=rendered.headers), etag, None
    )


def _render_letters(
    database: Database, parts: tuple[object, ...], render: Callable[[Session], Rendered]
) -> tuple[str, Rendered]:
    with session_scope(database.read_sessions) as session:
        connection = session.connection()
        row = fetch_one_sync(connection, letters_validator_sql(connection.dialect.name), ())
        return _letters_etag(database.engine, row, parts), render(session)


def _keyed_etag(engine: Engine, row: tuple[Any, ...] | None, parts: tuple[object, ...]) -> str:
    return etag_for(_database_label(engine), "keyed", *(row or ()), *parts)


async def keyed_read(
    request: Request,
    validator: tuple[str, tuple[Any, ...]],
    parts: tuple[object, ...],
    render: Callable[[Session], Rendered],
    *,
    media_type: str,
    cache_control: str | None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A read kept as `letters_read` keeps the letter list, by a validator of its own: one row
    of raw SQL (`%s` placeholders, read on the event loop and again in the rendering's session)
    that holds the versions of exactly what the bytes depend on — an overlap's letters, say —
    so that a write elsewhere leaves the rendering and the clients' copies current. `parts`
    holds the rest (the query). A 304 when the client's copy is current, else the rendering
    this process made for that validator, else `render`'s in a worker thread (its errors,
    a 404 or a 422, are raised to the caller and nothing is kept)."""
    database: Database = request.app.state.database
    sql, params = validator
    etag = _keyed_etag(database.engine, await database.fetch_one(sql, params), parts)
    if (hit := not_modified(request.headers.get("if-none-match"), etag, cache_control)) is not None:
        HOT_READS.labels("not_modified").inc()
        hit.headers.update(headers or {})
        return hit
    etag, rendered = await _rendering(
        etag, functools.partial(_render_keyed, database, validator, parts, render)
    )
    response = Response(rendered.body, media_type=media_type, headers={**rendered.headers, **(headers or {})})
    return set_validators(response, etag, cache_control)


def _render_keyed(
    database: Database,
    validator: tuple[str, tuple[Any, ...]],
    parts: tuple[object, ...],
    render: Callable[[Session], Rendered],
) -> tuple[str, Rendered]:
    with session_scope(database.read_sessions) as session:
        # The validator first: bytes newer than their key are never served under a newer one.
        row = fetch_one_sync(session.connection(), *validator)
        return _keyed_etag(database.engine, row, parts), render(session)


# Renders in progress, by event loop and validator: the readers who miss the cache together
# (all of them, right after a write to a letter that is being read) wait for one rendering.
_RENDERING: dict[tuple[int, str], asyncio.Future[tuple[str, Rendered]]] = {}


async def _rendering(etag: str, produce: Callable[[], tuple[str, Rendered]]) -> tuple[str, Rendered]:
    """The rendering for `etag`: from `RENDERED`, else from the one in progress, else from
    `produce` (in a worker thread; it returns the validator it read with the bytes it made)."""
    cached = RENDERED.get(etag)
    if cached is not None:
        HOT_READS.labels("cached").inc()
        return etag, cached
    key = (id(asyncio.get_running_loop()), etag)
    pending = _RENDERING.get(key)
    if pending is not None:
        HOT_READS.labels("joined").inc()
    else:
        HOT_READS.labels("rendered").inc()

        async def rendering() -> tuple[str, Rendered]:
            try:
                done = await run_in_threadpool(produce)
                RENDERED.put(*done)
                return done
            finally:
                del _RENDERING[key]

        pending = _RENDERING[key] = asyncio.ensure_future(rendering())
    # Shielded: a reader who goes away does not cancel the others' rendering.
    return await asyncio.shield(pending)


def _render_letter(
    database: Database, slug: str, parts: tuple[object, ...], render: Callable[[Session, Letter], bytes]
) -> tuple[str, Rendered]:
    with session_scope(database.read_sessions) as session:
        found = letter_state(session, slug)
        return found.etag(*parts), Rendered(render(session, found.letter))
