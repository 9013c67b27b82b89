"""The renderings of the hot reads this process made, by their strong validator: an LRU bounded
in entries and in bytes (`RenderedCache`), and `Renderings`, which answers from it or has the
readers who miss together share one rendering. An app makes its `Renderings` in its lifespan
and keeps it on `app.state.renderings`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from starlette.concurrency import run_in_threadpool

from app.http.single_flight import SingleFlight
from app.observability import HOT_READS


@dataclass(frozen=True)
class Rendered:
    """A rendering kept by `RenderedCache`: the body, and the headers that go with it (a page's
    `Link`)."""

    body: bytes
    headers: dict[str, str] = dataclass_field(default_factory=dict)


class RenderedCache:
    """Renderings of hot reads (a letter's counts, a page of the letter list) by their strong
    validator, kept in the worker process (one cache per app). Exact by construction: the key
    is the ETag, which changes with every write that could change the bytes, so an entry is
    either right or never asked for again; the oldest entries make room for new ones."""

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
        if size * 2 > self.max_bytes:
            # One rendering may take half the room at most: the largest are the costliest to
            # make again (the exact intersections of 50 letters), so they are kept too.
            return
        with self._lock:
            if (old := self._entries.pop(key, None)) is not None:
                self.bytes -= len(old.body)
            self._entries[key] = value
            self.bytes += size
            while len(self._entries) > self.size or self.bytes > self.max_bytes:
                _key, dropped = self._entries.popitem(last=False)
                self.bytes -= len(dropped.body)


class Renderings:
    """The renderings of one app: kept ones answer at once; a missing one is made once, in a
    worker thread, however many readers want it meanwhile."""

    def __init__(self, cache: RenderedCache) -> None:
        self.cache = cache
        self._in_progress: SingleFlight[str, tuple[str, Rendered]] = SingleFlight()

    async def get(self, etag: str, produce: Callable[[], tuple[str, Rendered]]) -> tuple[str, Rendered]:
        """The rendering for `etag`: from the cache, else from the one in progress, else from
        `produce` (in a worker thread; it returns the validator it read with the bytes it made,
        which is the key the rendering is kept under)."""
        cached = self.cache.get(etag)
        if cached is not None:
            HOT_READS.labels("cached").inc()
            return etag, cached
        HOT_READS.labels("joined" if self._in_progress.running(etag) else "rendered").inc()

        async def render() -> tuple[str, Rendered]:
            done = await run_in_threadpool(produce)
            self.cache.put(*done)
            return done

        return await self._in_progress.run(etag, render)
