"""Headers that tell browsers how to treat every answer.

- Every answer: `X-Content-Type-Options: nosniff` (a JSON, CSV or SVG answer is never run as
  a script or page) and `Referrer-Policy: no-referrer` (a reader's path here is not sent to
  the sources a page links to).
- HTML pages: a Content-Security-Policy that lets them load only this server's own script,
  styles and images, and be framed only by this server (`frame-ancestors 'self'`, with
  `X-Frame-Options: SAMEORIGIN` for older browsers). A route that sets its own policy keeps it:
  the widget (`/embed/...`) alone may be framed anywhere, and the API docs (`/docs`, `/redoc`,
  app/api_docs.py) add what Swagger UI and ReDoc need, still all from this server.
- SVG: a policy that allows nothing but its inline styles, for an SVG opened on its own.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
_ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_policy(list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_policy(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in headers}
    extra = [(name, value) for name, value in _ALWAYS if name not in names]
    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"").lower()
    if b"content-security-policy" not in names:
        if content_type.startswith(b"text/html"):
            extra.append((b"content-security-policy", PAGE_POLICY.encode()))
            if b"x-frame-options" not in names:
                extra.append((b"x-frame-options", b"SAMEORIGIN"))
        elif content_type.startswith(b"image/svg+xml"):
            extra.append((b"content-security-policy", SVG_POLICY.encode()))
    return headers + extra
