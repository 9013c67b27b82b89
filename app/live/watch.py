"""One watcher per process: what tells the hub (`app.live.hub`) that letters may have changed.

PostgreSQL: one dedicated connection that LISTENs on `app.live.notify.CHANNEL` and passes each
message on. Should that connection drop, the watcher polls (asks the hub to check every
watched letter every `sse_poll_seconds`) while it connects again, with a growing pause between
attempts; once listening again it asks for a full check, so a change committed while nobody
listened is not missed. Even while listening it asks for one every `sse_resync_seconds`, which
catches writes made outside the service and the counts' change of day. SQLite: a poll every
`sse_poll_seconds`, nothing else.

The watcher never reads letters itself: the hub does, once per check, whatever the number of
streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import psycopg

from app.config import Settings
from app.db.database import Database
from app.live.notify import CHANNEL, parse

log = logging.getLogger("undersigned.live")

Changed = Callable[[set[int] | None], None]


class Watcher:
    def __init__(self, settings: Settings, database: Database, changed: Changed) -> None:
        self.settings = settings
        self.database = database
        self.changed = changed
        self.listening = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="live-counts-watcher")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        if self.database.engine.dialect.name == "postgresql":
            await self._listen()
        else:
            await self._poll_for(float("inf"))

    async def _poll_for(self, seconds: float) -> None:
        """Ask for a full check every poll interval, for `seconds`."""
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            await asyncio.sleep(min(self.settings.sse_poll_seconds, max(0.0, ends - time.monotonic())))
            self.changed(None)

    async def _listen(self) -> None:
        poll = self.settings.sse_poll_seconds
        pause = poll
        warned = False
        while True:
            try:
                await self._listen_once()
            except (psycopg.Error, OSError) as exc:
                if self.listening or not warned:
                    log.warning(
                        "live counts: the LISTEN connection failed (%s); polling every %s s until it is back",
                        str(exc).strip() or type(exc).__name__,
                        poll,
                    )
                    warned = True
                if self.listening:
                    pause = poll
                self.listening = False
            self.changed(None)  # what changed just before it dropped
            await self._poll_for(pause)
            pause = min(pause * 2, max(poll, 10.0))

    async def _listen_once(self) -> None:
        url = self.database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        async with await psycopg.AsyncConnection.connect(
            url,
            autocommit=True,
            application_name="undersigned-live",
            # TCP keepalives: a server that vanished (a network cut, a failover) is noticed even
            # with no traffic on this connection.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        ) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            if not self.listening:
                log.info("live counts: listening for changes on PostgreSQL")
            self.listening = True
            self.changed(None)  # a full check: anything committed before LISTEN took effect
            while True:
                async for note in conn.notifies(timeout=self.settings.sse_resync_seconds):
                    self.changed(parse(note.payload))
                self.changed(None)
