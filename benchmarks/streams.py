"""Live counts at scale: N counts streams on one `undersigned serve` process, a write through a
second process on the same database, and how long until the streams saw it.

    python benchmarks/streams.py --backend postgresql --streams 1000,5000,10000
    ./dev bench streams --streams 1000,10000          # the same through the suite's command

For each N: a fresh database (PostgreSQL: `--pg-url`, dropped and made again, loopback only and
named `…bench…`; SQLite: a temporary file), two `undersigned serve` processes (A holds the
streams, B takes the writes), one letter. The client (this process, asyncio on raw sockets, its
own open-file limit raised) opens N streams on A (on one letter, or round robin over
`--letters` letters) and waits for every first event, then measures:

- RSS of A per stream (its growth from before the streams were opened, divided by N);
- the database's transactions per second while the N streams sit idle (PostgreSQL: the delta
  of `pg_stat_database.xact_commit` over `--idle-seconds`, the stats queries included);
- for each of `--writes` signatures posted to B: the time from sending the POST until 50%, 99%
  and 100% of the streams received the new counts event (and how many never did);
- the time A takes to exit after SIGTERM with the N streams still open, and how many streams
  ended cleanly (the chunked body's last chunk) rather than cut.

Results: `<out>/streams-<timestamp>-<backend>.json` and a table on stdout. The client shares the
machine with the server: on a small machine its own CPU time is part of the latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
SLUG = "live-bench"
COUNTS = b"event: counts\n"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def undersigned() -> list[str]:
    beside = Path(sys.executable).parent / "undersigned"
    return [str(beside)] if beside.exists() else [sys.executable, "-c", "from app.cli import main; main()"]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def raise_own_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@contextlib.contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="undersigned-streams-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    parts = urlsplit(pg_url)
    name = parts.path.lstrip("/")
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or "bench" not in name:
        raise SystemExit("--pg-url must be a loopback database whose name contains 'bench'")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Server:
    """`undersigned serve` in a process of its own."""

    def __init__(self, env: dict[str, str], streams: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "SSE_MAX_STREAMS": str(streams + 100),
            "SSE_MAX_SECONDS": "3600",  # the streams must outlive the measurement
            "LOG_LEVEL": "warning",
        }
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (read and closed with the process)
        self.process = subprocess.Popen(
            [*undersigned(), "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code < 500:
                    break
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the server did not start:\n{self.output()}")
            time.sleep(0.2)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> float:
        """SIGTERM; the seconds until the process exited."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return time.monotonic() - started

    def close(self) -> None:
        self.stop()
        self.log.close()


class Reader:
    """One stream: counts the `counts` events it received, with the time of each."""

    __slots__ = ("clean", "events", "times", "writer")

    def __init__(self) -> None:
        self.events = 0
        self.times: list[float] = []
        self.clean = False
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, port: int, slug: str, opened: asyncio.Semaphore, ready: asyncio.Event) -> None:
        async with opened:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
            self.writer = writer
            writer.write(f"GET /v1/letters/{slug}/counts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
        tail = b""
        while chunk := await reader.read(1 << 16):
            now = time.monotonic()
            text = tail + chunk
            seen = text.count(COUNTS) - tail.count(COUNTS)
            for _ in range(seen):
                self.events += 1
                self.times.append(now)
            if self.events and not ready.is_set():
                ready.set()
            tail = text[-32:]
            if text.endswith(b"0\r\n\r\n"):
                self.clean = True


async def until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def xact_commit(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0


async def scenario(n: int, args: argparse.Namespace, url: str) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([*undersigned(), "db", "upgrade"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [*undersigned(), "keys", "create", "--name", "bench-streams", "--scope", "admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    a, b = Server(env, n), Server(env, n)
    result: dict[str, Any] = {"streams": n, "letters": args.letters, "loadavg_before": os.getloadavg()}
    try:
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=b.base, headers=auth, timeout=30) as client:
            slugs = [SLUG] + [f"{SLUG}-{i}" for i in range(1, args.letters)]
            for slug in slugs:
                client.post("/v1/letters", json={"slug": slug, "title": "Live bench"}).raise_for_status()
            actors = [
                client.post("/v1/actors", json={"kind": "person", "name": f"Bench Signer {i}"}).json()["id"]
                for i in range(args.writes)
            ]
        with httpx.Client(base_url=a.base, timeout=30) as client:  # warm A: imports, pools
            client.get(f"/v1/letters/{SLUG}/counts").raise_for_status()
        time.sleep(1)
        rss_before = rss_bytes(a.process.pid)
        readers = [Reader() for _ in range(n)]
        opened, ready = asyncio.Semaphore(200), asyncio.Event()
        started = time.monotonic()
        tasks = [
            asyncio.create_task(r.run(a.port, slugs[i % len(slugs)], opened, ready))
            for i, r in enumerate(readers)
        ]
        watching = readers[:: len(slugs)]  # the streams of the letter written to
        if not await until(lambda: all(r.events for r in readers) or any(t.done() for t in tasks), 600):
            raise RuntimeError("the streams did not all open")
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise RuntimeError(f"{len(failed)} streams failed: {failed[0].exception()!r}")
        result["open_seconds"] = time.monotonic() - started
        log(f"{n} streams open in {result['open_seconds']:.1f} s")
        await asyncio.sleep(2)
        rss_after = rss_bytes(a.process.pid)
        result["rss_before_mb"] = rss_before / 2**20
        result["rss_after_mb"] = rss_after / 2**20
        result["rss_per_stream_kb"] = (rss_after - rss_before) / n / 1024
        if url.startswith("postgresql"):
            before = xact_commit(url)
            await asyncio.sleep(args.idle_seconds)
            result["idle_xact_per_second"] = (xact_commit(url) - before) / args.idle_seconds
        writes = []
        async with httpx.AsyncClient(base_url=b.base, headers=auth, timeout=30) as client:
            for i, actor in enumerate(actors):
                expected = i + 2  # the first event, then one per write
                sent = time.monotonic()
                answer = await client.post(f"/v1/letters/{SLUG}/signatures", json={"actor_id": actor})
                answer.raise_for_status()
                written = time.monotonic() - sent
                await until(lambda expected=expected: all(r.events >= expected for r in watching), 30)
                delays = [r.times[expected - 1] - sent for r in watching if r.events >= expected]
                writes.append(
                    {
                        "post_ms": written * 1000,
                        "p50_ms": (percentile(delays, 50) or 0) * 1000,
                        "p99_ms": (percentile(delays, 99) or 0) * 1000,
                        "p100_ms": (max(delays) if delays else 0) * 1000,
                        "missed": len(watching) - len(delays),
                    }
                )
                log(f"write {i + 1}: {writes[-1]}")
                await asyncio.sleep(1)
        result["writes"] = writes
        result["stop_seconds"] = a.stop()
        await until(lambda: all(t.done() for t in tasks), 10)
        result["ended_cleanly"] = sum(r.clean for r in readers)
        result["server_log_tracebacks"] = a.output().count("Traceback")
        for task in tasks:
            task.cancel()
        for r in readers:
            if r.writer is not None:
                r.writer.close()
    finally:
        a.close()
        b.close()
    result["loadavg_after"] = os.getloadavg()
    return result


def table(results: list[dict[str, Any]], backend: str) -> str:
    lines = [
        f"Counts streams on one process ({backend}; {os.cpu_count()} cores, shared)",
        "",
        "| streams | letters | open (s) | RSS/stream (KB) | idle xact/s | p50 (ms) | p99 (ms) | p100 (ms) | missed "
        "| stop (s) | ended cleanly | load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        worst = max(r["writes"], key=lambda w: w["p100_ms"])
        idle = r.get("idle_xact_per_second")
        lines.append(
            f"| {r['streams']:,} | {r['letters']} | {r['open_seconds']:.1f} | {r['rss_per_stream_kb']:.1f} "
            f"| {'-' if idle is None else f'{idle:.2f}'} | {worst['p50_ms']:.0f} | {worst['p99_ms']:.0f} "
            f"| {worst['p100_ms']:.0f} | {sum(w['missed'] for w in r['writes'])} | {r['stop_seconds']:.1f} "
            f"| {r['ended_cleanly']:,} | {' '.join(f'{x:.2f}' for x in r['loadavg_before'])} |"
        )
    lines.append("")
    lines.append(
        "Latencies: the worst of the writes, from sending the POST to B until a stream on A (of the "
        "letter written to) got it; missed: streams that never did."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/undersigned_bench_streams")
    parser.add_argument("--streams", default="1000,5000,10000", help="comma-separated stream counts")
    parser.add_argument("--writes", type=int, default=3, help="signatures written per stream count")
    parser.add_argument(
        "--letters",
        type=int,
        default=1,
        help="letters the streams are spread over (round robin); the writes go to the first",
    )
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    limit = raise_own_file_limit()
    counts = [int(x) for x in args.streams.split(",") if x.strip()]
    if max(counts) + 100 > limit:
        log(f"warning: this client may open {limit} files; streams beyond that will fail")
    try:  # the server's event loop (uvicorn's "auto"), so the client takes less of the machine
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    results = []
    for n in counts:
        with database(args.backend, args.pg_url) as url:
            results.append(run(scenario(n, args, url)))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"streams-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{args.backend}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results, args.backend))
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
