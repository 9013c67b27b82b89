"""One run of a piece of work for everyone who asks for it while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Callers who ask for the same key while its work runs wait for that run instead of
    starting their own (the readers who miss a cache together, right after a write). The work
    runs shielded: a caller who goes away does not cancel it for the others. Its futures belong
    to the event loop of the app that made it (in its lifespan)."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    def running(self, key: K) -> bool:
        return key in self._running

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        pending = self._running.get(key)
        if pending is None:

            async def once() -> V:
                try:
                    return await work()
                finally:
                    del self._running[key]

            pending = self._running[key] = asyncio.ensure_future(once())
        return await asyncio.shield(pending)
