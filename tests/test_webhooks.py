"""Webhooks: the admin API (secret once, validation, SSRF refusals) and delivery to a real
receiver that verifies signatures with `standardwebhooks`, fails, goes away and comes back;
and a real `undersigned serve` killed with SIGKILL mid-delivery that delivers again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook as Verifier

from app.auth import hash_key, new_key
from app.config import Settings
from app.db.engine import create_engine_for
from app.models import ApiKey
from app.webhooks import signing
from app.webhooks.targets import TargetRefused, check_target
from app.webhooks.worker import backoff
from tests.live import free_port, live_server
from tests.receiver import Receiver
from tests.waiting import answers, wait_for


def test_create_answers_the_secret_once_and_needs_admin(client: TestClient, admin: TestClient) -> None:
    body = {"url": "https://example.org/hook", "events": ["signature.created", "letter.*"]}
    assert client.post("/v1/webhooks", json=body).status_code == 403
    made = admin.post("/v1/webhooks", json=body)
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["secret"].startswith("whsec_") and made.headers["location"] == f"/v1/webhooks/{hook['id']}"
    assert hook["status"] == "active" and hook["milestones"][:5] == [10, 50, 100, 500, 1000]
    read = admin.get(f"/v1/webhooks/{hook['id']}").json()
    assert "secret" not in read and read["events"] == ["signature.created", "letter.*"]
    assert [w["id"] for w in admin.get("/v1/webhooks").json()["items"]] == [hook["id"]]
    assert client.get("/v1/webhooks").status_code == 403
    changed = admin.patch(f"/v1/webhooks/{hook['id']}", json={"active": False, "milestones": [7, 3, 7]})
    assert changed.json()["status"] == "disabled" and changed.json()["milestones"] == [3, 7]
    assert admin.post(f"/v1/webhooks/{hook['id']}/test").status_code == 202
    assert admin.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    assert admin.get(f"/v1/webhooks/{hook['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.org/x"}, "url"),
        ({"url": "http://127.0.0.1:9/x"}, "url"),
        ({"url": "http://10.1.2.3/x"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({"url": "http://[::1]/x"}, "url"),
        ({"url": "http://localhost/x"}, "url"),
        ({"url": "https://example.org/", "events": ["signature.exploded"]}, "events"),
        ({"url": "https://example.org/", "events": []}, "events"),
        ({"url": "https://example.org/", "milestones": [0]}, "milestones"),
        ({"url": "https://example.org/", "letter": "no-such-letter"}, "letter"),
    ],
)
def test_bad_webhooks_are_422_naming_the_field(admin: TestClient, body: dict[str, Any], field: str) -> None:
    answer = admin.post("/v1/webhooks", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.text


def test_targets_resolving_to_private_addresses_are_refused_unless_allowed() -> None:
    with pytest.raises(TargetRefused):
        check_target("http://localhost:8080/x", allow_private=False)
    with pytest.raises(TargetRefused):
        check_target("http://[::ffff:127.0.0.1]/x", allow_private=False)
    check_target("http://localhost:8080/x", allow_private=True)


def test_signatures_verify_with_the_standard_webhooks_library() -> None:
    secret = signing.new_secret()
    body = b'{"type":"signature.created","data":{"n":"\xc3\xa9"}}'
    stamp = int(time.time())
    headers = signing.headers(secret, "evt_1", stamp, body)
    assert Verifier(secret).verify(body, headers)["type"] == "signature.created"
    with pytest.raises(Exception):  # noqa: B017 (the library's own error type)
        Verifier(signing.new_secret()).verify(body, headers)


def test_backoff_grows_with_jitter_and_the_first_retry_comes_within_ten_seconds() -> None:
    firsts = [backoff(1, 5.0) for _ in range(200)]
    assert all(2.5 <= d <= 5.0 for d in firsts) and len(set(firsts)) > 100
    assert backoff(6, 5.0) > 10 * 5.0 / 2 and backoff(40, 5.0) <= 6 * 3600


# --- delivery to a real receiver ----------------------------------------------------------------

FAST = {
    "webhook_allow_private_targets": True,
    "webhook_retry_base_seconds": 0.2,
    "webhook_poll_seconds": 0.05,
    "webhook_timeout_seconds": 2,
    "webhook_failing_after": 2,
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(free_port(), fail_first=3)
    made.start()
    yield made
    made.release.set()
    made.stop()


def test_every_event_arrives_verified_in_order_through_failures_and_a_receiver_restart(
    migrated_database_url: str, receiver: Receiver
) -> None:
    with live_server(migrated_database_url, **FAST) as live, live.client() as api:
        hook = api.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"], "milestones": [3]}).json()
        receiver.secret = hook["secret"]
        api.post("/v1/letters", json={"slug": "hooked", "title": "Hooked", "published_on": "2024-03-01"})
        for n in range(4):
            api.post("/v1/letters/hooked/signatures", json={"actor": {"kind": "person", "name": f"P{n}"}})
        expected = api.get("/v1/changes?limit=1000").json()["items"]
        wait_for(lambda: len(receiver.accepted) == len(expected), "the first events")
        receiver.stop()  # the receiver goes away; events keep coming
        for n in range(3):
            api.post("/v1/letters/hooked/events", json={"date": f"2024-03-0{n + 2}", "kind": "other"})
        wait_for(
            lambda: any(
                not d["succeeded"] and d["status_code"] is None for d in _deliveries(api, hook["id"])
            ),
            "a failed delivery to the stopped receiver",
        )
        assert api.get(f"/v1/webhooks/{hook['id']}").json()["status"] in ("failing", "active")
        receiver.start()
        expected = api.get("/v1/changes?limit=1000").json()["items"]
        wait_for(lambda: len(receiver.accepted) == len(expected), "every event after the restart")
        # in order, each once, verified (`url` is absolute in a webhook only with PUBLIC_URL set)
        assert [_without_url(p["data"]) for p in receiver.accepted] == [_without_url(e) for e in expected]
        assert receiver.rejected == []
        assert "letter.milestone" in receiver.types()
        assert receiver.ids == [f"evt_{e['id']}" for e in expected]
        codes = [d["status_code"] for d in reversed(_deliveries(api, hook["id"]))]
        assert codes[:4] == [500, 500, 500, 204]
        wait_for(lambda: api.get(f"/v1/webhooks/{hook['id']}").json()["status"] == "active", "recovery")


def _without_url(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "url"}


def _deliveries(api: httpx.Client, webhook_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(f"/v1/webhooks/{webhook_id}/deliveries?limit=1000").json()["items"]
    return items


def test_a_webhook_hears_only_its_letter_and_types_and_its_own_test(
    migrated_database_url: str, receiver: Receiver
) -> None:
    receiver.fail_first = 0
    with live_server(migrated_database_url, **FAST) as live, live.client() as api:
        for slug in ("mine", "other"):
            api.post("/v1/letters", json={"slug": slug, "title": slug})
        hook = api.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["signature.created"], "letter": "mine"}
        ).json()
        receiver.secret = hook["secret"]
        for slug in ("other", "mine"):
            api.post(
                f"/v1/letters/{slug}/signatures", json={"actor": {"kind": "person", "name": f"A {slug}"}}
            )
        api.patch("/v1/letters/mine", json={"title": "Mine"})
        api.post(f"/v1/webhooks/{hook['id']}/test")
        wait_for(lambda: len(receiver.accepted) == 2, "the signature and the test")
        assert receiver.types() == ["signature.created", "webhook.test"]
        assert receiver.accepted[0]["data"]["letter"] == "mine"


# --- a real server killed mid-delivery ----------------------------------------------------------


def _serve(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "warning",
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "WEBHOOK_POLL_SECONDS": "0.05",
        "WEBHOOK_TIMEOUT_SECONDS": "1",
    }
    command = [sys.executable, "-c", "from app.cli import main; main()", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(answers(f"http://127.0.0.1:{port}/readyz", server), "the server")
    return server


def test_a_server_killed_mid_delivery_delivers_again_on_restart(
    migrated_database_url: str, receiver: Receiver
) -> None:
    receiver.fail_first = 0
    receiver.hang_first = True
    key, prefix = new_key()
    engine = create_engine_for(Settings(database_url=migrated_database_url))
    with Session(engine) as session:
        session.add(ApiKey(name=f"kill-{prefix}", prefix=prefix, key_hash=hash_key(key), scope="admin"))
        session.commit()
    engine.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(migrated_database_url, port)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            hook = api.post("/v1/webhooks", json={"url": receiver.url}).json()
            receiver.secret = hook["secret"]
            api.post("/v1/letters", json={"slug": "killed", "title": "Killed"})
            api.post("/v1/letters/killed/signatures", json={"actor": {"kind": "person", "name": "K"}})
        wait_for(receiver.hanging.is_set, "the first delivery to reach the receiver")
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        receiver.release.set()
        server = _serve(migrated_database_url, port)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            api.post("/v1/letters/killed/signatures", json={"actor": {"kind": "person", "name": "L"}})
            expected = api.get("/v1/changes?limit=1000").json()["items"]
            wait_for(lambda: len(receiver.accepted) == len(expected), "every event after the restart")
        assert [_without_url(p["data"]) for p in receiver.accepted] == [_without_url(e) for e in expected]
        assert receiver.attempts > len(expected)  # the first was posted again
    finally:
        server.kill()
        server.wait(10)


def test_two_separate_webhooks_run_processes_deliver_each_event_in_order(
    migrated_database_url: str, receiver: Receiver
) -> None:
    """`undersigned webhooks run`, twice at once, with the server's own worker off: the
    webhooks are shared out (SKIP LOCKED on PostgreSQL), each one's events still in order."""
    receiver.fail_first = 1
    second = Receiver(free_port())
    second.start()
    env = {
        **os.environ,
        "DATABASE_URL": migrated_database_url,
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "WEBHOOK_POLL_SECONDS": "0.05",
        "LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-c", "from app.cli import main; main()", "webhooks", "run"]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with (
            live_server(migrated_database_url, **{**FAST, "webhook_worker": False}) as live,
            live.client() as api,
        ):
            for target in (receiver, second):
                made = api.post("/v1/webhooks", json={"url": target.url, "events": ["signature.*"]}).json()
                target.secret = made["secret"]
            workers = [
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                for _ in range(2)
            ]
            started: list[bytes] = []
            for worker in workers:
                out = worker.stdout
                assert out is not None
                threading.Thread(target=lambda o=out: started.append(o.readline()), daemon=True).start()
            wait_for(lambda: len(started) == 2, "both workers to start", timeout=60)
            assert all(line.startswith(b"delivering webhooks") for line in started), started
            api.post("/v1/letters", json={"slug": "apart", "title": "Apart"})
            for n in range(6):
                api.post("/v1/letters/apart/signatures", json={"actor": {"kind": "person", "name": f"S{n}"}})
            expected = api.get("/v1/changes?type=signature.*&limit=1000").json()["items"]
            for target in (receiver, second):
                wait_for(lambda t=target: len(t.accepted) == len(expected), "every signature event")  # type: ignore[misc]
                assert [p["data"]["id"] for p in target.accepted] == [e["id"] for e in expected]
                assert target.rejected == []
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(20)
            if worker.stdout:
                worker.stdout.close()
        second.stop()
    assert [worker.returncode for worker in workers] == [0, 0]  # stopped cleanly by SIGTERM


def test_an_event_failing_for_the_whole_window_disables_the_webhook_and_resuming_sends_it(
    migrated_database_url: str, receiver: Receiver
) -> None:
    receiver.fail_first = 10**6
    settings = {**FAST, "webhook_retry_max_seconds": 1.0, "webhook_retry_base_seconds": 0.1}
    with live_server(migrated_database_url, **settings) as live, live.client() as api:
        hook = api.post("/v1/webhooks", json={"url": receiver.url}).json()
        receiver.secret = hook["secret"]
        api.post("/v1/letters", json={"slug": "stuck", "title": "Stuck"})
        api.post("/v1/letters", json={"slug": "behind", "title": "Behind"})
        wait_for(lambda: api.get(f"/v1/webhooks/{hook['id']}").json()["status"] == "disabled", "disabled")
        state = api.get(f"/v1/webhooks/{hook['id']}").json()
        assert "set active to resume" in state["disabled_reason"] and receiver.accepted == []
        tried = receiver.attempts
        receiver.fail_first = 0
        assert api.patch(f"/v1/webhooks/{hook['id']}", json={"active": True}).json()["status"] == "active"
        wait_for(lambda: len(receiver.accepted) == 2, "both events after resuming")
        assert [p["data"]["key"] for p in receiver.accepted] == ["stuck", "behind"]
        assert tried > 2


def test_a_target_is_checked_again_at_delivery(migrated_database_url: str) -> None:
    """Saved while its name resolved to nothing, refused at delivery: it must resolve, and to
    public addresses only (private targets are not allowed here)."""
    quick = {"webhook_poll_seconds": 0.05, "webhook_retry_base_seconds": 0.1}
    with live_server(migrated_database_url, **quick) as live, live.client() as api:
        hook = api.post("/v1/webhooks", json={"url": "http://no-such-host.invalid/hook"}).json()
        assert hook["status"] == "active"
        api.post("/v1/letters", json={"slug": "ssrf", "title": "SSRF"})
        wait_for(lambda: bool(_deliveries(api, hook["id"])), "a delivery attempt")
        attempt = _deliveries(api, hook["id"])[-1]
        assert not attempt["succeeded"] and attempt["status_code"] is None
        assert attempt["error"].startswith("target refused")
        assert attempt["next_attempt_at"] is not None


def test_creating_and_testing_a_webhook_replay_a_retry(admin: TestClient) -> None:
    headers = {"Idempotency-Key": "hook-once"}
    body = {"url": "https://example.org/once"}
    first = admin.post("/v1/webhooks", json=body, headers=headers)
    again = admin.post("/v1/webhooks", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(admin.get("/v1/webhooks").json()["items"]) == 1
    test_headers = {"Idempotency-Key": "test-once"}
    sent = admin.post(f"/v1/webhooks/{first.json()['id']}/test", headers=test_headers)
    resent = admin.post(f"/v1/webhooks/{first.json()['id']}/test", headers=test_headers)
    assert sent.status_code == resent.status_code == 202 and sent.json() == resent.json()
