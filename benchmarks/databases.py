"""The two databases a run measures, made fresh for it, and the plain-SQL helpers that ask them
directly (one connection, no service in between)."""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import log, ms, percentile

PG_ADMIN_DB = "postgres"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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
