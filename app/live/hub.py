"""The fan-out of live counts in one process: every counts stream of a letter shares one topic.

A topic holds the letter's current rendering (its counts document as a ready `counts` event,
bytes computed once per state of the letter) and its subscribers. A new stream of a watched
letter gets the rendering at once without touching the database; the first stream of a letter
reads it (one transaction; the streams that arrive meanwhile wait for the same read).

The watcher (`app.live.watch`) says which letters may have changed; one checker task then
reads the versions of those of them that are watched (one query), renders the ones whose
state moved (one transaction each, in one worker thread) and puts the new event on every
subscriber's queue. So the database sees one query per change and per process, however many
streams are open, and nothing while nothing changes (on SQLite: one query per poll interval).

Each subscriber has a bounded queue: one that is full (its reader stopped reading) is dropped,
its browser reconnects after `retry`. A sweep puts a heartbeat comment on the queues that had
nothing for `sse_heartbeat_seconds`, and forgets letters nobody streamed for a while. On
shutdown (uvicorn's exit signal, or the lifespan's end) every stream is ended cleanly, so a
restart does not wait for them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from types import FrameType
from typing import Any

from sqlalchemy import ColumnElement, select
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.db.database import Database, session_scope
from app.embeds import service
from app.errors import NotFound, Unavailable
from app.live.watch import Watcher
from app.models import Letter, RegistryVersion
from app.observability import SSE_STREAMS

log = logging.getLogger("undersigned.live")

RETRY_MS = 5000  # how long a browser waits before it reconnects a dropped stream
HEARTBEAT = b": heartbeat\n\n"
GONE = b"event: gone\ndata: {}\n\n"
LINGER_SECONDS = 30.0  # a letter nobody streams stays watched this long: its readers come back
SHUTDOWN_GRACE_SECONDS = 2.0  # a stream whose reader does not take its last bytes is cut then
LIFETIME_JITTER = 0.1  # streams end at up to this share before the maximum age: not all at once

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Rendering:
    """A letter's counts as a stream sends them, for one state of the letter (`key`)."""

    letter_id: int
    slug: str
    key: Key
    event: bytes

    @property
    def first(self) -> bytes:
        return f"retry: {RETRY_MS}\n".encode() + self.event


def _key(created_at: Any, version: int, registry: int | None) -> Key:
    """What a letter's counts document depends on: the letter (ids may come back after a
    delete), its version, the registry's version, and the day the counts are as of."""
    return (str(created_at), version, registry, date.today())


def _validators(where: ColumnElement[bool]) -> Any:
    return (
        select(Letter.id, Letter.slug, Letter.created_at, Letter.version, RegistryVersion.version)
        .join(RegistryVersion, RegistryVersion.id == 1, isouter=True)
        .where(where)
    )


def render(database: Database, where: ColumnElement[bool]) -> Rendering | None:
    """The rendering of the letter `where` selects, None if there is none. Its state is read
    before its counts, so the counts are at least as new as the key they are kept under."""
    with session_scope(database.read_sessions) as session:
        row = session.execute(_validators(where)).first()
        if row is None:
            return None
        letter = session.get(Letter, row[0])
        if letter is None:
            return None
        body = service.counts_of(session, letter).model_dump_json()
    event = b"event: counts\ndata: " + body.encode() + b"\n\n"
    return Rendering(row[0], row[1], _key(*row[2:]), event)


def read_keys(database: Database, ids: Iterable[int]) -> dict[int, Key]:
    """The current key of each of the letters `ids` that still exists, in one query."""
    with session_scope(database.read_sessions) as session:
        rows = session.execute(_validators(Letter.id.in_(list(ids)))).all()
        return {row[0]: _key(*row[2:]) for row in rows}


def render_all(database: Database, ids: Iterable[int]) -> dict[int, Rendering | None]:
    return {ident: render(database, Letter.id == ident) for ident in ids}


class Subscriber:
    """One open stream: its queue of bytes to send (None: end the stream) and its deadline."""

    __slots__ = ("deadline", "last_put", "queue", "timer", "topic")

    def __init__(self, topic: Topic, size: int, deadline: float) -> None:
        self.topic = topic
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)
        self.deadline = deadline  # event loop time
        self.timer: asyncio.Timeout | None = None  # set by the stream while it runs
        self.last_put = time.monotonic()

    def put(self, chunk: bytes | None, now: float) -> None:
        try:
            self.queue.put_nowait(chunk)
        except asyncio.QueueFull:  # the reader fell behind: drop it, it reconnects after `retry`
            log.debug("live counts: dropped a stream of letter %s that fell behind", self.topic.letter_id)
            self.end_within(0.0)
            return
        self.last_put = now

    def end_within(self, seconds: float) -> None:
        """End the stream within `seconds`, wherever it waits (sending included)."""
        timer = self.timer
        if timer is None or timer.expired():
            return
        when = asyncio.get_running_loop().time() + seconds
        current = timer.when()
        if current is None or when < current:
            timer.reschedule(when)


class Topic:
    __slots__ = ("idle_since", "rendering", "subscribers")

    def __init__(self, rendering: Rendering) -> None:
        self.rendering = rendering
        self.subscribers: set[Subscriber] = set()
        self.idle_since: float | None = time.monotonic()

    @property
    def letter_id(self) -> int:
        return self.rendering.letter_id


class LiveCounts:
    """The process's counts streams (on `app.state.live`, made in the lifespan)."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.limit = settings.sse_max_streams
        self.open = 0
        self.closing = False
        self._topics: dict[int, Topic] = {}
        self._by_slug: dict[str, int] = {}
        self._opening: dict[str, asyncio.Future[Topic | None]] = {}
        self._dirty: set[int] = set()
        self._dirty_all = False
        self._notes = 0  # changes told so far: a first read older than one is checked again
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._signals: list[tuple[int, Any, Any]] = []
        self.watcher = Watcher(settings, database, self.changed)

    # --- streams ------------------------------------------------------------------------------

    async def subscribe(self, slug: str) -> tuple[Subscriber, bytes]:
        """A new stream of the letter `slug` and the bytes it starts with; a 404 for an unknown
        letter, a 503 past the limit or while shutting down. The caller must `unsubscribe`."""
        if self.closing:
            raise Unavailable("this server is shutting down; try again shortly", headers={"Retry-After": "2"})
        if self.open >= self.limit:
            raise Unavailable(
                f"this server has {self.limit} counts streams open; try again shortly",
                headers={"Retry-After": "10"},
            )
        self.open += 1  # (taken before the wait, so that waiters cannot overshoot the limit)
        SSE_STREAMS.inc()
        try:
            topic = await self._topic(slug)
        except BaseException:
            self._release()
            raise
        lifetime = self.settings.sse_max_seconds * (1 - LIFETIME_JITTER * random.random())
        subscriber = Subscriber(
            topic, self.settings.sse_buffer_events, asyncio.get_running_loop().time() + lifetime
        )
        topic.subscribers.add(subscriber)
        topic.idle_since = None
        return subscriber, topic.rendering.first

    def unsubscribe(self, subscriber: Subscriber) -> None:
        topic = subscriber.topic
        topic.subscribers.discard(subscriber)
        if not topic.subscribers:
            topic.idle_since = time.monotonic()
        self._release()

    def _release(self) -> None:
        self.open -= 1
        SSE_STREAMS.dec()

    async def _topic(self, slug: str) -> Topic:
        ident = self._by_slug.get(slug)
        topic = self._topics.get(ident) if ident is not None else None
        if topic is not None:
            return topic
        pending = self._opening.get(slug)
        if pending is None:
            pending = self._opening[slug] = asyncio.ensure_future(self._open_topic(slug))
            pending.add_done_callback(lambda _done: self._opening.pop(slug, None))
        # Shielded: a reader who goes away does not cancel the others' read.
        topic = await asyncio.shield(pending)
        if topic is None:
            raise NotFound(f"no letter with slug '{slug}'")
        return topic

    async def _open_topic(self, slug: str) -> Topic | None:
        notes = self._notes
        rendering = await run_in_threadpool(render, self.database, Letter.slug == slug)
        if rendering is None:
            return None
        topic = self._topics.get(rendering.letter_id)
        if topic is None:
            topic = self._topics[rendering.letter_id] = Topic(rendering)
            self._by_slug[rendering.slug] = rendering.letter_id
        if self._notes != notes:  # a change told during the read may not be in it
            self.changed({rendering.letter_id})
        self._start()
        return topic

    # --- changes ------------------------------------------------------------------------------

    def changed(self, ids: set[int] | None) -> None:
        """The letters `ids` (None: any) may read differently: check the watched ones."""
        self._notes += 1
        if not self._topics:
            return
        if ids is None:
            self._dirty_all = True
        else:
            self._dirty |= ids
        self._wake.set()

    async def _checker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ids = set(self._topics) if self._dirty_all else self._dirty & self._topics.keys()
            self._dirty, self._dirty_all = set(), False
            if not ids:
                continue
            try:
                await self._refresh(ids)
            except Exception as exc:  # the database is away: try again after a poll interval
                log.warning("live counts: could not check %d letters: %s", len(ids), exc)
                await asyncio.sleep(self.settings.sse_poll_seconds)
                self.changed(ids)

    async def _refresh(self, ids: set[int]) -> None:
        keys = await run_in_threadpool(read_keys, self.database, ids)
        stale = [i for i in ids if i in self._topics and keys.get(i) != self._topics[i].rendering.key]
        if not stale:
            return
        renderings = await run_in_threadpool(render_all, self.database, stale)
        now = time.monotonic()
        for ident, rendering in renderings.items():
            self._publish(ident, rendering, now)

    def _publish(self, ident: int, rendering: Rendering | None, now: float) -> None:
        topic = self._topics.get(ident)
        if topic is None:
            return
        old = topic.rendering
        if rendering is None:  # deleted: its streams say so and end
            self._forget(topic)
            for subscriber in list(topic.subscribers):
                subscriber.put(GONE, now)
                subscriber.put(None, now)
            return
        topic.rendering = rendering
        if rendering.slug != old.slug:
            if self._by_slug.get(old.slug) == ident:
                del self._by_slug[old.slug]
            self._by_slug[rendering.slug] = ident
        if rendering.event == old.event:
            return
        for subscriber in list(topic.subscribers):
            subscriber.put(rendering.event, now)

    def _forget(self, topic: Topic) -> None:
        self._topics.pop(topic.letter_id, None)
        if self._by_slug.get(topic.rendering.slug) == topic.letter_id:
            del self._by_slug[topic.rendering.slug]

    async def _sweeper(self) -> None:
        beat = self.settings.sse_heartbeat_seconds
        while True:
            await asyncio.sleep(min(max(beat / 4, 0.02), 5.0))
            now = time.monotonic()
            for topic in list(self._topics.values()):
                if not topic.subscribers:
                    if topic.idle_since is not None and now - topic.idle_since > LINGER_SECONDS:
                        self._forget(topic)
                    continue
                for subscriber in list(topic.subscribers):
                    if now - subscriber.last_put >= beat:
                        subscriber.put(HEARTBEAT, now)

    # --- life ---------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._tasks or self.closing:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._checker(), name="live-counts-checker"),
            loop.create_task(self._sweeper(), name="live-counts-sweeper"),
        ]
        self.watcher.start()

    def watched(self) -> int:
        return len(self._topics)

    def begin_shutdown(self) -> None:
        """End every stream (its reader reconnects, to another process) and take no new ones."""
        if self.closing:
            return
        self.closing = True
        now = time.monotonic()
        for topic in list(self._topics.values()):
            for subscriber in list(topic.subscribers):
                subscriber.put(None, now)
                subscriber.end_within(SHUTDOWN_GRACE_SECONDS)

    def hook_exit_signals(self) -> None:
        """Begin the shutdown when the server is told to stop (SIGTERM, SIGINT), not after it
        has waited for the open streams to end: chained before the server's own handlers
        (uvicorn's), which stay in charge. Only in the main thread, where signals arrive."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous) or previous is signal.default_int_handler:
                continue

            def chained(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.begin_shutdown)
                previous(signum, frame)

            signal.signal(sig, chained)
            self._signals.append((sig, chained, previous))

    async def aclose(self) -> None:
        self.begin_shutdown()
        for sig, chained, previous in self._signals:
            if signal.getsignal(sig) is chained:
                signal.signal(sig, previous)
        self._signals = []
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.watcher.aclose()
