"""The counts stream: Server-Sent Events of a letter's counts, as the process's hub
(`app.live.hub`, on `app.state.live`) hands them out.

At once a `counts` event (with `retry`) holding the document `GET /v1/letters/{slug}/counts`
returns; then a new `counts` event whenever the letter's counts change (a write through any
process: the hub hears of it through PostgreSQL's LISTEN, or its poll on SQLite); a
`: heartbeat` comment when nothing was sent for `sse_heartbeat_seconds`; `gone` when the letter
is deleted. A stream ends after about `sse_max_seconds` (the browser reconnects after `retry`
and gets the current counts at once), when its reader goes, when its reader falls too far
behind, or when the server shuts down. A stream is a coroutine waiting on its queue: no thread,
no database read of its own."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.live.hub import LiveCounts, Subscriber

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
FINAL_SEND_SECONDS = 1.0  # the last (empty) chunk to a reader who stopped reading is given up after


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class CountsStream(Response):
    """The response of one counts stream. Whatever ends it — its age, its reader gone or
    dropped, the letter deleted, the server stopping — it gives its place in the hub back."""

    media_type = "text/event-stream"

    def __init__(self, hub: LiveCounts, subscriber: Subscriber, first: bytes) -> None:
        super().__init__(headers=HEADERS)
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]  # streamed
        self.hub = hub
        self.subscriber = subscriber
        self.first = first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscriber = self.subscriber
        listener: asyncio.Task[None] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with asyncio.timeout_at(subscriber.deadline) as timer:
                subscriber.timer = timer
                listener = asyncio.get_running_loop().create_task(_until_disconnect(receive))
                listener.add_done_callback(lambda task: _gone(task, subscriber))
                await send({"type": "http.response.body", "body": self.first, "more_body": True})
                while (chunk := await subscriber.queue.get()) is not None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TimeoutError:
            pass  # its age, its reader gone or too slow, or the server stopping
        finally:
            subscriber.timer = None
            if listener is not None:
                listener.cancel()
            self.hub.unsubscribe(subscriber)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FINAL_SEND_SECONDS):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def _gone(task: asyncio.Task[None], subscriber: Subscriber) -> None:
    if not task.cancelled():
        task.exception()  # (retrieved: a failed receive only ends the stream)
        subscriber.end_within(0.0)
