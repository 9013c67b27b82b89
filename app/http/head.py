"""HEAD requests, answered as the GET they stand for."""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
