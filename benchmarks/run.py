"""The Undersigned benchmark suite, in one command.

    python benchmarks/run.py --scale 1 --backends sqlite,postgresql --workers 1,2

For each backend: generate the registry (or reuse the cached dump of that scale), create a fresh
database, load the dump with `undersigned import DIR` (timed: signatures/s), run the same
questions as plain SQL on one connection (the database's own time), then for each worker count
start `undersigned serve` on loopback and drive it with 16 concurrent keep-alive connections
(bounded in requests and in seconds per scenario): counts of the largest letter, overlap of the
two largest, day timeline, the letter list, one signature write. Once per backend (with the first
worker count) it also times a CSV import through the API and streams a CSV export of the largest
letter while sampling the server's memory, and measures the memory of `undersigned export DIR`
(every signature of the registry).

Every scenario that fails (a missing command, an endpoint that answers errors) is reported as
failed in the results and the run carries on. Results go to `<out>/<timestamp>-<backend>.json`
and `<out>/latest.md`. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import importlib.util
import io
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# httpcore tries `import sniffio` on every request; where it is not installed each failed import
# searches sys.path (a quarter of a millisecond). Make the miss immediate.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import overlaps as overlap_bench  # noqa: E402
from generate import BODY_SLUG, PARTIES, generate, manifest_path  # noqa: E402

PG_ADMIN_DB = "postgres"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# Targets from the issue (2 cores, 2M signatures, one worker, 16 connections).
TARGETS = {
    "counts_largest": "≥ 1,500 req/s and p99 ≤ 20 ms (1 worker)",
    "timeline_day": "≥ 550 req/s (1 worker)",
    "overlap_two_largest": overlap_bench.TARGETS["overlap_two_largest"],
    "bulk_load": "≥ 50,000 signatures/s (PostgreSQL)",
    "import_csv": "100,000 rows ≤ 5 s (≥ 20,000 rows/s)",
    "import_csv_mixed": "100,000 rows ≤ 5 s (≥ 20,000 rows/s)",
    "export_csv_api": "peak RSS growth < 100 MB",
    "export_dump_cli": "peak RSS growth < 100 MB",
}


# --------------------------------------------------------------------------------------------
# small helpers


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(len(sorted_values), rank) - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def undersigned_command() -> list[str]:
    beside = Path(sys.executable).parent / "undersigned"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("undersigned")
    if found:
        return [found]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_dirty() -> bool:
    """Whether app/ or migrations/ differ from the commit (the code measured is then not the commit's)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "app", "migrations"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return False


def scrub(text: str) -> str:
    """Results are committed: no paths of this machine in them."""
    for path, label in (
        (str(ROOT), "<repo>"),
        (sys.prefix, "<venv>"),
        (sys.base_prefix, "<python>"),
        (tempfile.gettempdir(), "<tmp>"),
        (str(Path.home()), "<home>"),
    ):
        if len(path) > 1:
            text = text.replace(path, label)
    return text


def tail(text: str, lines: int = 15) -> str:
    """The last lines of a command's output, without the frame typer draws around its errors."""
    kept = [line.strip(" ╭╮╰╯─│") for line in text.strip().splitlines()]
    kept = [line for line in kept if line and not line.startswith(("Usage:", "Try '"))]
    return "\n".join(kept[-lines:])


def failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


# --------------------------------------------------------------------------------------------
# process memory and CPU (Linux /proc)


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    i = 0
    while i < len(pids):
        task_dir = Path(f"/proc/{pids[i]}/task")
        with contextlib.suppress(OSError):
            for task in task_dir.iterdir():
                with contextlib.suppress(OSError):
                    pids.extend(int(c) for c in (task / "children").read_text().split())
        i += 1
    return pids


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


class RssSampler:
    """Samples the resident memory of a process tree every `interval` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in process_tree(self.pid):
            value = rss_bytes(pid)
            if value is None:
                continue
            self.baseline.setdefault(pid, value)
            self.peak[pid] = max(self.peak.get(pid, 0), value)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def growth(self) -> dict[str, Any]:
        per_pid = {pid: self.peak[pid] - self.baseline[pid] for pid in self.peak if pid in self.baseline}
        worst = max(per_pid, key=lambda p: per_pid[p]) if per_pid else None
        return {
            "peak_rss_growth_mb": round(per_pid[worst] / 2**20, 1) if worst else None,
            "baseline_rss_mb": round(self.baseline[worst] / 2**20, 1) if worst else None,
            "peak_rss_mb": round(self.peak[worst] / 2**20, 1) if worst else None,
            "processes_sampled": len(per_pid),
        }


# --------------------------------------------------------------------------------------------
# databases


class Backend:
    name: str
    url: str

    def prepare(self) -> None: ...
    def connect(self) -> Any: ...
    def cleanup(self) -> None: ...

    def sql(self, query: str) -> str:
        return query


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, keep: bool) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="undersigned-bench-"))
        self.path = self.tmp / "bench.db"
        self.url = f"sqlite:///{self.path}"
        self.keep = keep

    def prepare(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def connect(self) -> Any:
        return sqlite3.connect(self.path)

    def cleanup(self) -> None:
        if self.keep:
            log(f"kept the SQLite database at {self.path}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.dbname = parts.path.lstrip("/")
        if (parts.hostname or "") not in LOOPBACK:
            raise SystemExit(f"refusing a PostgreSQL server that is not on loopback: {parts.hostname}")
        if "bench" not in self.dbname:
            raise SystemExit(f"refusing to drop database {self.dbname!r}: its name must contain 'bench'")
        self.url = url
        self.admin_url = parts._replace(path="/" + PG_ADMIN_DB).geturl()

    def prepare(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.dbname}"')

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def sql(self, query: str) -> str:
        return re.sub(r"(?<!:):(\w+)", r"%(\1)s", query)

    def cleanup(self) -> None:
        pass  # left in place for inspection; the next run drops it


# --------------------------------------------------------------------------------------------
# the same questions as plain SQL

SQL_COUNTS = """
SELECT a.kind, a.country, a.org_type, m.body_id, m.party_id, count(*) AS n
FROM signatures s
JOIN actors a ON a.id = s.actor_id
LEFT JOIN memberships m ON m.actor_id = s.actor_id AND m.start_date <= s.signed_on
     AND (m.end_date IS NULL OR m.end_date >= s.signed_on)
WHERE s.letter_id = :letter AND s.signed_on <= :day
  AND (s.withdrawn_on IS NULL OR s.withdrawn_on > :day)
GROUP BY a.kind, a.country, a.org_type, m.body_id, m.party_id
"""
# Sizes of the two letters (index counts) and what they have in common: one join over the
# (letter_id, actor_id) unique index. union = size_a + size_b - common; for two letters the
# intersections follow (only a = size_a - common, only b = size_b - common).
SQL_OVERLAP = """
SELECT
  (SELECT count(*) FROM signatures WHERE letter_id = :a AND withdrawn_on IS NULL) AS size_a,
  (SELECT count(*) FROM signatures WHERE letter_id = :b AND withdrawn_on IS NULL) AS size_b,
  (SELECT count(*) FROM signatures x
     JOIN signatures y ON y.letter_id = :b AND y.actor_id = x.actor_id AND y.withdrawn_on IS NULL
    WHERE x.letter_id = :a AND x.withdrawn_on IS NULL) AS common
"""
SQL_TIMELINE = """
SELECT d, sum(n_new) AS n_new, sum(n_gone) AS n_gone FROM (
  SELECT signed_on AS d, 1 AS n_new, 0 AS n_gone FROM signatures WHERE letter_id = :letter
  UNION ALL
  SELECT withdrawn_on AS d, 0 AS n_new, 1 AS n_gone FROM signatures
   WHERE letter_id = :letter AND withdrawn_on IS NOT NULL
) t GROUP BY d ORDER BY d
"""
SQL_LETTERS = """
SELECT l.id, l.slug, l.title, l.published_on, l.claimed_signatory_count,
  (SELECT count(*) FROM signatures s WHERE s.letter_id = l.id AND s.withdrawn_on IS NULL) AS recorded
FROM letters l ORDER BY l.id LIMIT 50
"""


def letter_ids(backend: Backend, slugs: list[str]) -> dict[str, int]:
    conn = backend.connect()
    try:
        cur = conn.cursor()
        found = {}
        for slug in slugs:
            cur.execute(backend.sql("SELECT id FROM letters WHERE slug = :slug"), {"slug": slug})
            row = cur.fetchone()
            if row:
                found[slug] = int(row[0])
        return found
    finally:
        conn.close()


def table_counts(backend: Backend) -> dict[str, int | None]:
    conn = backend.connect()
    out: dict[str, int | None] = {}
    try:
        for table in ("actors", "memberships", "letters", "signatures", "campaigns", "parties", "bodies"):
            try:
                cur = conn.cursor()
                cur.execute(f"SELECT count(*) FROM {table}")
                out[table] = int(cur.fetchone()[0])
            except Exception:
                out[table] = None
                with contextlib.suppress(Exception):
                    conn.rollback()
        return out
    finally:
        conn.close()


def time_sql(
    backend: Backend,
    query: str,
    params: dict[str, Any],
    runs: int,
    seconds: float,
    setup: str | None = None,
) -> dict[str, Any]:
    """Many executions on one connection (psycopg prepares the statement after five, and
    PostgreSQL may then switch to a generic plan, as it would for the service)."""
    conn = backend.connect()
    try:
        cur = conn.cursor()
        if setup:
            cur.execute(setup)
        sql = backend.sql(query)
        timings: list[float] = []
        deadline = time.perf_counter() + seconds
        rows = 0
        result: list[Any] = []
        while len(timings) < runs and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            cur.execute(sql, params)
            result = cur.fetchall()
            timings.append(time.perf_counter() - t0)
            rows = len(result)
        first = timings[0] if timings else None
        timings.sort()
        return {
            "runs": len(timings),
            "rows": rows,
            "first_ms": ms(first),
            "p50_ms": ms(percentile(timings, 50)),
            "p99_ms": ms(percentile(timings, 99)),
            "answer": [list(r) for r in result],
        }
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# the HTTP load client (runs in this process; the server is a separate process)

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


# --------------------------------------------------------------------------------------------
# the server


class Server:
    def __init__(self, env: dict[str, str], workers: int, log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log_file = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                *undersigned_command(),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            cwd=ROOT,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                r = httpx.get(self.base_url + "/readyz", timeout=2.0, trust_env=False)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = failure(exc)
            time.sleep(0.25)
        raise RuntimeError(f"server not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return tail(self.log_path.read_text(errors="replace"))
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)  # our own session only
                self.process.wait(timeout=10)
        self.log_file.close()


def mixed_import_csv(dump: Path, rows: int) -> str:
    """A CSV of `rows` rows (`import_csv_mixed`): three in five name an actor of the dump
    (every k-th, in turn by name alone, by name and its `benchref` identifier, or — persons — by
    name with the body and party of their first seat), two in five are new: organisations with
    a country, a type and a website, and persons with a seat. Deterministic."""
    with (dump / "actors.csv").open(newline="", encoding="utf-8") as f:
        actors = list(csv.DictReader(f))
    with (dump / "memberships.csv").open(newline="", encoding="utf-8") as f:
        seats: dict[str, dict[str, str]] = {}
        for seat in csv.DictReader(f):
            seats.setdefault(seat["actor_ref"], seat)
    known = rows * 3 // 5
    step = max(1, len(actors) // max(1, known))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "kind", "country", "org_type", "identifiers", "body", "party"])
    for n, actor in enumerate(actors[::step][:known]):
        row = [actor["name"], actor["kind"], actor["country"], actor["org_type"], "", "", ""]
        seat = seats.get(actor["ref"])
        if n % 3 == 1:
            row[4] = actor["identifiers"]
        elif n % 3 == 2 and seat:
            row[5:7] = [seat["body"], seat["party"]]
        writer.writerow(row)
    for n in range(rows - min(known, len(actors[::step]))):
        if n % 3:
            country = ("GB", "FR", "DE", "US")[n % 4]
            website = f"https://mixed-{n:06d}.example.org"
            writer.writerow(
                [
                    f"Mixed Organisation {n:06d} Wren",
                    "organisation",
                    country,
                    "ngo",
                    f"website:{website}",
                    "",
                    "",
                ]
            )
        else:
            writer.writerow([f"Mixed Person {n:06d} Osei", "person", "GB", "", "", BODY_SLUG, PARTIES[0][0]])
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# one backend


class Run:
    def __init__(
        self, args: argparse.Namespace, backend: Backend, dump: Path, manifest: dict[str, Any]
    ) -> None:
        self.args = args
        self.backend = backend
        self.dump = dump
        self.manifest = manifest
        self.env = {
            **os.environ,
            "DATABASE_URL": backend.url,
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("TEST_DATABASE_URL", None)
        slugs = [entry["slug"] for entry in manifest["largest_letters"]]
        self.largest = slugs[0]
        self.second = slugs[1] if len(slugs) > 1 else slugs[0]
        n_letters = int(manifest["letters"])
        self.write_letter = f"bench-letter-{min(100, n_letters):04d}"
        self.key: str | None = None
        self.result: dict[str, Any] = {
            "backend": backend.name,
            "scale": args.scale,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average_at_start": list(os.getloadavg()),
            "dataset": manifest,
            "steps": {},
            "sql": {},
            "runs": [],
        }
        self.workdir = Path(tempfile.mkdtemp(prefix=f"undersigned-bench-{backend.name}-"))

    def step(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        log(f"{self.backend.name}: {name}")
        t0 = time.perf_counter()
        try:
            out = fn()
            out.setdefault("ok", True)
        except Exception as exc:
            out = {"ok": False, "error": failure(exc), "trace": tail(traceback.format_exc(), 6)}
            log(f"{self.backend.name}: {name} FAILED: {out['error']}")
        out["step_seconds"] = round(time.perf_counter() - t0, 2)
        return out

    def cli(self, *argv: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*undersigned_command(), *argv],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    # steps ------------------------------------------------------------------------------

    def create_database(self) -> dict[str, Any]:
        self.backend.prepare()
        done = self.cli("db", "upgrade", timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"`undersigned db upgrade` exited {done.returncode}: {tail(done.stderr)}")
        return {
            "database": "a SQLite file in a temporary folder"
            if self.backend.name == "sqlite"
            else "PostgreSQL on loopback"
        }

    def bulk_load(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        done = self.cli("import", str(self.dump))
        seconds = time.perf_counter() - t0
        out: dict[str, Any] = {"seconds": round(seconds, 2), "exit_code": done.returncode}
        if self.backend.name == "postgresql":
            out["target"] = TARGETS["bulk_load"]
        if done.returncode != 0:
            out.update(
                ok=False,
                met=False if "target" in out else None,
                error=f"`undersigned import DIR` exited {done.returncode}: {tail(done.stderr or done.stdout, 4)}",
            )
            if self.args.fallback:
                out["fallback_load"] = self.fallback_load()
            return out
        counts = table_counts(self.backend)
        out["tables"] = counts
        expected = int(self.manifest["signatures"])
        out["signatures_per_s"] = round(expected / seconds, 1)
        if counts.get("signatures") != expected or counts.get("actors") != self.manifest["actors"]:
            out.update(
                ok=False,
                error=f"loaded {counts.get('signatures')} signatures and {counts.get('actors')} actors, "
                f"expected {expected} and {self.manifest['actors']}",
            )
        if "target" in out:
            out["met"] = out.get("ok", True) and out["signatures_per_s"] >= 50_000
        if self.args.after_load:
            # An extra CLI step the load should have made unnecessary; timed apart, never hidden.
            t1 = time.perf_counter()
            extra = self.cli(*self.args.after_load.split())
            out["after_load"] = {
                "command": f"undersigned {self.args.after_load}",
                "exit_code": extra.returncode,
                "seconds": round(time.perf_counter() - t1, 2),
                "output": tail(extra.stdout + extra.stderr, 4),
            }
        self.analyze()
        return out

    def analyze(self) -> None:
        """PostgreSQL: what autovacuum would have done a minute after the load."""
        if self.backend.name == "postgresql":
            conn = self.backend.connect()
            try:
                conn.execute("ANALYZE")
            finally:
                conn.close()

    def fallback_load(self) -> dict[str, Any]:
        """Only so the HTTP scenarios have data when the product's loader fails; never a result."""
        log(f"{self.backend.name}: `undersigned import DIR` failed; loading with benchmarks/fallback_load.py")
        self.backend.prepare()  # the failed import may have left rows behind
        migrated = self.cli("db", "upgrade", timeout=600)
        if migrated.returncode != 0:
            return {"ok": False, "error": f"db upgrade exited {migrated.returncode}: {tail(migrated.stderr)}"}
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(HERE / "fallback_load.py"), str(self.dump)],
            env={**self.env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=7200,
        )
        out: dict[str, Any] = {"ok": done.returncode == 0, "seconds": round(time.perf_counter() - t0, 2)}
        if done.returncode != 0:
            out["error"] = tail(done.stderr, 6)
            return out
        out["tables"] = table_counts(self.backend)
        self.analyze()
        return out

    def create_key(self) -> dict[str, Any]:
        done = self.cli("keys", "create", "--name", "bench", "--scope", "write", timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"`undersigned keys create` exited {done.returncode}: {tail(done.stderr)}")
        self.key = done.stdout.strip().splitlines()[-1].strip()
        return {}

    def plain_sql(self) -> dict[str, Any]:
        ids = letter_ids(self.backend, [self.largest, self.second])
        if self.largest not in ids:
            raise RuntimeError(f"letter {self.largest} is not in the database (was the load successful?)")
        today = date.today()
        day: Any = today if self.backend.name == "postgresql" else today.isoformat()
        runs, seconds = self.args.sql_runs, self.args.sql_seconds
        questions = {
            "counts_largest": (SQL_COUNTS, {"letter": ids[self.largest], "day": day}),
            "overlap_two_largest": (
                SQL_OVERLAP,
                {"a": ids[self.largest], "b": ids.get(self.second, ids[self.largest])},
            ),
            "timeline_day": (SQL_TIMELINE, {"letter": ids[self.largest]}),
            "letters_list": (SQL_LETTERS, {}),
        }
        out: dict[str, Any] = {}
        for name, (query, params) in questions.items():
            try:
                out[name] = time_sql(self.backend, query, params, runs, seconds)
            except Exception as exc:
                out[name] = {"ok": False, "error": failure(exc)}
        if self.backend.name == "postgresql":
            # Mind the planner: the same counts with each plan forced, to show what the switch to
            # a generic plan after five executions costs (or saves) for the largest letter.
            query, params = questions["counts_largest"]
            for mode in ("custom", "generic"):
                try:
                    out[f"counts_largest ({mode} plan)"] = time_sql(
                        self.backend, query, params, runs, seconds, f"SET plan_cache_mode = force_{mode}_plan"
                    )
                except Exception as exc:
                    out[f"counts_largest ({mode} plan)"] = {"ok": False, "error": failure(exc)}
        # What the service must agree with (checked once the server is up).
        expected: dict[str, Any] = {}
        with contextlib.suppress(KeyError, IndexError, TypeError):
            expected["counts_recorded"] = sum(int(r[5]) for r in out["counts_largest"].pop("answer"))
        with contextlib.suppress(KeyError, IndexError, TypeError, ValueError):
            size_a, size_b, common = (int(v) for v in out["overlap_two_largest"].pop("answer")[0])
            expected["overlap"] = {"size_a": size_a, "size_b": size_b, "common": common}
        with contextlib.suppress(KeyError, IndexError, TypeError):
            answer = out["timeline_day"].pop("answer")
            expected["timeline"] = {
                "new": sum(int(r[1]) for r in answer),
                "withdrawn": sum(int(r[2]) for r in answer),
            }
        for q in out.values():
            q.pop("answer", None)
        out.update(overlap_bench.plain_sql(self, time_sql, letter_ids))
        self.result["sql"] = out
        self.expected = expected
        return {"expected": expected}

    def consistency(self, server: Server) -> dict[str, Any]:
        """The service and the plain SQL must give the same answers, or the timings compare nothing."""
        expected = getattr(self, "expected", {})
        checks: dict[str, Any] = {}
        with httpx.Client(base_url=server.base_url, timeout=120.0, trust_env=False) as client:
            if "counts_recorded" in expected:
                body = client.get(f"/v1/letters/{self.largest}/counts").json()
                checks["counts_recorded"] = {
                    "service": body.get("recorded"),
                    "sql": expected["counts_recorded"],
                }
            if "overlap" in expected:
                body = client.get(f"/v1/overlaps?letters={self.largest},{self.second}").json()
                pairs = body.get("pairs") or [{}]
                checks["overlap_common"] = {
                    "service": pairs[0].get("common"),
                    "sql": expected["overlap"]["common"],
                }
                checks["overlap_sizes"] = {
                    "service": [
                        (body.get("sizes") or {}).get(self.largest),
                        (body.get("sizes") or {}).get(self.second),
                    ],
                    "sql": [expected["overlap"]["size_a"], expected["overlap"]["size_b"]],
                }
            if "timeline" in expected:
                body = client.get(f"/v1/letters/{self.largest}/timeline?interval=day").json()
                points = body.get("points") or []
                checks["timeline_new"] = {
                    "service": sum(p.get("new", 0) for p in points),
                    "sql": expected["timeline"]["new"],
                }
                checks["timeline_withdrawn"] = {
                    "service": sum(p.get("withdrawn", 0) for p in points),
                    "sql": expected["timeline"]["withdrawn"],
                }
        bad = [name for name, c in checks.items() if c["service"] != c["sql"]]
        out: dict[str, Any] = {"checks": checks, "ok": not bad}
        if bad:
            out["error"] = "service and plain SQL disagree on " + ", ".join(bad)
        return out

    # HTTP scenarios ---------------------------------------------------------------------

    def scenarios(self, tag: str) -> dict[str, tuple[Callable[[int], Request], tuple[int, ...], bool]]:
        auth = {"Authorization": f"Bearer {self.key}"} if self.key else {}

        def get(path: str) -> Callable[[int], Request]:
            return lambda n: ("GET", path, {})

        def write(n: int) -> Request:
            return (
                "POST",
                f"/v1/letters/{self.write_letter}/signatures",
                {
                    "json": {"actor": {"kind": "person", "name": f"Bench writer {tag} {n:06d}"}},
                    "headers": auth,
                },
            )

        # name -> (request factory, expected statuses, is a read)
        return {
            "healthz_ceiling": (get("/healthz"), (200,), True),
            "counts_largest": (get(f"/v1/letters/{self.largest}/counts"), (200,), True),
            "overlap_two_largest": (get(f"/v1/overlaps?letters={self.largest},{self.second}"), (200,), True),
            **overlap_bench.scenarios(self),
            "timeline_day": (get(f"/v1/letters/{self.largest}/timeline?interval=day"), (200,), True),
            "letters_list": (get("/v1/letters?limit=50"), (200,), True),
            "signature_write": (write, (201,), False),
        }

    def serve_and_load(self, workers: int, first: bool) -> dict[str, Any]:
        args = self.args
        run: dict[str, Any] = {"workers": workers, "scenarios": {}}
        server = Server(self.env, workers, self.workdir / f"server-w{workers}.log")
        try:
            server.wait_ready()
            run["server_cpu_seconds_start"] = cpu_seconds(process_tree(server.process.pid))
            tag = f"w{workers}-{os.getpid()}"
            if first:
                run["consistency"] = self.step("consistency with plain SQL", lambda: self.consistency(server))
            for name, (make, expect, read) in self.scenarios(tag).items():
                if not self.wanted(name):
                    continue
                log(f"{self.backend.name} w{workers}: {name}")
                try:
                    scenario: dict[str, Any] = {}
                    if read:
                        # warm-up, then one connection (unloaded latency), then the concurrent load
                        asyncio.run(
                            drive(
                                server.base_url,
                                make,
                                args.concurrency,
                                args.warmup,
                                30.0,
                                expect,
                                args.client,
                            )
                        )
                        seq = asyncio.run(
                            drive(
                                server.base_url,
                                make,
                                1,
                                args.sequential,
                                args.seconds / 2,
                                expect,
                                args.client,
                            )
                        )
                        scenario["sequential"] = seq
                    pids = process_tree(server.process.pid)
                    cpu0 = cpu_seconds(pids)
                    load = asyncio.run(
                        drive(
                            server.base_url,
                            make,
                            args.concurrency,
                            args.requests if read else args.write_requests,
                            args.seconds,
                            expect,
                            args.client,
                        )
                    )
                    if load["seconds"]:
                        load["server_cpu_share"] = round((cpu_seconds(pids) - cpu0) / load["seconds"], 2)
                    scenario["load"] = load
                    scenario["ok"] = load["errors"] == 0 and load["requests"] > 0
                    if not scenario["ok"]:
                        scenario["error"] = load["error_sample"] or "no request completed"
                except Exception as exc:
                    scenario = {"ok": False, "error": failure(exc)}
                run["scenarios"][name] = scenario
            if first and self.wanted("overlap_after_write"):
                run["scenarios"]["overlap_after_write"] = self.step(
                    "overlap_after_write",
                    lambda: overlap_bench.after_write(self, server.base_url, letter_ids),
                )
            if first and self.wanted("pair_cost"):
                run["scenarios"]["pair_cost"] = self.step("pair_cost", lambda: overlap_bench.pair_cost(self))
            for name in ("import_csv", "import_csv_mixed"):
                if first and self.wanted(name):
                    run["scenarios"][name] = self.step(
                        name, lambda name=name: self.import_csv(server, workers, name)
                    )
            if first and self.wanted("export_csv_api"):
                run["scenarios"]["export_csv_api"] = self.step(
                    "export_csv_api", lambda: self.export_api(server)
                )
        except Exception as exc:
            run["error"] = failure(exc)
            log(f"{self.backend.name} w{workers}: FAILED {run['error']}")
        finally:
            server.stop()
            run["server_log_tail"] = server.log_tail()
        return run

    def wanted(self, name: str) -> bool:
        return not self.args.only or name in self.args.only

    def import_csv(self, server: Server, workers: int, name: str) -> dict[str, Any]:
        """A new letter, then one CSV of `--import-rows` rows through the import endpoint: all
        new actors (`import_csv`) or, as a campaign's list re-imported with additions looks,
        mostly actors the registry has (`import_csv_mixed`, see `mixed_import_csv`)."""
        rows = self.args.import_rows
        slug = f"bench-{name.replace('_', '-')}-w{workers}"
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        if name == "import_csv_mixed":
            body = mixed_import_csv(self.dump, rows).encode()
        else:
            lines = ["name,kind"]
            for n in range(1, rows + 1):
                if n % 3:
                    lines.append(f"Imported Organisation {n:06d} Heron,organisation")
                else:
                    lines.append(f"Imported Person {n:06d} Lindqvist,person")
            body = ("\n".join(lines) + "\n").encode()
        with httpx.Client(base_url=server.base_url, timeout=900.0, trust_env=False) as client:
            created = client.post(
                "/v1/letters",
                json={
                    "slug": slug,
                    "title": f"Bench import ({rows} rows)",
                    "published_on": self.manifest["window"][0],
                },
                headers=headers,
            )
            if created.status_code != 201:
                raise RuntimeError(f"POST /v1/letters -> {created.status_code}: {created.text[:300]}")
            t0 = time.perf_counter()
            response = client.post(
                f"/v1/letters/{slug}/signatures/import",
                content=body,
                headers={**headers, "Content-Type": "text/csv"},
            )
            seconds = time.perf_counter() - t0
        out: dict[str, Any] = {
            "rows": rows,
            "bytes": len(body),
            "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds, 1),
            "status": response.status_code,
            "target": TARGETS[name],
        }
        with contextlib.suppress(ValueError):
            out["summary"] = response.json().get("summary")
        if response.status_code != 200:
            out.update(ok=False, error=f"{response.status_code}: {response.text[:300]}", met=False)
        else:
            out["met"] = rows / seconds >= 20_000
        return out

    def export_api(self, server: Server) -> dict[str, Any]:
        rows = 0
        size = 0
        status = None
        with RssSampler(server.process.pid) as sampler:
            t0 = time.perf_counter()
            with (
                httpx.Client(base_url=server.base_url, timeout=900.0, trust_env=False) as client,
                client.stream("GET", f"/v1/letters/{self.largest}/signatures?format=csv") as response,
            ):
                status = response.status_code
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    rows += chunk.count(b"\n")
            seconds = time.perf_counter() - t0
        out: dict[str, Any] = {
            "status": status,
            "lines": rows,
            "bytes": size,
            "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds, 1) if seconds else None,
            **sampler.growth(),
            "target": TARGETS["export_csv_api"],
        }
        if status != 200:
            out.update(ok=False, error=f"status {status}", met=False)
        else:
            growth = out["peak_rss_growth_mb"]
            out["met"] = growth is not None and growth < 100
        return out

    def export_cli(self) -> dict[str, Any]:
        """`undersigned export DIR` writes every signature; its peak RSS over that of a CLI
        command that imports the same code and touches the database (`keys list`)."""

        def max_rss(argv: list[str]) -> tuple[int, int, float, str]:
            t0 = time.perf_counter()
            with tempfile.TemporaryFile() as errors:
                process = subprocess.Popen(
                    [*undersigned_command(), *argv],
                    env=self.env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                )
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                errors.seek(0)
                text = errors.read().decode(errors="replace")
            return process.returncode, usage.ru_maxrss * 1024, time.perf_counter() - t0, text

        code, base, _, text = max_rss(["keys", "list"])
        if code != 0:
            raise RuntimeError(f"`undersigned keys list` exited {code}: {tail(text)}")
        target = self.workdir / "export"
        shutil.rmtree(target, ignore_errors=True)
        code, peak, seconds, text = max_rss(["export", str(target)])
        out: dict[str, Any] = {
            "exit_code": code,
            "seconds": round(seconds, 2),
            "target": TARGETS["export_dump_cli"],
        }
        if code != 0:
            out.update(ok=False, error=f"`undersigned export DIR` exited {code}: {tail(text)}", met=False)
            return out
        signatures = target / "signatures.csv"
        lines = 0
        if signatures.exists():
            with signatures.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    lines += block.count(b"\n")
        out.update(
            signature_lines=max(0, lines - 1),
            baseline_rss_mb=round(base / 2**20, 1),
            peak_rss_mb=round(peak / 2**20, 1),
            peak_rss_growth_mb=round((peak - base) / 2**20, 1),
            met=(peak - base) / 2**20 < 100,
        )
        shutil.rmtree(target, ignore_errors=True)
        return out

    # the whole backend ----------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        steps = self.result["steps"]
        try:
            steps["create_database"] = self.step("create database", self.create_database)
            steps["bulk_load"] = self.step("bulk load (undersigned import DIR)", self.bulk_load)
            steps["create_key"] = self.step("write key", self.create_key)
            steps["plain_sql"] = self.step("plain SQL", self.plain_sql)
            for i, workers in enumerate(self.args.workers):
                self.result["runs"].append(self.serve_and_load(workers, first=i == 0))
            if self.wanted("export_dump_cli"):
                steps["export_dump_cli"] = self.step("export (undersigned export DIR)", self.export_cli)
        finally:
            self.result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            self.result["load_average_at_end"] = list(os.getloadavg())
            self.backend.cleanup()
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.result


# --------------------------------------------------------------------------------------------
# report


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def http_target(
    name: str, workers: int, scenario: dict[str, Any], sql: dict[str, Any]
) -> tuple[str, Any, Any]:
    """(target, ratio, met) for one HTTP scenario."""
    load = scenario.get("load") or {}
    seq = scenario.get("sequential") or {}
    sql_p50 = (sql.get(name) or {}).get("p50_ms")
    ratio = round(seq["p50_ms"] / sql_p50, 2) if seq.get("p50_ms") and sql_p50 else None
    ok = scenario.get("ok", False)
    if name == "counts_largest" and workers == 1:
        met = ok and (load.get("rps") or 0) >= 1500 and (load.get("p99_ms") or 1e9) <= 20
        return TARGETS[name], ratio, met
    if name == "timeline_day" and workers == 1:
        return TARGETS[name], ratio, ok and (load.get("rps") or 0) >= 550
    if name == "overlap_two_largest" and workers == 1:
        met = ok and (load.get("rps") or 0) >= 3000 and (load.get("p99_ms") or 1e9) <= 20
        return TARGETS[name], ratio, met
    return "", ratio, None


def markdown(results: list[dict[str, Any]], args: argparse.Namespace, files: list[str]) -> str:
    first = results[0] if results else {}
    dataset = first.get("dataset", {})
    lines = [
        "# Undersigned benchmark results",
        "",
        f"- run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_commit() or '?'}"
        + (" with uncommitted changes to app/ or migrations/" if git_dirty() else ""),
        f"- **scale {args.scale}**: {fmt(dataset.get('signatures'))} signatures, {fmt(dataset.get('actors'))} actors, "
        f"{fmt(dataset.get('letters'))} letters; largest letter {fmt((dataset.get('largest_letters') or [{}])[0].get('signatures'))} "
        f"signatures, second {fmt((dataset.get('largest_letters') or [{}, {}])[1].get('signatures'))}"
        + ("" if args.scale == 1 else " — **not the full size: the targets are for scale 1**"),
        f"- machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        "client and server share the machine (loopback)",
        "- load average (1, 5, 15 min) before each backend's run: "
        + "; ".join(
            f"{r['backend']} {', '.join(f'{x:.1f}' for x in r.get('load_average_at_start', []))}"
            for r in results
        )
        + " — anything well above 0 means other work shared the cores and the rates are low",
        f"- load: {args.concurrency} concurrent keep-alive connections ({args.client} client), at most {args.requests:,} requests "
        f"({args.write_requests:,} for writes) or {args.seconds:g} s per scenario, after {args.warmup} warm-up requests; "
        f"unloaded latency from one connection ({args.sequential} requests); plain SQL: up to {args.sql_runs} "
        "executions on one connection",
        f"- files: {', '.join(files)}",
        "",
        "## HTTP scenarios",
        "",
        "`seq p50` is the latency on one connection with nothing else running; `ratio` = seq p50 / SQL p50 "
        "(the service's time over the database's own time for the same question).",
        "",
        "| scenario | backend | workers | req/s | p50 ms | p99 ms | errors | seq p50 ms | SQL p50 ms | ratio | target | met? |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for result in results:
        sql = result.get("sql", {})
        for run in result.get("runs", []):
            if run.get("error") and not run.get("scenarios"):
                lines.append(
                    f"| (server) | {result['backend']} | {run['workers']} | failed: {cell(run['error'][:120])} "
                    "| | | | | | | | |"
                )
            for name, scenario in run.get("scenarios", {}).items():
                if (
                    "load" not in scenario
                    and "sequential" not in scenario
                    and name
                    in (
                        "import_csv",
                        "import_csv_mixed",
                        "export_csv_api",
                        "overlap_after_write",
                        "pair_cost",
                    )
                ):
                    continue
                load = scenario.get("load") or {}
                seq = scenario.get("sequential") or {}
                target, ratio, met = http_target(name, run["workers"], scenario, sql)
                errors = load.get("errors")
                if not scenario.get("ok") and not load:
                    errors = f"failed: {cell(scenario.get('error', '')[:100])}"
                lines.append(
                    f"| {name} | {result['backend']} | {run['workers']} | {fmt(load.get('rps'))} | {fmt(load.get('p50_ms'), 2)} "
                    f"| {fmt(load.get('p99_ms'), 2)} | {fmt(errors)} | {fmt(seq.get('p50_ms'), 2)} "
                    f"| {fmt((sql.get(name) or {}).get('p50_ms'), 2)} | {fmt(ratio, 2)} | {target} | {fmt(met)} |"
                )
    lines += [
        "",
        "## Load, import, export",
        "",
        "| scenario | backend | workers | result | target | met? |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for result in results:
        backend = result["backend"]
        load = result.get("steps", {}).get("bulk_load", {})
        if load.get("ok"):
            text = f"{fmt(load.get('signatures_per_s'), 0)} signatures/s ({fmt(load.get('seconds'), 1)} s)"
            after = load.get("after_load")
            if after:
                text += cell(
                    f", then `{after['command']}` (exit {after['exit_code']}, {fmt(after['seconds'], 1)} s, not counted)"
                )
        else:
            text = f"failed: {cell(load.get('error', '')[:200])}"
            fallback = load.get("fallback_load")
            if fallback:
                text += (
                    f" — data loaded by benchmarks/fallback_load.py instead ({fmt(fallback.get('seconds'), 1)} s, "
                    "not a product figure) so the other scenarios could run"
                    if fallback.get("ok")
                    else f" — fallback loader failed too: {cell(str(fallback.get('error'))[:200])}"
                )
        lines.append(
            f"| bulk_load | {backend} | — | {text} | {load.get('target', '')} | {fmt(load.get('met'))} |"
        )
        for run in result.get("runs", []):
            for name in ("import_csv", "import_csv_mixed", "export_csv_api"):
                step = run.get("scenarios", {}).get(name)
                if not step:
                    continue
                if step.get("ok"):
                    if name.startswith("import_csv"):
                        text = f"{fmt(step['rows'])} rows in {fmt(step['seconds'], 2)} s ({fmt(step['rows_per_s'], 0)} rows/s)"
                    else:
                        text = (
                            f"{fmt(step['lines'])} lines, {fmt(step['bytes'] / 2**20, 1)} MB in {fmt(step['seconds'], 2)} s; "
                            f"peak RSS growth {fmt(step['peak_rss_growth_mb'])} MB"
                        )
                else:
                    text = f"failed: {cell(step.get('error', '')[:200])}"
                lines.append(
                    f"| {name} | {backend} | {run['workers']} | {text} | {step.get('target', '')} | {fmt(step.get('met'))} |"
                )
        for run in result.get("runs", []):
            check = run.get("consistency")
            if check:
                pairs = ", ".join(
                    f"{name} {c['service']} vs {c['sql']}" for name, c in (check.get("checks") or {}).items()
                )
                text = ("agree: " if check.get("ok") else f"{cell(check.get('error', ''))}: ") + (
                    pairs or "nothing to compare"
                )
                lines.append(
                    f"| consistency (service vs SQL) | {backend} | {run['workers']} | {text} | same answers | {fmt(check.get('ok'))} |"
                )
        step = result.get("steps", {}).get("export_dump_cli")
        if step:
            if step.get("ok"):
                text = (
                    f"{fmt(step.get('signature_lines'))} signatures in {fmt(step['seconds'], 1)} s; "
                    f"peak RSS growth {fmt(step['peak_rss_growth_mb'])} MB over `keys list`"
                )
            else:
                text = f"failed: {cell(step.get('error', '')[:200])}"
            lines.append(
                f"| export_dump_cli | {backend} | — | {text} | {step.get('target', '')} | {fmt(step.get('met'))} |"
            )
    lines += ["", "## Plain SQL (database's own time, one connection)", ""]
    lines += [
        "| question | backend | runs | first ms | p50 ms | p99 ms | rows |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for name, q in result.get("sql", {}).items():
            if q.get("ok") is False:
                lines.append(
                    f"| {name} | {result['backend']} | failed: {cell(q.get('error', '')[:150])} | | | | |"
                )
                continue
            lines.append(
                f"| {name} | {result['backend']} | {fmt(q.get('runs'))} | {fmt(q.get('first_ms'), 2)} | {fmt(q.get('p50_ms'), 2)} "
                f"| {fmt(q.get('p99_ms'), 2)} | {fmt(q.get('rows'))} |"
            )
    lines += overlap_bench.markdown_lines(results)
    failures = []
    for result in results:
        for name, step in result.get("steps", {}).items():
            if not step.get("ok"):
                failures.append(f"- {result['backend']} {name}: {cell(step.get('error'))}")
        for run in result.get("runs", []):
            if run.get("consistency") and not run["consistency"].get("ok"):
                failures.append(
                    f"- {result['backend']} consistency: {cell(run['consistency'].get('error', ''))}"
                )
            if run.get("error"):
                failures.append(
                    f"- {result['backend']} workers={run['workers']} server: {run['error'][:500]}"
                )
            for name, scenario in run.get("scenarios", {}).items():
                if not scenario.get("ok"):
                    failures.append(
                        f"- {result['backend']} workers={run['workers']} {name}: {str(scenario.get('error'))[:300]}"
                    )
    if failures:
        lines += ["", "## Failures", "", *failures]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1 = 2M signatures (the targets' size); 0.01 quick"
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated worker counts for `serve --workers`"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache", help="where generated dumps are kept")
    parser.add_argument("--regenerate", action="store_true", help="generate the dump even if cached")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/undersigned_bench")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load client: a minimal asyncio HTTP/1.1 client (default) or httpx (costlier per request)",
    )
    parser.add_argument("--requests", type=int, default=5000, help="most requests per read scenario")
    parser.add_argument(
        "--write-requests", type=int, default=1000, help="most requests of the write scenario"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds per scenario")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up requests per scenario")
    parser.add_argument(
        "--sequential", type=int, default=100, help="requests on one connection (unloaded latency)"
    )
    parser.add_argument("--sql-runs", type=int, default=200)
    parser.add_argument("--sql-seconds", type=float, default=20.0)
    parser.add_argument(
        "--import-rows", type=int, default=None, help="CSV import rows (default 100,000 × scale, ≥ 1,000)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios to run (healthz_ceiling, counts_largest, overlap_two_largest, "
        "overlap_50_letters, overlap_after_write, pair_cost, "
        "timeline_day, letters_list, signature_write, import_csv, import_csv_mixed, export_csv_api, "
        "export_dump_cli); "
        "default all. The load and the plain SQL always run.",
    )
    parser.add_argument(
        "--after-load",
        default="",
        help="an `undersigned` sub-command to run after the load, e.g. 'db rebuild-rollups' (timed apart, reported)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the SQLite database file")
    parser.add_argument(
        "--no-fallback",
        dest="fallback",
        action="store_false",
        help="if `undersigned import DIR` fails, do not load the data with benchmarks/fallback_load.py",
    )
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    args.only = {name.strip() for name in args.only.split(",") if name.strip()}
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.import_rows is None:
        args.import_rows = max(1000, round(100_000 * min(1.0, args.scale)))
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["streams"]:  # the live counts scenario: benchmarks/streams.py
        import streams

        return streams.main(argv[1:])
    args = parse_args(argv)
    dump = args.cache / f"scale-{args.scale:g}" / "dump"
    manifest_file = manifest_path(dump)
    if args.regenerate or not manifest_file.exists():
        log(f"generating the scale-{args.scale:g} dump into {dump}")
        shutil.rmtree(dump, ignore_errors=True)
        manifest = generate(dump, args.scale)
    else:
        manifest = json.loads(manifest_file.read_text())
        log(f"reusing the cached dump {dump} ({manifest['signatures']:,} signatures)")

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = now_stamp()
    results: list[dict[str, Any]] = []
    files: list[str] = []
    for name in args.backends:
        backend: Backend = SQLiteBackend(args.keep) if name == "sqlite" else PostgresBackend(args.pg_url)
        result = Run(args, backend, dump, manifest).execute()
        result["commit"] = git_commit()
        result["uncommitted_changes"] = git_dirty()
        result["settings"] = {
            k: (str(v) if isinstance(v, Path) else sorted(v) if isinstance(v, set) else v)
            for k, v in vars(args).items()
            if k not in ("out", "cache")
        }
        path = args.out / f"{stamp}-{name}.json"
        path.write_text(scrub(json.dumps(result, indent=2, default=str)) + "\n", encoding="utf-8")
        files.append(path.name)
        results.append(result)
        log(f"wrote {path}")
    report = scrub(markdown(results, args, files))
    (args.out / "latest.md").write_text(report, encoding="utf-8")
    print(report)
    log(f"wrote {args.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
