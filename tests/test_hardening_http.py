"""The HTTP layer holds against one caller: headers that keep pages unframed and answers
unsniffed, a Host header that is not trusted, CORS preflights answered, 401 before anything
about the body, one problem type per status, a slow body that holds nothing, an exhausted pool
that says 503, and problem+json with a request id for any unexpected error (issue 20)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import Settings
from app.main import create_app
from tests import builders as b
from tests.conftest import Keys
from tests.live import live_server

PROBLEM = "application/problem+json"


@pytest.fixture
def letter(db: Session) -> str:
    row = b.letter(db, "open-letter")
    b.sign(db, row, b.actor(db, "Someone"))
    return row.slug


def test_pages_send_a_policy_and_are_framed_only_by_this_server(
    anon: TestClient, letter: str, db: Session
) -> None:
    campaign = b.campaign(db, "camp")
    actor = b.actor(db, "Page Actor")
    for path in (
        "/",
        f"/letters/{letter}",
        f"/campaigns/{campaign.slug}",
        f"/actors/{actor.id}",
        "/letters/nope",
    ):
        response = anon.get(path)
        assert response.headers["content-type"].startswith("text/html"), path
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'self'" in policy and "default-src 'none'" in policy, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
    widget = anon.get(f"/embed/letters/{letter}")
    assert "frame-ancestors *" in widget.headers["content-security-policy"]
    assert "x-frame-options" not in widget.headers


def test_svg_json_and_csv_answers_are_not_sniffed(anon: TestClient, letter: str) -> None:
    for path in (
        f"/v1/letters/{letter}/badge.svg",
        f"/v1/letters/{letter}/charts/kind.svg",
        f"/v1/letters/{letter}",
        "/v1/letters",
        f"/v1/letters/{letter}/signatures?format=csv",
        "/v1/letters/missing",
        "/openapi.json",
    ):
        response = anon.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        if "svg" in response.headers["content-type"]:
            assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "[::2]", "localhostx"]
)
def test_another_host_is_a_400_problem(anon: TestClient, letter: str, host: str) -> None:
    for path in ("/v1/letters", f"/oembed?url=http://{host}/embed/letters/{letter}", f"/letters/{letter}"):
        response = anon.get(path, headers={"Host": host})
        assert response.status_code == 400 and response.headers["content-type"].startswith(PROBLEM), path
        assert "ALLOWED_HOSTS" in response.json()["detail"]
        assert host.split(":")[0] not in response.text.replace(response.json()["detail"], "")
    assert anon.get("/healthz", headers={"Host": host}).status_code == 200  # probes by address


def test_localhost_names_and_public_url_are_answered(app: FastAPI, settings: Settings, letter: str) -> None:
    public = create_app(
        Settings(database_url=settings.database_url, public_url="https://letters.example.org"),
        database=app.state.database,
    )
    with TestClient(public) as http:
        for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "letters.example.org"):
            assert http.get("/v1/letters", headers={"Host": host}).status_code == 200, host
        assert http.get("/v1/letters", headers={"Host": "other.example.org"}).status_code == 400


def test_a_real_server_answers_at_its_loopback_names(database_url: str) -> None:
    with live_server(database_url, allowed_hosts="localhost,127.0.0.1,[::1]") as live, live.client() as http:
        port = live.base_url.rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert http.get("/v1/letters", headers={"Host": host}).status_code == 200, host
        assert http.get("/v1/letters", headers={"Host": "attacker.example"}).status_code == 400


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE", "PUT"])
def test_a_preflight_for_a_write_answers_by_the_cors_rules(anon: TestClient, method: str) -> None:
    response = anon.options(
        "/v1/letters",
        headers={
            "Origin": "https://newsroom.example",
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert response.status_code == 200
    assert method in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    refused = anon.options(
        "/v1/letters",
        headers={"Origin": "https://newsroom.example", "Access-Control-Request-Method": "TRACE"},
    )
    assert refused.status_code == 400 and refused.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"[1, 2", b'{"slug": 5}', b"\xff\xfe", b'{"a": ' * 10 + b"1" + b"}" * 10]
)
def test_401_comes_before_anything_about_the_body(
    anon: TestClient, keys: Keys, letter: str, body: bytes
) -> None:
    for method, path in (
        ("POST", "/v1/letters"),
        ("PATCH", f"/v1/letters/{letter}"),
        ("POST", "/v1/actors"),
        ("POST", f"/v1/letters/{letter}/signatures/import"),
    ):
        headers = {"Content-Type": "application/json"}
        assert anon.request(method, path, content=body, headers=headers).status_code == 401, path
        bad_key = {**headers, "Authorization": "Bearer us_nope_nope"}
        assert anon.request(method, path, content=body, headers=bad_key).status_code == 401, path
    write = {"Content-Type": "application/json", "Authorization": f"Bearer {keys.write}"}
    assert anon.request("DELETE", f"/v1/letters/{letter}", content=body, headers=write).status_code == 403


def test_413_has_one_problem_type_on_every_path(app: FastAPI, settings: Settings, keys: Keys) -> None:
    small = create_app(
        Settings(database_url=settings.database_url, max_body_bytes=2048), database=app.state.database
    )
    big = b"x" * 5000
    seen = set()
    with TestClient(small, headers={"Authorization": f"Bearer {keys.write}"}) as http:
        for path in ("/v1/letters", "/v1/letters/x/signatures/import", "/v1/nowhere", "/letters/x"):
            declared = http.post(path, content=big, headers={"Content-Type": "text/csv"})

            def chunks() -> Iterator[bytes]:
                yield big[:1000]
                yield big[1000:]

            streamed = http.post(path, content=chunks(), headers={"Content-Type": "text/csv"})
            for response in (declared, streamed):
                assert response.status_code == 413 and response.headers["content-type"].startswith(PROBLEM)
                seen.add(response.json()["type"])
    assert seen == {"https://undersigned.dev/problems/payload-too-large"}


def test_unknown_routes_and_methods_have_the_types_of_their_status(anon: TestClient) -> None:
    assert anon.get("/v1/nowhere").json()["type"].endswith("/not-found")
    assert anon.get("/v1/letters/missing").json()["type"].endswith("/not-found")
    assert anon.put("/v1/letters").json()["type"].endswith("/method-not-allowed")


def test_an_unexpected_error_is_problem_json_with_the_request_id(own_app: FastAPI) -> None:
    def broken() -> None:
        raise RuntimeError("a bug")

    own_app.add_api_route("/v1/test-broken", broken)
    with TestClient(own_app, raise_server_exceptions=False) as http:
        for request_id in ("abc-123", None):
            headers = {"X-Request-ID": request_id} if request_id else {}
            response = http.get("/v1/test-broken", headers=headers)
            assert response.status_code == 500 and response.headers["content-type"].startswith(PROBLEM)
            body = response.json()
            assert body["request_id"] == response.headers["x-request-id"]
            assert request_id is None or body["request_id"] == request_id
            assert "a bug" not in response.text  # nothing of the internals


def test_a_slow_body_times_out_with_408_and_holds_no_write_slot(database_url: str) -> None:
    with live_server(database_url, body_timeout_seconds=1.0) as live, live.client() as http:
        host, port = live.base_url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)))
        slow.sendall(
            (
                f"POST /v1/letters/x/signatures/import HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {live.key}\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\nname\n"
            ).encode()
        )
        started = time.monotonic()
        made = http.post("/v1/campaigns", json={"slug": "meanwhile", "name": "Meanwhile"})
        assert made.status_code == 201 and time.monotonic() - started < 5  # nothing waited on the slow one
        slow.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = slow.recv(4096)
            if not chunk:
                break
            answer += chunk
        slow.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"application/problem+json" in answer


def test_an_exhausted_pool_is_a_503_with_retry_after(database_url: str) -> None:
    with live_server(database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.3) as live:
        held = live.database.engine.connect()  # the pool's only connection
        try:
            with live.client(auth=False) as http:
                for path in ("/v1/actors", "/v1/campaigns", "/v1/search?q=x"):
                    response = http.get(path)
                    assert response.status_code == 503, (path, response.text)
                    assert response.headers["content-type"].startswith(PROBLEM)
                    assert int(response.headers["retry-after"]) > 0
        finally:
            held.close()
        with live.client(auth=False) as http:
            assert http.get("/v1/actors").status_code == 200


def test_parallel_stalled_uploads_leave_reads_answering(database_url: str) -> None:
    with live_server(database_url, db_pool_size=2, db_max_overflow=0, body_timeout_seconds=5.0) as live:
        host, port = live.base_url.removeprefix("http://").split(":")
        stalled = []
        for _ in range(8):
            s = socket.create_connection((host, int(port)))
            s.sendall(
                (
                    f"POST /v1/letters/x/signatures/import HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Authorization: Bearer {live.key}\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\nname\n"
                ).encode()
            )
            stalled.append(s)
        try:
            with httpx.Client(base_url=live.base_url, timeout=10) as http:
                results: list[int] = []

                def read() -> None:
                    results.append(http.get("/v1/actors").status_code)

                threads = [threading.Thread(target=read) for _ in range(6)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(15)
                assert results == [200] * 6
        finally:
            for s in stalled:
                s.close()


def test_lists_that_answer_csv_by_accept_say_vary(anon: TestClient, letter: str) -> None:
    for path in (
        f"/v1/letters/{letter}/signatures",
        f"/v1/letters/{letter}/counts",
        f"/v1/letters/{letter}/timeline",
    ):
        vary = anon.get(path, headers={"Accept": "text/csv"}).headers.get("vary", "")
        assert "accept" in vary.lower(), path
