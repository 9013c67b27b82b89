"""The HTTP layer every route shares: conditional GETs, CORS, request ids, metrics."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.actors.schemas import ReferenceUpdate
from app.actors.service import update_reference
from app.auth import Writer
from app.changes import record_change
from app.config import Settings
from app.db.database import Database
from app.main import create_app
from app.models import Party
from tests.conftest import Keys
from tests.live import hot_reads, live_server


def test_reads_carry_a_strong_etag_and_answer_304(client: TestClient) -> None:
    client.post("/v1/campaigns", json={"slug": "etag-c", "name": "E"})
    first = client.get("/v1/campaigns/etag-c")
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = client.get("/v1/campaigns/etag-c", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    client.patch("/v1/campaigns/etag-c", json={"name": "Changed"})
    after = client.get("/v1/campaigns/etag-c", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag and after.json()["name"] == "Changed"


def test_errors_and_writes_get_no_etag(client: TestClient) -> None:
    assert "etag" not in client.get("/v1/campaigns/missing").headers
    assert "etag" not in client.post("/v1/campaigns", json={"slug": "w", "name": "W"}).headers


def test_cors_is_open_for_reads(anon: TestClient) -> None:
    r = anon.get("/v1/campaigns", headers={"Origin": "https://news.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    pre = anon.options(
        "/v1/campaigns",
        headers={"Origin": "https://news.example", "Access-Control-Request-Method": "GET"},
    )
    assert pre.status_code == 200 and "GET" in pre.headers["access-control-allow-methods"]


def test_reads_negotiated_by_accept_say_so_in_vary(client: TestClient) -> None:
    """JSON or CSV by `Accept`: a shared cache (a CDN in front of embeds) must not hand the CSV
    to a JSON reader, so these reads vary on Accept, their 304s too."""
    for slug in ("vary", "vary-b"):
        client.post("/v1/letters", json={"slug": slug, "title": "V", "published_on": "2020-09-09"})
        client.post(f"/v1/letters/{slug}/signatures", json={"actor": {"kind": "person", "name": "V One"}})
    for path in (
        "/v1/letters/vary/counts",
        "/v1/letters/vary/timeline",
        "/v1/letters/vary/signatures",
        "/v1/overlaps?letters=vary,vary-b",
    ):
        as_json = client.get(path)
        as_csv = client.get(path, headers={"Accept": "text/csv"})
        assert as_json.status_code == 200 and as_csv.status_code == 200, path
        assert as_csv.headers["content-type"].startswith("text/csv"), path
        for response in (as_json, as_csv):
            assert "Accept" in response.headers["vary"], path
        if "etag" in as_json.headers:
            again = client.get(path, headers={"If-None-Match": as_json.headers["etag"]})
            assert again.status_code == 304 and "Accept" in again.headers["vary"], path


def test_request_id_is_echoed_or_made(anon: TestClient) -> None:
    assert anon.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = anon.get("/healthz", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"]
    assert len(made) == 32 and made != "bad id"


def test_access_log_is_json_with_route_and_key_name_never_the_key(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("undersigned")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="undersigned.access"):
            client.post("/v1/campaigns", json={"slug": "logged", "name": "L"})
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "undersigned.access"]
    entry = lines[-1]
    assert entry["route"] == "/v1/campaigns" and entry["status"] == 201 and entry["method"] == "POST"
    assert entry["key"].startswith("test-write-")
    auth = client.headers["authorization"].split(" ", 1)[1]
    assert all(auth not in r.getMessage() for r in caplog.records)


def test_metrics_count_requests_by_route(anon: TestClient) -> None:
    anon.get("/v1/campaigns/nope-metrics")
    text = anon.get("/metrics").text
    assert 'undersigned_requests_total{method="GET",route="/v1/campaigns/{slug}",status="404"}' in text
    assert "undersigned_request_duration_seconds_bucket" in text
    assert "undersigned_db_pool_checked_out" in text and "undersigned_sse_streams_open" in text


def test_a_streamed_body_over_the_limit_is_cut_off_with_413(
    settings: Settings, engine: Engine, keys: Keys
) -> None:
    app = create_app(settings.model_copy(update={"max_body_bytes": 4096}), Database(engine))
    chunks = (b"name,kind\n" + b"x" * 1000 + b",organisation\n" for _ in range(10))  # no Content-Length
    with TestClient(app, headers={"Authorization": f"Bearer {keys.write}"}) as c:
        c.post("/v1/letters", json={"slug": "big", "title": "Big"})
        r = c.post("/v1/letters/big/signatures/import", content=chunks, headers={"Content-Type": "text/csv"})
        assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
        assert "4096" in r.json()["detail"]
        assert c.get("/v1/letters/big").json()["recorded_signatory_count"] == 0


def test_hot_reads_on_the_event_loop_path_are_exact_and_answer_304(migrated_database_url: str) -> None:
    """The counts, badge, widget and timeline read their validator on the event loop (PostgreSQL:
    an async pool; SQLite: the loop's own connection), here behind a real server. The ETag a
    miss renders under must be the one the loop reads (else no 304 and no cache hit), and a
    write must show at once."""
    with live_server(migrated_database_url) as live, live.client() as c:
        c.post("/v1/letters", json={"slug": "hot", "title": "Hot", "published_on": "2020-09-09"})
        first = c.post("/v1/letters/hot/signatures", json={"actor": {"kind": "person", "name": "A One"}})
        assert first.status_code == 201
        paths = [
            "/v1/letters/hot/counts",
            "/v1/letters/hot/counts?format=csv",
            "/v1/letters/hot/timeline",
            "/v1/letters/hot/badge.svg",
            "/embed/letters/hot",
        ]
        etags = {}
        for path in paths:
            fresh = c.get(path)
            assert fresh.status_code == 200 and fresh.headers["cache-control"].startswith("public")
            etags[path] = fresh.headers["etag"]
            again = c.get(path)  # from the rendered cache: the same bytes and validator
            assert again.content == fresh.content and again.headers["etag"] == etags[path]
            current = c.get(path, headers={"If-None-Match": etags[path]})
            assert current.status_code == 304 and current.content == b""
        assert c.get("/v1/letters/hot/counts").json()["recorded"] == 1
        assert len(set(etags.values())) == len(paths)

        c.post("/v1/letters/hot/signatures", json={"actor": {"kind": "organisation", "name": "B Two"}})
        for path in paths:
            moved = c.get(path, headers={"If-None-Match": etags[path]})
            assert moved.status_code == 200 and moved.headers["etag"] != etags[path]
        assert c.get("/v1/letters/hot/counts").json()["recorded"] == 2
        assert ">2<" in c.get("/v1/letters/hot/badge.svg").text
        assert c.get("/v1/letters/hot/timeline").json()["points"][-1]["cumulative"] == 2

        missing = c.get("/v1/letters/nowhere/counts")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert "nowhere" in missing.json()["detail"]


def test_readers_who_miss_together_wait_for_one_rendering(migrated_database_url: str) -> None:
    """Right after a write every reader of a letter misses the rendered cache at once: one
    rendering serves them all (else a busy letter's readers recompute it N times a write)."""
    with live_server(migrated_database_url) as live, live.client() as c:
        c.post("/v1/letters", json={"slug": "crowd", "title": "Crowd", "published_on": "2020-09-01"})
        rows = ["name,kind,signed_on"] + [
            f"Crowd member {n:04d},{'person' if n % 2 else 'organisation'},2020-09-{1 + n % 28:02d}"
            for n in range(600)
        ]
        imported = c.post(
            "/v1/letters/crowd/signatures/import",
            content="\n".join(rows).encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert imported.status_code == 200, imported.text
        readers = 16
        clients = [live.client(auth=False) for _ in range(readers)]
        for mine in clients:  # connections open before the crowd comes
            assert mine.get("/healthz").status_code == 200
        before = hot_reads(c)
        gate = threading.Barrier(readers)

        def read(mine: httpx.Client) -> bytes:
            gate.wait()
            response = mine.get("/v1/letters/crowd/counts")
            assert response.status_code == 200
            return response.content

        with ThreadPoolExecutor(readers) as pool:
            bodies = list(pool.map(read, clients))
        for mine in clients:
            mine.close()
        after = hot_reads(c)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        assert len(set(bodies)) == 1 and json.loads(bodies[0])["recorded"] == 600
        assert delta.get("rendered") == 1, delta
        assert delta.get("joined", 0) + delta.get("cached", 0) == readers - 1, delta


def test_head_is_get_without_the_body(client: TestClient) -> None:
    client.post("/v1/letters", json={"slug": "head", "title": "H", "published_on": "2020-09-09"})
    client.post("/v1/letters/head/signatures", json={"actor": {"kind": "person", "name": "H One"}})
    for path in ("/v1/letters/head", "/v1/letters/head/counts", "/v1/letters/head/badge.svg", "/healthz"):
        got = client.get(path)
        head = client.head(path)
        assert head.status_code == 200 and head.content == b"", path
        for name in ("content-type", "content-length", "etag"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
        if "etag" in got.headers:
            current = client.head(path, headers={"If-None-Match": got.headers["etag"]})
            assert current.status_code == 304 and current.content == b""
    export = client.head("/v1/letters/head/signatures?format=csv")
    assert export.status_code == 200 and export.content == b""
    assert export.headers["content-type"].startswith("text/csv")
    missing = client.head("/v1/letters/nowhere")
    assert missing.status_code == 404 and missing.content == b""
    write_only = client.head("/v1/letters/head/signatures/import")
    assert write_only.status_code == 405 and "HEAD" not in write_only.headers["allow"]
    assert "GET" not in write_only.headers["allow"]


def test_head_of_a_streamed_export_over_a_socket_stops_it(migrated_database_url: str) -> None:
    with live_server(migrated_database_url) as live, live.client() as c:
        c.post("/v1/letters", json={"slug": "big-head", "title": "B", "published_on": "2020-09-09"})
        rows = ["name,kind"] + [f"Export member {n:05d},person" for n in range(3000)]
        c.post(
            "/v1/letters/big-head/signatures/import",
            content="\n".join(rows).encode(),
            headers={"Content-Type": "text/csv"},
        )
        for _ in range(3):  # the connection stays usable after each
            head = c.head("/v1/letters/big-head/signatures?format=csv")
            assert head.status_code == 200 and head.content == b""
        full = c.get("/v1/letters/big-head/signatures?format=csv")
        assert full.status_code == 200 and full.text.count("\n") == 3001


def test_the_letter_list_is_kept_and_stays_exact(migrated_database_url: str) -> None:
    """A page of the letter list is rendered once per state of the letters: a repeat read is
    the same bytes, a current client gets a 304, and any write moves it — even one that
    commits after a later-started write (PostgreSQL hands out change ids in insert order)."""
    with live_server(migrated_database_url) as live, live.client() as c:
        for slug in ("first", "second"):
            c.post("/v1/letters", json={"slug": slug, "title": slug.title(), "published_on": "2020-09-09"})
        fresh = c.get("/v1/letters?limit=1")
        assert fresh.status_code == 200 and fresh.headers["link"].endswith('rel="next"')
        before = hot_reads(c)
        again = c.get("/v1/letters?limit=1")
        assert (again.content, again.headers["etag"], again.headers["link"]) == (
            fresh.content,
            fresh.headers["etag"],
            fresh.headers["link"],
        )
        assert hot_reads(c)["cached"] == before.get("cached", 0) + 1
        assert (
            c.get("/v1/letters?limit=1", headers={"If-None-Match": fresh.headers["etag"]}).status_code == 304
        )

        def counts() -> dict[str, int]:
            return {i["slug"]: i["recorded_signatory_count"] for i in c.get("/v1/letters").json()["items"]}

        assert counts() == {"first": 0, "second": 0}
        c.post("/v1/letters/second/signatures", json={"actor": {"kind": "person", "name": "S One"}})
        assert counts() == {"first": 0, "second": 1}
        moved = c.get("/v1/letters?limit=1", headers={"If-None-Match": fresh.headers["etag"]})
        assert moved.status_code == 200 and moved.headers["etag"] != fresh.headers["etag"]

        if not migrated_database_url.startswith("postgresql"):
            return  # SQLite: one writer at a time, commits in the order writes start
        with Session(live.database.engine) as late:
            late.execute(
                text("UPDATE letters SET title = 'Late', version = version + 1 WHERE slug = 'first'")
            )
            record_change(late, "test", "update", "letter", "first", after={"title": "Late"})
            late.flush()  # this change record's id is taken now, before the next write's
            c.post("/v1/letters/second/signatures", json={"actor": {"kind": "person", "name": "S Two"}})
            assert counts() == {"first": 0, "second": 2}
            late.commit()
        titles = {i["slug"]: i["title"] for i in c.get("/v1/letters").json()["items"]}
        assert titles == {"first": "Late", "second": "Second"}


def test_a_letter_read_moves_when_a_rename_that_started_earlier_commits_later(
    migrated_database_url: str,
) -> None:
    """A party renamed changes the labels of a letter's counts without touching the letter.
    Counts read while the rename is open, and other writes commit, must not be kept once it
    commits."""
    if not migrated_database_url.startswith("postgresql"):
        pytest.skip("SQLite holds one writer at a time: nothing else commits while the rename is open")
    with live_server(migrated_database_url) as live, live.client() as c:
        c.post("/v1/bodies", json={"slug": "house", "name": "House"})
        c.post("/v1/parties", json={"slug": "blue", "name": "Blue"})
        c.post("/v1/letters", json={"slug": "hot", "title": "Hot", "published_on": "2020-09-09"})
        member = c.post("/v1/actors", json={"kind": "person", "name": "M One"}).json()["id"]
        c.post(
            f"/v1/actors/{member}/memberships",
            json={"body": "house", "party": "blue", "start_date": "2019-01-01"},
        )
        assert c.post("/v1/letters/hot/signatures", json={"actor_id": member}).status_code == 201

        def parties() -> list[str]:
            return [entry["label"] for entry in c.get("/v1/letters/hot/counts").json()["by_party"]]

        assert parties() == ["Blue"]
        with Session(live.database.engine) as late:
            update_reference(Writer(late, "test", "admin"), Party, "blue", ReferenceUpdate(name="Navy"))
            late.flush()
            c.post("/v1/letters", json={"slug": "other", "title": "Other"})
            assert c.post("/v1/letters/other/signatures", json={"actor_id": member}).status_code == 201
            assert parties() == ["Blue"]
            late.commit()
        assert parties() == ["Navy"]


def test_a_write_to_one_letter_leaves_the_others_kept_reads_alone(
    client: TestClient, admin: TestClient
) -> None:
    """A letter's validator moves with writes to it and with what changes every letter's
    breakdowns (a seat made, changed or removed anywhere in a body it counts; a body renamed;
    an import that seats new members), not with signatures written to another letter: their
    304s and kept renderings stand while a campaign elsewhere gathers signatures."""
    client.post("/v1/bodies", json={"slug": "house", "name": "House"})
    client.post("/v1/parties", json={"slug": "blue", "name": "Blue"})
    for slug in ("quiet", "busy"):
        client.post("/v1/letters", json={"slug": slug, "title": slug, "published_on": "2020-09-09"})
    seat = {"body": "house", "party": "blue", "start_date": "2019-01-01"}
    member = client.post("/v1/actors", json={"kind": "person", "name": "M One"}).json()["id"]
    client.post(f"/v1/actors/{member}/memberships", json=seat)
    assert client.post("/v1/letters/quiet/signatures", json={"actor_id": member}).status_code == 201

    def read(etag: str) -> tuple[int, str, Any]:
        r = client.get("/v1/letters/quiet/counts", headers={"If-None-Match": etag})
        return r.status_code, r.headers["etag"], r.json()["by_body"] if r.status_code == 200 else None

    status, etag, by_body = read("")
    assert status == 200 and by_body == [{"key": "house", "label": "House", "count": 1, "share_of_body": 1.0}]
    for n in range(3):
        signed = client.post(
            "/v1/letters/busy/signatures", json={"actor": {"kind": "person", "name": f"B {n}"}}
        )
        assert signed.status_code == 201
        assert read(etag)[0] == 304

    other = client.post("/v1/actors", json={"kind": "person", "name": "N Two"}).json()["id"]
    assert read(etag)[0] == 304  # a new actor with no seat changes nothing here
    made = client.post(f"/v1/actors/{other}/memberships", json=seat).json()["id"]
    status, etag, by_body = read(etag)  # a seat filled by someone who did not sign
    assert status == 200 and by_body[0]["share_of_body"] == 1 / 2
    client.patch(f"/v1/actors/{other}/memberships/{made}", json={"start_date": "2021-01-01"})
    status, etag, by_body = read(etag)  # not yet held on the letter's day
    assert status == 200 and by_body[0]["share_of_body"] == 1.0
    client.patch("/v1/bodies/house", json={"name": "The House"})
    status, etag, by_body = read(etag)
    assert status == 200 and by_body[0]["label"] == "The House"
    imported = client.post(
        "/v1/letters/busy/signatures/import",
        content=b"name,kind,body,signed_on\nI Three,person,house,2020-01-01\n",
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 200 and imported.json()["summary"]["created"] == 1
    status, etag, by_body = read(etag)  # the import seated a new member
    assert status == 200 and by_body[0]["share_of_body"] == 1 / 2
    admin.delete(f"/v1/actors/{other}/memberships/{made}")
    assert read(etag)[0] == 200  # a seat removed (one not held on the letter's day)
    seated = client.post("/v1/actors", json={"kind": "person", "name": "P Four"}).json()["id"]
    client.post(f"/v1/actors/{seated}/memberships", json=seat)
    status, etag, by_body = read(etag)
    assert status == 200 and by_body[0]["share_of_body"] == 1 / 3
    assert admin.delete(f"/v1/actors/{seated}").status_code == 204
    status, etag, by_body = read(etag)  # an actor deleted with their seat
    assert status == 200 and by_body[0]["share_of_body"] == 1 / 2
