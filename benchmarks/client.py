"""The HTTP load client: runs in the runner's process; the server is a separate process."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from harness import failure, ms, percentile

Request = tuple[str, str, dict[str, Any]]


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client connection on asyncio streams.

    httpx costs about a millisecond of CPU per request on this machine (and more with 16
    connections in one pool): a load generator built on it tops out at a few hundred requests/s
    and measures itself, not the service. This one costs tens of microseconds. It speaks only
    what the scenarios need: Content-Length or chunked responses, `Connection: close`."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: */*"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
            if "content-length" in fields:
                content = await reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                    if size == 0:
                        while (await reader.readuntil(b"\r\n")) != b"\r\n":
                            pass
                        break
                    parts.append((await reader.readexactly(size + 2))[:-2])
                content = b"".join(parts)
            elif status in (204, 304) or method == "HEAD":
                content = b""
            else:
                content = await reader.read()
                fields["connection"] = "close"
            if fields.get("connection", "").lower() == "close":
                self.close()
            return status, content
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def drive(
    base_url: str,
    make_request: Callable[[int], Request],
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    expect: tuple[int, ...] = (200,),
    client_kind: str = "raw",
) -> dict[str, Any]:
    """`concurrency` connections, each sending its next request when the last is answered,
    until `max_requests` were sent or `max_seconds` passed (requests in flight then finish)."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = 0
    sample_error: str | None = None
    issued = 0
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0, trust_env=False) as client:
        deadline = time.perf_counter() + max_seconds

        async def connection() -> None:
            nonlocal issued, errors, sample_error
            raw = RawConnection(host, port)
            try:
                while issued < max_requests and time.perf_counter() < deadline:
                    n = issued
                    issued += 1
                    method, url, kwargs = make_request(n)
                    headers = dict(kwargs.get("headers") or {})
                    body = None
                    if "json" in kwargs:
                        body = json.dumps(kwargs["json"]).encode()
                        headers["Content-Type"] = "application/json"
                    t0 = time.perf_counter()
                    try:
                        if client_kind == "httpx":
                            response = await client.request(method, url, content=body, headers=headers)
                            status, text = response.status_code, response.text
                        else:
                            status, content = await asyncio.wait_for(
                                raw.request(method, url, body, headers), 60.0
                            )
                            text = content[:300].decode(errors="replace")
                        latencies.append(time.perf_counter() - t0)
                        statuses[str(status)] += 1
                        if status not in expect:
                            errors += 1
                            if sample_error is None:
                                sample_error = f"{method} {url} -> {status}: {text[:300]}"
                    except (
                        OSError,
                        ValueError,
                        IndexError,
                        TimeoutError,
                        asyncio.IncompleteReadError,
                        httpx.HTTPError,
                    ) as exc:
                        errors += 1
                        statuses[type(exc).__name__] += 1
                        if sample_error is None:
                            sample_error = f"{method} {url} -> {failure(exc)}"
            finally:
                raw.close()

        cpu0 = os.times()
        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu1 = os.times()
    latencies.sort()
    done = len(latencies)
    return {
        "client": client_kind,
        "concurrency": concurrency,
        "requests": done,
        "seconds": round(elapsed, 3),
        "rps": round(done / elapsed, 1) if elapsed > 0 else None,
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(latencies[-1] if latencies else None),
        "errors": errors,
        "statuses": dict(statuses),
        "error_sample": sample_error,
        "client_cpu_share": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed, 2)
        if elapsed > 0
        else None,
    }
