"""CSV for spreadsheets is safe to open, the machine dump stays exact, and a dump that SQLite
would keep but PostgreSQL cannot (a NUL, bytes that are not UTF-8, numbers past 32 bits,
dates outside the window) is refused with its file, line and field (issue 20)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app import migrate
from app.cli import cli
from app.config import get_settings
from tests import builders as b
from tests.conftest import make_database_url

runner = CliRunner()

FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|'/c calc'!A0",
    "@SUM(1+1)",
    "-2+3+cmd|x",
    "\tTabbed",
    "\rReturn",
]


def test_the_api_csv_is_safe_to_open_and_imports_back(client: TestClient, db: Session) -> None:
    letter = b.letter(db, "l")
    actors = [b.actor(db, name, kind="organisation") for name in FORMULAS]
    plain = b.actor(db, "Plain Name - Ltd", kind="organisation")
    for who in [*actors, plain]:
        b.sign(db, letter, who, capacity="=1+1" if who is plain else None)
    text = client.get("/v1/letters/l/signatures", params={"format": "csv", "limit": 100}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    names = {row["name"] for row in rows}
    assert names == {"'" + name for name in FORMULAS} | {"Plain Name - Ltd"}
    assert next(r for r in rows if r["name"] == "Plain Name - Ltd")["capacity"] == "'=1+1"
    for row in rows:  # no cell a spreadsheet would run
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values()), row
    # NDJSON is for machines: exact
    ndjson = client.get("/v1/letters/l/signatures", params={"format": "ndjson", "limit": 100}).text
    assert {json.loads(line)["name"] for line in ndjson.splitlines()} == {*FORMULAS, "Plain Name - Ltd"}
    # the export imports back as it was: each row matches the actor it came from
    b.letter(db, "copy")
    report = client.post(
        "/v1/letters/copy/signatures/import",
        params={"dry_run": "true"},
        content=text.encode(),
        headers={"Content-Type": "text/csv"},
    ).json()
    assert [r["status"] for r in report["rows"]] == ["matched"] * len(rows), report


def test_analytics_csv_is_escaped_too(client: TestClient, db: Session) -> None:
    letter = b.letter(db, "one")
    house = b.body(db, "house", name="@House")
    party = b.party(db, "formula", name='=HYPERLINK("http://evil.example")')
    who = b.actor(db, "Member")
    b.membership(db, who, house, party, date(2020, 1, 1))
    b.sign(db, letter, who)
    text = client.get("/v1/letters/one/counts", params={"format": "csv"}).text
    labels = [row["label"] for row in csv.DictReader(io.StringIO(text))]
    assert '\'=HYPERLINK("http://evil.example")' in labels and "'@House" in labels
    assert not any(label.startswith(("=", "@", "+", "-")) for label in labels)


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def point(url: str) -> None:
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()

    yield point
    get_settings.cache_clear()


@pytest.fixture
def target(backend: str, tmp_path: Path, use: Any) -> Iterator[str]:
    for url in make_database_url(backend, tmp_path):
        migrate.upgrade(url)
        use(url)
        yield url


def test_the_dump_keeps_formulas_exact_and_round_trips(backend: str, tmp_path: Path, use: Any) -> None:
    for source in make_database_url(backend, tmp_path):
        migrate.upgrade(source)
        use(source)
        dump = tmp_path / "dump"
        dump.mkdir()
        with (dump / "actors.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["ref", "kind", "name"])
            writer.writerows([i, "organisation", name] for i, name in enumerate(FORMULAS[:4], 1))
        assert runner.invoke(cli, ["import", str(dump)]).exit_code == 0
        out = tmp_path / "out"
        result = runner.invoke(cli, ["export", str(out)])
        assert result.exit_code == 0, result.output
        with (out / "actors.csv").open(encoding="utf-8", newline="") as f:
            assert sorted(r["name"] for r in csv.DictReader(f)) == sorted(FORMULAS[:4])


BAD_DUMPS = [
    (
        "actors.csv",
        b"ref,kind,name\n1,person,Fine\n2,person,Bad\x00Name\n",
        "actors.csv line 3, name",
        "NUL",
    ),
    ("actors.csv", b"ref,kind,name\n1,person,Fine\n2,person,Caf\xe9\n", "actors.csv line 3, name", "UTF-8"),
    (
        "actors.csv",
        b"ref,kind,name\n1,person,Fine\n2,person,Bad\xff\xfe here\n3,person,Late\n",
        "actors.csv line 3, name",
        "UTF-8",
    ),
    (
        "letters.csv",
        b"slug,title,claimed_signatory_count\nl1,L,2147483648\n",
        "letters.csv line 2",
        "2147483647",
    ),
    ("letters.csv", b"slug,title,published_on\nl1,L,0001-01-01\n", "letters.csv line 2", "1900-01-01"),
    ("letters.csv", b"slug,title,summary\nl1,L,Sum\x00mary\n", "letters.csv line 2, summary", "NUL"),
    ("actors.csv", b"ref,kind,name,identifiers\n1,person,A,wikidata:42\n", "actors.csv line 2", "wikidata"),
]


@pytest.mark.parametrize(("file", "content", "where", "why"), BAD_DUMPS)
def test_a_dump_row_postgresql_cannot_hold_is_refused_with_its_place(
    target: str, tmp_path: Path, file: str, content: bytes, where: str, why: str
) -> None:
    dump = tmp_path / "bad"
    dump.mkdir()
    if file != "actors.csv":
        (dump / "actors.csv").write_text("ref,kind,name\n1,person,A\n", encoding="utf-8")
    (dump / file).write_bytes(content)
    result = runner.invoke(cli, ["import", str(dump)])
    assert result.exit_code == 1, result.output
    assert where in result.output and why in result.output, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
