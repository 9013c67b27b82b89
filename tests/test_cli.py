"""The `undersigned` command, run in-process against a fresh database of each backend."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings, get_settings
from app.db.engine import create_engine_for
from app.demo.loader import DEMO_LETTER_SLUGS
from app.main import create_app
from app.migrate import current_revision, head_revision
from app.models import Actor, ApiKey, ChangeRecord, Letter, Membership, Signature
from tests.waiting import answers, wait_for

runner = CliRunner()


@pytest.fixture
def cli_database(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DATABASE_URL pointed at a new, empty database for the CLI (and the settings cache cleared)."""
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    get_settings.cache_clear()
    yield fresh_database_url
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result.stdout


def test_db_upgrade_brings_the_schema_to_head(cli_database: str) -> None:
    out = run("db", "upgrade")
    assert "head" in out
    engine = create_engine_for(Settings(database_url=cli_database))
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_keys_create_prints_the_key_alone_on_the_last_line_and_stores_only_its_hash(
    cli_database: str,
) -> None:
    out = run("keys", "create", "--name", "newsroom", "--scope", "write")
    key = out.strip().splitlines()[-1]
    assert key.startswith("us_") and " " not in key and len(key) > 40

    engine = create_engine_for(Settings(database_url=cli_database))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM api_keys")).mappings().all()
    finally:
        engine.dispose()
    assert len(rows) == 1
    row = rows[0]
    assert row["name"] == "newsroom" and row["scope"] == "write" and row["revoked_at"] is None
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    secret = key.split("_", 2)[2]
    assert all(secret not in str(value) for value in row.values()), "the secret is stored somewhere"

    # Names are unique.
    again = runner.invoke(cli, ["keys", "create", "--name", "newsroom"])
    assert again.exit_code == 1 and "exists" in again.output


def test_keys_create_refuses_an_unknown_scope(cli_database: str) -> None:
    result = runner.invoke(cli, ["keys", "create", "--name", "x", "--scope", "root"])
    assert result.exit_code != 0 and "scope" in result.output


def test_keys_list_never_shows_secrets(cli_database: str) -> None:
    write_key = run("keys", "create", "--name", "alpha", "--scope", "write").strip().splitlines()[-1]
    admin_key = run("keys", "create", "--name", "beta", "--scope", "admin").strip().splitlines()[-1]
    run("keys", "revoke", "alpha")
    listing = run("keys", "list")
    lines = listing.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["alpha", "beta"]
    assert "write" in lines[0] and "revoked" in lines[0]
    assert "admin" in lines[1] and "active" in lines[1]
    for key in (write_key, admin_key):
        assert key not in listing and key.split("_", 2)[2] not in listing
        assert hashlib.sha256(key.encode()).hexdigest() not in listing


def test_keys_revoke_makes_the_key_401_at_once(cli_database: str) -> None:
    key = run("keys", "create", "--name", "desk").strip().splitlines()[-1]
    app = create_app(Settings(database_url=cli_database))
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/v1/campaigns", json={"slug": "before", "name": "Before"}).status_code == 201
        run("keys", "revoke", "desk")
        r = client.post("/v1/campaigns", json={"slug": "after", "name": "After"})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "revoked" in r.json()["detail"]
        assert client.get("/v1/campaigns/after").status_code == 404

    unknown = runner.invoke(cli, ["keys", "revoke", "nobody"])
    assert unknown.exit_code == 1


def test_demo_twice_changes_nothing_the_second_time(cli_database: str) -> None:
    assert "loaded" in run("demo")

    def counts() -> dict[str, int]:
        engine = create_engine_for(Settings(database_url=cli_database))
        try:
            with engine.connect() as conn:
                return {
                    model.__tablename__: conn.scalar(select(func.count()).select_from(model)) or 0
                    for model in (Letter, Actor, Membership, Signature, ChangeRecord, ApiKey)
                }
        finally:
            engine.dispose()

    first = counts()
    assert first["letters"] == len(DEMO_LETTER_SLUGS) and first["change_records"] == 1
    assert first["memberships"] == 1454 and first["signatures"] == 18

    assert "already present" in run("demo")
    assert counts() == first


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_demo_answers_over_a_real_socket(fresh_database_url: str) -> None:
    """`undersigned serve --demo` (what `./dev serve` runs): migrates, loads, serves."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": fresh_database_url, "LOG_LEVEL": "warning"}
    command = [
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        "serve",
        "--demo",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(answers(f"{base}/readyz", server), "the server to be ready")
        letter = httpx.get(f"{base}/v1/letters/global-call-un-monitoring-china-2020", timeout=5).json()
        assert letter["claimed_signatory_count"] == 321 and letter["recorded_signatory_count"] == 12
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout:
            server.stdout.close()


def test_import_and_export_report_each_step_once_when_stderr_is_no_terminal(
    cli_database: str, tmp_path: Path
) -> None:
    """Off a terminal (a log, a pipe) progress is one line per step, when it ends: the file or
    what is being done, its rows and the time taken; not a line every few thousand rows."""
    dump = tmp_path / "dump"
    dump.mkdir()
    actors = "".join(f"{i},organisation,Org {i}\n" for i in range(12_000))
    (dump / "actors.csv").write_text("ref,kind,name\n" + actors, encoding="utf-8")
    (dump / "letters.csv").write_text("slug,title\nl1,Letter\n", encoding="utf-8")
    (dump / "signatures.csv").write_text(
        "letter,actor_ref,signed_on\nl1,1,2020-01-01\nl1,2,2020-01-02\n", encoding="utf-8"
    )
    result = runner.invoke(cli, ["import", str(dump)])
    assert result.exit_code == 0, result.output
    assert "loaded 12003 rows: 12000 actors created" in result.stdout
    steps = result.stderr.splitlines()
    assert len(steps) < 20, steps
    assert [s for s in steps if "actors.csv" in s] == [
        next(s for s in steps if s.startswith("actors.csv: 12,000 rows, "))
    ]
    assert any(s.startswith("signatures.csv: 2 rows, ") for s in steps)
    assert any(s.startswith("rollups: 2 rows, ") for s in steps)  # two signing days

    result = runner.invoke(cli, ["export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    steps = result.stderr.splitlines()
    assert len(steps) == len(list((tmp_path / "out").iterdir())) == 12
    assert any(s.startswith("actors.csv: 12,000 rows, ") for s in steps)
    assert any(s.startswith("bodies.csv: 0 rows, ") for s in steps)


def test_the_load_commands_start_without_the_server() -> None:
    """uvicorn is imported by `serve` alone: `import` and `export` start without it."""
    code = "import sys, app.cli, app.imports.dump.load; print('uvicorn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
