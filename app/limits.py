"""The request body, read whole and checked before any route runs, and the URL checked for NUL.

A body is read to its end here, within `BODY_TIMEOUT_SECONDS`, before the request reaches a
route: so no route takes a database connection (or SQLite's one write slot) while a client
trickles its body in. A declared Content-Length over the limit is refused at once, a streamed
body as soon as it passes the limit (413); one that does not arrive in time is a 408; a JSON
body nested deeper than `MAX_JSON_DEPTH` is a 422 that names the limit (the parsers recurse, so
depth is a way to stop a worker). A NUL character in the path or the query (`%00`) is a 422
that says where: no text the registry keeps can hold one, and PostgreSQL refuses it in a
parameter, so it is refused once here rather than by every route that looks a slug up. Every
answer here is a problem document of the same types the routes use.
"""

from __future__ import annotations

import asyncio
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_JSON, problem_bytes

_JSON_TYPE = re.compile(rb"^\s*application/(?:[\w.+-]*\+)?json\s*(?:;|$)", re.IGNORECASE)
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_PARENS = bytes.maketrans(b"[]{}", b"()()")


def json_depth_over(body: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays and objects deeper than `limit`. Linear, and in C
    (bytes methods, no Python step per bracket or string): escapes and then strings are cut
    out, the brackets left become `(` and `)`, and each pass removes every innermost `()`; after
    `limit` passes a pair left means deeper nesting (and more than `limit` brackets never
    closed is too deep for the parser as well). A malformed text is the parser's to refuse."""
    if len(body.translate(None, _NOT_BRACKETS)) <= 2 * limit:
        return False  # cannot be deeper than half its brackets
    if b"\\" in body:
        body = _ESCAPE.sub(b"", body)  # (so that every quote left opens or closes a string)
    outside = b"".join(body.split(b'"')[0::2])
    brackets = outside.translate(_PARENS, _NOT_BRACKETS)
    for _ in range(limit):
        fewer = brackets.replace(b"()", b"")
        if len(fewer) == len(brackets):
            break
        brackets = fewer
    return b"()" in brackets or brackets.count(b"(") > limit


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 60.0, max_json_depth: int = 32) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = _nul_in_url(scope)
        if where is not None:
            detail = f"the {where} holds a NUL character (%00)"
            errors = [{"loc": [where], "field": where, "msg": detail, "type": "nul_character"}]
            await self._refuse(send, 422, detail, errors=errors)
            return
        content_type = b""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._refuse(send, 413, self._too_large())
                    return
            elif name == b"content-type":
                content_type = value
        try:
            body, first = await asyncio.wait_for(self._read(receive), self.timeout)
        except _TooLarge:
            await self._refuse(send, 413, self._too_large())
            return
        except TimeoutError:
            detail = f"the request body did not arrive within {self.timeout:g} seconds"
            await self._refuse(send, 408, detail)
            return
        if first is not None:  # the client left before its body was whole: nothing to answer
            await self.app(scope, _replay(first, receive), send)
            return
        if body and _JSON_TYPE.match(content_type) and json_depth_over(body, self.max_json_depth):
            detail = f"the JSON body nests deeper than the limit of {self.max_json_depth} levels"
            errors = [{"loc": ["body"], "field": "body", "msg": detail, "type": "json_too_deep"}]
            await self._refuse(send, 422, f"body: {detail}", errors=errors)
            return
        message: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay(message, receive), send)

    async def _read(self, receive: Receive) -> tuple[bytes, Message | None]:
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", message
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    def _too_large(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes"

    async def _refuse(self, send: Send, status: int, detail: str, **extra: object) -> None:
        body = problem_bytes(status, detail, **extra)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _nul_in_url(scope: Scope) -> str | None:
    """ "path" or "query" when that part of the request's URL holds a NUL once decoded."""
    if "\x00" in scope.get("path", ""):
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return "query"
    return None


class _TooLarge(Exception):
    pass


def _replay(first: Message, receive: Receive) -> Receive:
    """A `receive` that gives the body read here, then waits on the client (for a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return first
        return await receive()

    return replay
