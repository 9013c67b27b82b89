"""Many writers at once, with real threads against a real server: every signature and every
actor exactly once. And a server killed with SIGKILL in the middle of an import leaves all of
the import or none of it."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import string
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.orm import Session

from app import rollups
from app.auth import hash_key, new_key
from app.config import Settings, driver_url
from app.db.database import Database
from app.db.engine import create_engine_for
from app.models import Actor, ApiKey, Letter, Signature
from tests.live import Live, free_port, live_server
from tests.waiting import answers, wait_for

WRITERS = 8


def _counts(live: Live, slug: str) -> tuple[int, int]:
    with Session(live.database.engine) as s:
        letter_id = s.scalar(select(Letter.id).where(Letter.slug == slug))
        signatures = s.scalar(select(func.count()).where(Signature.letter_id == letter_id)) or 0
        actors = s.scalar(select(func.count()).select_from(Actor)) or 0
        return int(signatures), int(actors)


def test_parallel_writers_of_single_signatures(migrated_database_url: str) -> None:
    with live_server(migrated_database_url) as live, live.client() as c:
        c.post("/v1/letters", json={"slug": "busy", "title": "Busy", "published_on": "2020-09-09"})
        shared = c.post("/v1/actors", json={"kind": "person", "name": "Everyone signs me"}).json()["id"]

        def writer(n: int) -> list[int]:
            codes = []
            with live.client() as mine:
                for i in range(15):
                    body = {"actor": {"kind": "organisation", "name": f"Writer {n} org {i}"}}
                    codes.append(mine.post("/v1/letters/busy/signatures", json=body).status_code)
                codes.append(mine.post("/v1/letters/busy/signatures", json={"actor_id": shared}).status_code)
            return codes

        with ThreadPoolExecutor(WRITERS) as pool:
            codes = [code for result in pool.map(writer, range(WRITERS)) for code in result]
        tally = Counter(codes)
        assert tally[201] == WRITERS * 15 + 1 and tally[409] == WRITERS - 1, tally
        signatures, actors = _counts(live, "busy")
        assert signatures == WRITERS * 15 + 1 and actors == WRITERS * 15 + 1
        counts = c.get("/v1/letters/busy/counts").json()
        assert counts["recorded"] == signatures
        with Session(live.database.engine) as s:
            kept = rollups.snapshot(s)
            rollups.rebuild(s)
            assert rollups.snapshot(s) == kept


def test_the_same_actor_created_from_parallel_requests_exists_once(migrated_database_url: str) -> None:
    with live_server(migrated_database_url) as live:
        barrier = threading.Barrier(WRITERS)

        def create(_: int) -> int:
            with live.client() as mine:
                barrier.wait()
                body = {
                    "kind": "person",
                    "name": "Twin",
                    "identifiers": [{"scheme": "wikidata", "value": "Q42"}],
                }
                return mine.post("/v1/actors", json=body).status_code

        with ThreadPoolExecutor(WRITERS) as pool:
            tally = Counter(pool.map(create, range(WRITERS)))
        assert tally == Counter({201: 1, 409: WRITERS - 1})
        assert _counts_actors(live) == 1


def _counts_actors(live: Live) -> int:
    with Session(live.database.engine) as s:
        return int(s.scalar(select(func.count()).select_from(Actor)) or 0)


def test_parallel_imports_of_overlapping_lists(migrated_database_url: str) -> None:
    rng = random.Random(7)  # names far apart, so fuzzy matching takes none for another
    names = ["".join(rng.choices(string.ascii_lowercase, k=10)).title() + " Network" for _ in range(120)]
    with live_server(migrated_database_url) as live, live.client() as c:
        c.post("/v1/letters", json={"slug": "joint", "title": "Joint", "published_on": "2020-09-09"})
        barrier = threading.Barrier(WRITERS)

        def importer(n: int) -> int:
            part = names[n * 10 : n * 10 + 60]  # each list overlaps its neighbours
            csv = "name,kind\n" + "".join(f"{x},organisation\n" for x in part)
            with live.client(timeout=120) as mine:
                barrier.wait()
                r = mine.post(
                    "/v1/letters/joint/signatures/import", content=csv, headers={"Content-Type": "text/csv"}
                )
                return r.status_code

        with ThreadPoolExecutor(WRITERS) as pool:
            assert set(pool.map(importer, range(WRITERS))) == {200}
        expected = len(set(names[: (WRITERS - 1) * 10 + 60]))
        assert _counts(live, "joint") == (expected, expected)


def _server_command() -> list[str]:
    exe = shutil.which("undersigned", path=str(Path(sys.executable).parent)) or shutil.which("undersigned")
    assert exe, "the undersigned console script is installed"
    return [exe, "serve", "--host", "127.0.0.1"]


def writing(database_url: str) -> bool:
    """Another process is in a write transaction that has not committed."""
    if database_url.startswith("sqlite"):
        # Ask for SQLite's one write lock without waiting: refused while a writer holds it.
        probe = sqlite3.connect(make_url(database_url).database or "", timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return True
        finally:
            probe.close()
    engine = create_engine(driver_url(database_url))
    try:
        with engine.connect() as conn:  # a transaction id is given at its first write
            activity = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            return bool(conn.scalar(text(f"{activity} AND backend_xid IS NOT NULL")))
    finally:
        engine.dispose()


def test_sigkill_in_the_middle_of_an_import_leaves_all_or_nothing(
    migrated_database_url: str, tmp_path: Path
) -> None:
    database = Database(create_engine_for(Settings(database_url=migrated_database_url)))
    key, prefix = new_key()
    with Session(database.engine) as s:
        s.add(ApiKey(name=f"kill-{prefix}", prefix=prefix, key_hash=hash_key(key), scope="write"))
        s.add(Letter(slug="killed", title="Killed", search_text="killed", status="published"))
        s.commit()
    port = free_port()
    env = dict(os.environ, DATABASE_URL=migrated_database_url)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [*_server_command(), "--port", str(port)], env=env, stdout=log, stderr=log, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(answers(base + "/healthz", proc), "the server to start")
        csv = "name,kind\n" + "".join(f"Killed import row {i:05d},organisation\n" for i in range(30_000))
        sent = threading.Event()
        statuses: list[int] = []

        def send() -> None:
            sent.set()
            try:
                r = httpx.post(
                    base + "/v1/letters/killed/signatures/import",
                    content=csv,
                    timeout=60,
                    headers={"Content-Type": "text/csv", "Authorization": f"Bearer {key}"},
                )
                statuses.append(r.status_code)
            except httpx.HTTPError:
                pass  # the server dies under it: that is the point

        thread = threading.Thread(target=send)
        thread.start()
        sent.wait()
        wait_for(lambda: writing(migrated_database_url), "the import to write", timeout=30)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        thread.join(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    with Session(database.engine) as s:
        letter_id = s.scalar(select(Letter.id).where(Letter.slug == "killed"))
        signatures = int(s.scalar(select(func.count()).where(Signature.letter_id == letter_id)) or 0)
        actors = int(s.scalar(select(func.count()).select_from(Actor)) or 0)
    database.dispose()
    assert statuses == [], "the server was killed while the import was in flight"
    assert (signatures, actors) in {(0, 0), (30_000, 30_000)}, (signatures, actors)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
