"""Live counts at scale: the fan-out's edge cases against real servers. Two server processes on
one database, a letter deleted under open streams, the LISTEN connection killed while a write
is made, a reader that never reads, a shutdown with streams open, the database's load while
many streams sit idle, and the open-file limit `serve` sets."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.config import driver_url
from app.models import Letter
from tests import builders as b
from tests.live import Live, free_port, live_server
from tests.test_stream import events, gauge, next_counts, seed
from tests.waiting import wait_for


@dataclass
class Process:
    base_url: str
    process: subprocess.Popen[bytes]
    output: IO[bytes]

    def log(self) -> str:
        self.output.seek(0)
        return self.output.read().decode(errors="replace")


def undersigned() -> list[str]:
    beside = Path(sys.executable).parent / "undersigned"
    return [str(beside)] if beside.exists() else [sys.executable, "-c", "from app.cli import main; main()"]


@contextmanager
def serve_process(
    database_url: str, limits: tuple[int, int] | None = None, **settings: str
) -> Iterator[Process]:
    """`undersigned serve` in a process of its own (its own memory, pools and watcher), as
    deployed; `limits`: the (soft, hard) open-file limits it starts with."""
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "info", **settings}
    port = free_port()

    def preexec() -> None:
        if limits is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)

    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [*undersigned(), "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,
        )
        running = Process(f"http://127.0.0.1:{port}", process, output)
        try:

            def up() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"serve exited:\n{running.log()}")
                try:
                    return httpx.get(f"{running.base_url}/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, "serve to start")
            yield running
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def sign_directly(live: Live, slug: str, name: str) -> None:
    """A signature written straight to the database (as any other process would), committed."""
    with Session(live.database.engine) as db:
        letter = db.execute(text("SELECT id FROM letters WHERE slug = :s"), {"s": slug}).scalar_one()
        row = db.get(Letter, letter)
        assert row is not None
        b.sign(db, row, b.actor(db, name))
        db.commit()


def test_a_write_through_one_process_reaches_the_streams_of_another(migrated_database_url: str) -> None:
    with (
        live_server(migrated_database_url, sse_poll_seconds=0.2) as live,
        serve_process(migrated_database_url, SSE_POLL_SECONDS="0.2") as other,
    ):
        late = seed(live, signatures=2)
        second = seed(live, slug="other-letter", signatures=1)
        with (
            httpx.Client(base_url=other.base_url, timeout=10) as there,
            live.client(auth=False, timeout=10) as here,
            there.stream("GET", "/v1/letters/mps/counts/stream") as on_other,
            here.stream("GET", "/v1/letters/mps/counts/stream") as on_this,
            here.stream("GET", "/v1/letters/other-letter/counts/stream") as unrelated,
        ):
            streams = [events(on_other.iter_lines()), events(on_this.iter_lines())]
            assert [next_counts(s)["recorded"] for s in streams] == [2, 2]
            quiet = events(unrelated.iter_lines())
            assert next_counts(quiet)["recorded"] == 1
            # Through this process: the other process hears of it through the database.
            with live.client() as writer:
                assert writer.post("/v1/letters/mps/signatures", json={"actor_id": late}).status_code == 201
            written = time.monotonic()
            assert [next_counts(s)["recorded"] for s in streams] == [3, 3]
            assert time.monotonic() - written < 3
            # And the other way round, through the process that runs on its own.
            with httpx.Client(base_url=other.base_url, headers={"Authorization": f"Bearer {live.key}"}) as w:
                assert (
                    w.post("/v1/letters/other-letter/signatures", json={"actor_id": second}).status_code
                    == 201
                )
            assert next_counts(quiet)["recorded"] == 2
        assert "Traceback" not in other.log()


def test_a_deleted_letter_ends_all_its_streams_and_no_others(migrated_database_url: str) -> None:
    with live_server(migrated_database_url, sse_poll_seconds=0.1) as live:
        seed(live, slug="doomed", signatures=2)
        seed(live, slug="kept", signatures=1)
        with live.client(auth=False, timeout=10) as reader:
            with (
                reader.stream("GET", "/v1/letters/doomed/counts/stream") as one,
                reader.stream("GET", "/v1/letters/doomed/counts/stream") as two,
                reader.stream("GET", "/v1/letters/kept/counts/stream") as kept,
            ):
                doomed = [events(one.iter_lines()), events(two.iter_lines())]
                assert [next_counts(s)["recorded"] for s in doomed] == [2, 2]
                other = events(kept.iter_lines())
                assert next_counts(other)["recorded"] == 1
                with live.client() as admin:
                    assert admin.delete("/v1/letters/doomed").status_code == 204
                for stream in doomed:
                    assert next(stream) == ("gone", "{}")
                    assert list(stream) == []  # ended cleanly
                sign_directly(live, "kept", "Still Counting")
                assert next_counts(other)["recorded"] == 2
            gone = reader.get("/v1/letters/doomed/counts/stream")
            assert gone.status_code == 404
            assert gone.headers["content-type"] == "application/problem+json"
            assert "doomed" in gone.json()["detail"]


def listeners(url: str) -> list[int]:
    """The backends of the live-counts watcher on the database of `url`."""
    engine = create_engine(driver_url(url))
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = 'undersigned-live' AND query ILIKE 'LISTEN%'"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()


def terminate(url: str, pid: int) -> None:
    engine = create_engine(driver_url(url))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar() is True
    finally:
        engine.dispose()


def test_a_change_made_while_the_listening_connection_is_down_still_arrives(
    backend: str, migrated_database_url: str
) -> None:
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    with live_server(migrated_database_url, sse_poll_seconds=0.2) as live:
        seed(live, signatures=1)
        with (
            live.client(auth=False, timeout=10) as reader,
            reader.stream("GET", "/v1/letters/mps/counts/stream") as r,
        ):
            stream = events(r.iter_lines())
            assert next_counts(stream)["recorded"] == 1
            wait_for(lambda: len(listeners(migrated_database_url)) == 1, "the watcher to LISTEN", timeout=10)
            (first,) = listeners(migrated_database_url)
            terminate(migrated_database_url, first)
            sign_directly(live, "mps", "Written While Deaf")  # its NOTIFY reaches nobody
            written = time.monotonic()
            assert next_counts(stream)["recorded"] == 2  # the fallback poll, or the resync
            assert time.monotonic() - written < 3
            # Listening again (a new connection), and changes come through it.
            wait_for(
                lambda: listeners(migrated_database_url) not in ([], [first]), "a new LISTEN", timeout=10
            )
            sign_directly(live, "mps", "Heard Again")
            assert next_counts(stream)["recorded"] == 3


def test_a_reader_that_never_reads_holds_up_no_one_and_is_dropped(migrated_database_url: str) -> None:
    with live_server(migrated_database_url, sse_poll_seconds=0.05, sse_buffer_events=2) as live:
        # A letter whose counts document is large (a party each, with a long name), so that a
        # few events fill what the network and the server buffer for a reader.
        with Session(live.database.engine) as db:
            letter = b.letter(db, "big")
            house = b.body(db, "house", "The House")
            signers = []
            for i in range(220):
                party = b.party(db, f"party-{i}", f"Party {i} " + "of a very long name " * 23)
                who = b.actor(db, f"Member {i}")
                b.membership(db, who, house, party, date(2000, 1, 1))
                signers.append(who)
            for who in signers[:150]:
                b.sign(db, letter, who)
            db.commit()
            waiting = [who.id for who in signers[150:]]
        with live.client(auth=False, timeout=10) as reader, live.client() as writer:
            before = gauge(writer)
            stuck = socket.socket()
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # a small window
            stuck.connect(("127.0.0.1", int(live.base_url.rsplit(":", 1)[1])))
            stuck.sendall(b"GET /v1/letters/big/counts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                with reader.stream("GET", "/v1/letters/big/counts/stream") as r:
                    stream = events(r.iter_lines())
                    assert next_counts(stream)["recorded"] == 150
                    wait_for(lambda: gauge(writer) == before + 2, "both streams open", timeout=10)
                    for n, actor in enumerate(waiting, start=151):
                        posted = time.monotonic()
                        assert (
                            writer.post("/v1/letters/big/signatures", json={"actor_id": actor}).status_code
                            == 201
                        )
                        assert next_counts(stream)["recorded"] == n  # every change, promptly
                        assert time.monotonic() - posted < 2
                        if gauge(writer) == before + 1:
                            break
                    else:
                        raise AssertionError("the reader that never reads was never dropped")
                # Dropped: the server closed its connection (what was buffered, then the end).
                stuck.settimeout(5)
                while stuck.recv(1 << 16):
                    pass
            finally:
                stuck.close()


def open_raw_streams(base_url: str, slug: str, n: int) -> list[socket.socket]:
    """`n` streams on plain sockets, each past its first event."""
    port = int(base_url.rsplit(":", 1)[1])
    sockets = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET /v1/letters/{slug}/counts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        sockets.append(s)
    for s in sockets:
        s.settimeout(10)
        received = b""
        while b"event: counts" not in received:
            chunk = s.recv(1 << 16)
            assert chunk, "the stream ended"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
    return sockets


def test_many_idle_streams_cost_the_database_almost_nothing(backend: str, migrated_database_url: str) -> None:
    if backend != "postgresql":
        pytest.skip("counted with pg_stat_database")
    streams, seconds = 3000, 10.0
    with live_server(migrated_database_url, sse_max_streams=streams + 10) as live:
        seed(live, signatures=3)
        seed(live, slug="second", signatures=1)
        sockets = open_raw_streams(live.base_url, "mps", streams - 200) + open_raw_streams(
            live.base_url, "second", 200
        )
        try:
            engine = create_engine(driver_url(migrated_database_url), isolation_level="AUTOCOMMIT")
            stats = text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            with engine.connect() as conn:
                # Fixed waits on purpose. A backend reports its transactions when it goes idle, up to
                # 10 s late, and no query shows what it has yet to report: wait that long so that the
                # setup's are in and the window counts only what idle streams cost. The window
                # itself is the measurement: what the streams cost over so many seconds.
                time.sleep(11)
                start = conn.execute(stats).scalar_one()
                time.sleep(seconds)
                spent = conn.execute(stats).scalar_one() - start
            engine.dispose()
            # The old design polled once a second per stream: thousands a second here.
            assert spent / seconds <= 3, f"{spent} transactions in {seconds} s with {streams} idle streams"
        finally:
            for s in sockets:
                s.close()


def test_shutdown_with_streams_open_is_graceful(migrated_database_url: str) -> None:
    with serve_process(migrated_database_url) as server:
        engine = create_engine(driver_url(migrated_database_url))
        with Session(engine) as db:
            b.letter(db, "mps")
            db.commit()
        engine.dispose()
        with (
            httpx.Client(base_url=server.base_url, timeout=10) as reader,
            reader.stream("GET", "/v1/letters/mps/counts/stream") as one,
            reader.stream("GET", "/v1/letters/mps/counts/stream") as two,
        ):
            streams = [events(one.iter_lines()), events(two.iter_lines())]
            assert [next_counts(s)["recorded"] for s in streams] == [0, 0]
            stopping = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            for stream in streams:
                assert [name for name, _ in stream if name != "comment"] == []  # ends, complete
            server.process.wait(10)
            assert time.monotonic() - stopping < 5  # not the streams' maximum age
        # (uvicorn re-raises the signal it stopped for once it has shut down: -SIGTERM)
        assert server.process.returncode in (0, -signal.SIGTERM)
        log = server.log()
        assert "Traceback" not in log and "ASGI callable returned" not in log, log
        assert "Application shutdown complete" in log


def nofile_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit")


def test_serve_raises_the_open_file_limit_to_what_the_streams_need(fresh_database_url: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 3000 + 10 + 10 + 512
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard open-file limit here is {hard}")
    with serve_process(fresh_database_url, limits=(1024, hard), SSE_MAX_STREAMS="3000") as server:
        assert nofile_limit(server.process.pid) == needed
        assert f"open-file limit: {needed}" in server.log()
    # A hard limit below the need: as far as it goes, and a clear warning.
    with serve_process(fresh_database_url, limits=(256, 2048), SSE_MAX_STREAMS="3000") as server:
        assert nofile_limit(server.process.pid) == 2048
        log = server.log()
        assert "open-file limit: 2048; warning:" in log and "hard limit" in log and "SSE_MAX_STREAMS" in log
    assert soft <= resource.getrlimit(resource.RLIMIT_NOFILE)[0]
