"""Conditional GETs: a strong `ETag` on every read and `If-None-Match` answered with 304.

`ConditionalGetMiddleware` hashes the body of a complete (single-chunk) 200 response that has
no `ETag` of its own; streamed responses (exports, SSE) pass through untouched. Routes that know
their validator before computing anything (the hot reads, `app.http.hot_reads`) answer with
`not_modified` and put their own with `set_validators`, which the middleware keeps.
"""

from __future__ import annotations

import hashlib

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
    """Put a route's own `ETag` (which `ConditionalGetMiddleware` then keeps) and `Cache-Control` on it."""
    response.headers["ETag"] = etag
    if cache_control is not None:
        response.headers["Cache-Control"] = cache_control
    return response
