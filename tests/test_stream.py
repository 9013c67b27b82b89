"""The counts stream against a real uvicorn: the first event at once, a new one within seconds
of a signature written by another server process on the same database, heartbeats, the cap on
open streams, and the gauge of open streams."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from tests import builders as b
from tests.live import Live, live_server
from tests.waiting import wait_for


def events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) pairs, with comments as ("comment", text)."""
    name, data = "message", ""
    for line in lines:
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data:
            yield name, data
            name, data = "message", ""


def next_counts(stream: Iterator[tuple[str, str]]) -> dict[str, Any]:
    for name, data in stream:
        if name == "counts":
            parsed: dict[str, Any] = json.loads(data)
            return parsed
    raise AssertionError("the stream ended")


def seed(live: Live, slug: str = "mps", signatures: int = 2) -> int:
    """A letter with some signatures, and the id of an actor who has not signed yet."""
    with Session(live.database.engine) as db:
        row = b.letter(db, slug, claimed=130)
        for i in range(signatures):
            b.sign(db, row, b.actor(db, f"Member {i}"))
        late = b.actor(db, "Late Signatory")
        db.commit()
        return late.id


def test_first_event_at_once_then_a_new_count_within_seconds(migrated_database_url: str) -> None:
    with (
        live_server(migrated_database_url, sse_poll_seconds=0.25) as live,
        live_server(migrated_database_url) as other_worker,
    ):
        late = seed(live)
        with live.client(auth=False, timeout=10) as reader:
            started = time.monotonic()
            with reader.stream("GET", "/v1/letters/mps/counts/stream") as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                assert r.headers["cache-control"] == "no-cache"
                assert r.headers["x-accel-buffering"] == "no"
                stream = events(r.iter_lines())
                first = next_counts(stream)
                assert time.monotonic() - started < 2
                # The same document GET …/counts returns.
                assert first == reader.get("/v1/letters/mps/counts").json()
                assert (first["recorded"], first["claimed"]) == (2, 130)

                # Another process (its own app, engine and memory) takes the write.
                with other_worker.client() as writer:
                    assert (
                        writer.post("/v1/letters/mps/signatures", json={"actor_id": late}).status_code == 201
                    )
                written = time.monotonic()
                second = next_counts(stream)
                assert second["recorded"] == 3
                assert time.monotonic() - written < 3
                assert second["by_kind"] == [{"key": "person", "label": "Person", "count": 3}]


def test_heartbeat_comments_keep_an_idle_stream_open(migrated_database_url: str) -> None:
    with live_server(migrated_database_url, sse_poll_seconds=0.1, sse_heartbeat_seconds=0.3) as live:
        seed(live)
        with (
            live.client(auth=False, timeout=10) as reader,
            reader.stream("GET", "/v1/letters/mps/counts/stream") as r,
        ):
            stream = events(r.iter_lines())
            assert next_counts(stream)["recorded"] == 2
            started = time.monotonic()
            beats = []
            for name, text in stream:
                assert name == "comment", "nothing changed, so only heartbeats"
                beats.append(text)
                if len(beats) == 2:
                    break
            assert beats == ["heartbeat", "heartbeat"]
            assert 0.4 < time.monotonic() - started < 3


def gauge(client: httpx.Client) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("undersigned_sse_streams_open "):
            return float(line.split()[1])
    raise AssertionError("no SSE gauge in /metrics")


def test_open_streams_are_capped_per_process(migrated_database_url: str) -> None:
    with live_server(migrated_database_url, sse_max_streams=2, sse_poll_seconds=0.1) as live:
        seed(live)
        with live.client(auth=False, timeout=10) as a, live.client(auth=False, timeout=10) as c:
            before = gauge(c)
            with (
                a.stream("GET", "/v1/letters/mps/counts/stream") as one,
                a.stream("GET", "/v1/letters/mps/counts/stream") as two,
            ):
                # Keep the readers: dropping one closes its connection.
                readers = [events(one.iter_lines()), events(two.iter_lines())]
                assert [next_counts(reader)["recorded"] for reader in readers] == [2, 2]
                assert gauge(c) == before + 2
                full = c.get("/v1/letters/mps/counts/stream")
                assert full.status_code == 503
                assert full.headers["content-type"] == "application/problem+json"
                assert full.headers["retry-after"] == "10"
            # Closed by the client: the server notices and gives the slots back.
            wait_for(lambda: gauge(c) == before, "the closed streams' slots to come back", timeout=5)
            with c.stream("GET", "/v1/letters/mps/counts/stream") as again:
                assert again.status_code == 200
                assert next_counts(events(again.iter_lines()))["recorded"] == 2


def test_unknown_letter_is_a_404_problem(migrated_database_url: str) -> None:
    with live_server(migrated_database_url) as live, live.client(auth=False) as c:
        r = c.get("/v1/letters/nope/counts/stream")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("n", [1])
def test_a_deleted_letter_ends_the_stream(migrated_database_url: str, n: int) -> None:
    with live_server(migrated_database_url, sse_poll_seconds=0.1) as live:
        seed(live, signatures=n)
        with (
            live.client(auth=False, timeout=10) as reader,
            reader.stream("GET", "/v1/letters/mps/counts/stream") as r,
        ):
            stream = events(r.iter_lines())
            assert next_counts(stream)["recorded"] == n
            with live.client() as admin:
                assert admin.delete("/v1/letters/mps").status_code == 204
            assert next(stream) == ("gone", "{}")
            assert list(stream) == []


def test_a_stream_ends_after_its_lifetime(migrated_database_url: str) -> None:
    with live_server(migrated_database_url, sse_poll_seconds=0.1, sse_max_seconds=0.5) as live:
        seed(live)
        with live.client(auth=False, timeout=10) as reader:
            started = time.monotonic()
            with reader.stream("GET", "/v1/letters/mps/counts/stream") as r:
                first = r.read().decode()  # the whole body: the stream ends by itself
            assert 0.4 < time.monotonic() - started < 3
            assert first.startswith("retry: 5000\nevent: counts\ndata: {")
