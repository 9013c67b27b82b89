"""The `Host` header is not trusted: only the names of `ALLOWED_HOSTS` (and `PUBLIC_URL`'s host)
are answered; another is a 400 before any route runs. URLs this service builds from the
request (oEmbed, `Link` headers, embed snippets, redirects) therefore never point at a host a
caller chose. `/healthz` and `/readyz` answer any Host: load balancers probe them by address,
and they build no URL.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import PROBLEM_JSON, problem_bytes

_PROBES = frozenset(("/healthz", "/readyz"))


def host_name(header: str) -> str:
    """`Host` without its port, lower case: `example.org:8000` -> `example.org`, `[::1]:80` ->
    `[::1]`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class TrustedHostMiddleware:
    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed
        self.any = "*" in allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.any or scope.get("path") in _PROBES:
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", []) if k == b"host"), None)
        if raw is None or host_name(raw.decode("latin-1")) in self.allowed:
            await self.app(scope, receive, send)  # (HTTP/1.0 without Host: the server's address)
            return
        body = problem_bytes(
            400,
            "this service does not answer to that Host header; set ALLOWED_HOSTS or PUBLIC_URL "
            "to the names it is reached at",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
