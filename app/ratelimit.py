"""Optional rate limits, off by default: per client address (every request) and per API key
(writes; a key's own `rate_limit_per_minute` overrides the default). Over the limit the answer
is 429 problem+json with `Retry-After`.

Counters are fixed one-minute windows kept in the worker process: with N workers a client may
get up to N times the limit. That keeps the service free of any shared store (Redis is not
required); a deployment that needs exact global limits puts them in its load balancer.
"""

from __future__ import annotations

import json
import threading
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import PROBLEM_JSON, TYPE_BASE, AppError


class RateLimited(AppError):
    status, title, slug = 429, "Too many requests", "rate-limited"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class WindowCounter:
    """Requests per caller in the current one-minute window."""

    def __init__(self, window_seconds: int = 60) -> None:
        self.window = window_seconds
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}

    def hit(self, caller: str, limit: int) -> int:
        """Count a request; returns 0 if allowed, else the seconds until the window ends."""
        now = time.time()
        window = int(now // self.window)
        with self._lock:
            if len(self._counts) > 100_000:  # forget callers of past windows
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            start, count = self._counts.get(caller, (window, 0))
            if start != window:
                start, count = window, 0
            if count >= limit:
                return max(1, int((window + 1) * self.window - now) + 1)
            self._counts[caller] = (start, count + 1)
            return 0


def check_key_limit(counter: WindowCounter, key_name: str, limit: int | None) -> None:
    """Count a write of `key_name` on `counter` (the app's, `app.state.key_counter`, made in its
    lifespan); a 429 when the key is over `limit` this minute."""
    if limit and (retry := counter.hit(key_name, limit)):
        raise RateLimited(f"this key may make {limit} writes a minute", retry)


class AddressRateLimitMiddleware:
    def __init__(self, app: ASGIApp, per_minute: int) -> None:
        self.app = app
        self.per_minute = per_minute
        self.counter = WindowCounter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in ("/healthz", "/readyz", "/metrics"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        retry = self.counter.hit(address, self.per_minute)
        if not retry:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "type": TYPE_BASE + "rate-limited",
                "title": "Too many requests",
                "status": 429,
                "detail": f"this address may make {self.per_minute} requests a minute",
            }
        ).encode()
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"retry-after", str(retry).encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
