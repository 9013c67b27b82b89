"""Imports of lists as spreadsheets save them (issue 18): separators, header names, the file's
own line numbers, errors that quote the value and suggest one, and dates only when asked."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.dates import latest_today
from app.models import Actor, Letter, Signature
from tests import builders as b


def post(client: TestClient, slug: str, body: str | bytes, *, params: Any = None) -> Response:
    content = body.encode() if isinstance(body, str) else body
    return client.post(  # type: ignore[no-any-return]
        f"/v1/letters/{slug}/signatures/import",
        content=content,
        params=params,
        headers={"Content-Type": "text/csv"},
    )


def written(db: Session) -> tuple[int, int]:
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(Actor)) or 0,
        db.scalar(select(func.count()).select_from(Signature)) or 0,
    )


def signatures_of(db: Session, slug: str) -> dict[str, tuple[date, date | None]]:
    db.expire_all()
    stmt = (
        select(Actor.name, Signature.signed_on, Signature.withdrawn_on)
        .join(Actor, Actor.id == Signature.actor_id)
        .join(Letter, Letter.id == Signature.letter_id)
        .where(Letter.slug == slug)
    )
    rows = db.execute(stmt).all()
    return {name: (signed, withdrawn) for name, signed, withdrawn in rows}


# --- separators ---------------------------------------------------------------------------------


def test_semicolon_file_with_bom_and_crlf(client: TestClient, db: Session) -> None:
    """What Excel saves in a French locale: UTF-8 with a BOM, `;` between fields, CRLF, a
    comma inside a name."""
    b.letter(db, "l1")
    db.commit()
    body = "\ufeffname;country;capacity\r\nLigue des droits, de l'Homme;FR;\r\nAmnesty;GB;Director\r\n"
    r = post(client, "l1", body.encode("utf-8"))
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["created"] == 2
    names = {row["actor"]["name"] for row in r.json()["rows"]}
    assert names == {"Ligue des droits, de l'Homme", "Amnesty"}
    db.expire_all()
    assert db.scalar(select(Actor.country).where(Actor.name == "Amnesty")) == "GB"


@pytest.mark.parametrize("sep", ["\t", "|"])
def test_tab_and_pipe_files(client: TestClient, db: Session, sep: str) -> None:
    b.letter(db, "l1")
    db.commit()
    body = sep.join(["name", "country", "kind"]) + "\n" + sep.join(["Jane Doe, MP", "GB", "person"]) + "\n"
    r = post(client, "l1", body)
    assert r.status_code == 200, r.text
    assert r.json()["rows"][0]["actor"]["name"] == "Jane Doe, MP"
    db.expire_all()
    assert db.scalar(select(Actor.kind).where(Actor.name == "Jane Doe, MP")) == "person"


def test_one_column_with_semicolons_in_names_stays_one_column(client: TestClient, db: Session) -> None:
    """A `;` that the header does not hold is part of a name, not a separator."""
    b.letter(db, "l1")
    db.commit()
    r = post(client, "l1", "name\nA; B and partners\nC; D\nE; F\n")
    assert r.status_code == 200, r.text
    assert [row["actor"]["name"] for row in r.json()["rows"]] == ["A; B and partners", "C; D", "E; F"]


# --- header names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("Organisation name,Country,Role", "Oxfam,GB,Partner"),  # English
        ("Nom;Pays;Fonction", "Oxfam;GB;Partner"),  # French
        ("Name;Land;Funktion", "Oxfam;GB;Partner"),  # German
        ("Organización;País;Cargo", "Oxfam;GB;Partner"),  # Spanish, accents
        ("ORGANIZATION,country,TITLE", "Oxfam,GB,Partner"),
    ],
)
def test_header_aliases(client: TestClient, db: Session, header: str, row: str) -> None:
    b.letter(db, "l1")
    db.commit()
    r = post(client, "l1", f"{header}\n{row}\n")
    assert r.status_code == 200, r.text
    db.expire_all()
    assert db.scalar(select(Actor.country).where(Actor.name == "Oxfam")) == "GB"
    assert db.scalar(select(Signature.capacity)) == "Partner"


def test_column_renames_over_http(client: TestClient, db: Session) -> None:
    b.letter(db, "l1")
    db.commit()
    body = "Signatory label,Where\nOxfam,GB\n"
    refused = post(client, "l1", body)
    assert refused.status_code == 422 and "lacks a 'name' column" in refused.json()["detail"]
    r = post(client, "l1", body, params=[("column", "Signatory label:name"), ("column", "where=country")])
    assert r.status_code == 200, r.text
    db.expire_all()
    assert db.scalar(select(Actor.country).where(Actor.name == "Oxfam")) == "GB"
    # JSON keys are renamed and aliased the same way
    j = client.post(
        "/v1/letters/l1/signatures/import",
        json=[{"Organisation": "Save the Children", "Pays": "FR", "Where": "x"}],
        params={"column": "Where:affiliation"},
    )
    assert j.status_code == 200, j.text
    db.expire_all()
    assert db.scalar(select(Actor.country).where(Actor.name == "Save the Children")) == "FR"


@pytest.mark.parametrize(
    ("body", "params", "said"),
    [
        ("Organisation,Name\nA,B\n", None, "'Organisation' and 'Name' both mean 'name'"),
        ("Org,Country\nA,GB\n", [("column", "Country:name")], "'Org' and 'Country' both mean 'name'"),
        ("name\nA\n", [("column", "name:nmae")], "'nmae' is not a column the import reads"),
        ("name\nA\n", [("column", "justone")], "is not OLD:NEW"),
    ],
)
def test_column_conflicts_and_bad_renames_are_422(
    client: TestClient, db: Session, body: str, params: Any, said: str
) -> None:
    b.letter(db, "l1")
    db.commit()
    before = written(db)
    r = post(client, "l1", body, params=params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert said in r.json()["detail"]
    assert written(db) == before


# --- line numbers and messages ------------------------------------------------------------------


def test_errors_give_the_physical_line_and_echo_the_value(client: TestClient, db: Session) -> None:
    """Line 1 is the header; blank lines and each line of a quoted multi-line cell count. One
    bad row writes nothing."""
    b.letter(db, "l1")
    db.commit()
    before = written(db)
    body = (
        "name;country;kind;signed_on\r\n"  # line 1
        "\r\n"  # 2 (blank)
        "Fine Org;GB;;\r\n"  # 3
        '"Two\r\nLine Org";France;;\r\n'  # 4-5
        "\r\n"  # 6
        "Bad Kind;;org;\r\n"  # 7
        "Bad Date;;;31/12/2020\r\n"  # 8
        "Bad German;Deutschland;;\r\n"  # 9
        "Unknown;Atlantis;;\r\n"  # 10
    )
    r = post(client, "l1", body, params={"keep_dates": "true"})
    assert r.status_code == 422, r.text
    errors = {row["line"]: (row["row"], row["error"]) for row in r.json()["rows"] if row["status"] == "error"}
    assert errors == {
        4: (2, "country: 'France' is not an ISO 3166-1 alpha-2 code; did you mean FR?"),
        7: (3, "kind: 'org' is not person or organisation; did you mean organisation?"),
        8: (4, "signed_on: '31/12/2020' is not a date (YYYY-MM-DD); did you mean 2020-12-31?"),
        9: (5, "country: 'Deutschland' is not an ISO 3166-1 alpha-2 code; did you mean DE?"),
        10: (6, "country: 'Atlantis' is not an ISO 3166-1 alpha-2 code"),
    }
    fine = r.json()["rows"][0]
    assert fine["row"] == 1 and fine["status"] == "created" and "line" not in fine
    assert written(db) == before


def test_cli_renames_aliases_lines_and_keep_dates(
    migrated_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from app.cli import cli
    from app.config import Settings, get_settings
    from app.db.engine import create_engine_for

    engine = create_engine_for(Settings(database_url=migrated_database_url))
    try:
        with Session(engine) as s:
            b.letter(s, "l1", published_on=date(2020, 9, 9))
            s.commit()
        monkeypatch.setenv("DATABASE_URL", migrated_database_url)
        get_settings.cache_clear()
        runner = CliRunner()
        bad = tmp_path / "bad.csv"
        bad.write_text("Nom;Pays\n\nA;France\n", encoding="utf-8")
        failed = runner.invoke(cli, ["import-signatures", "l1", str(bad)])
        assert failed.exit_code == 1
        assert (
            "line 3 (row 1): error: country: 'France' is not an ISO 3166-1 alpha-2 code; did you mean FR?"
            in (failed.output)
        )
        good = tmp_path / "good.csv"
        good.write_text("Who\tsigned_on\nA\t2020-10-01\nB\t2020-10-02\n", encoding="utf-8")
        args = ["import-signatures", "l1", str(good), "--column", "Who:name"]
        dry = runner.invoke(cli, [*args, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "created: 2" in dry.output and "2 of 2 rows give signed_on" in dry.output
        done = runner.invoke(cli, [*args, "--keep-dates"])
        assert done.exit_code == 0, done.output
        assert "rows give signed_on" not in done.output
        with Session(engine) as s:
            days = dict(
                s.execute(
                    select(Actor.name, Signature.signed_on).join(Actor, Actor.id == Signature.actor_id)
                ).all()
            )
        assert days == {"A": date(2020, 10, 1), "B": date(2020, 10, 2)}
        assert runner.invoke(cli, ["import-signatures", "l1", str(good), "--column", "x"]).exit_code == 2
    finally:
        engine.dispose()
        get_settings.cache_clear()


# --- dates --------------------------------------------------------------------------------------


def test_reimporting_an_export_does_not_copy_dates_unless_asked(client: TestClient, db: Session) -> None:
    source = b.letter(db, "source", published_on=date(2020, 9, 9))
    b.letter(db, "copy", published_on=date(2021, 3, 1))
    b.letter(db, "kept", published_on=date(2021, 3, 1))
    stays = b.actor(db, "Stays Trust", kind="organisation")
    leaves = b.actor(db, "Leaves Trust", kind="organisation")
    b.sign(db, source, stays, date(2020, 9, 10))
    b.sign(db, source, leaves, date(2020, 9, 11), withdrawn_on=date(2020, 10, 1))
    db.commit()
    exported = client.get("/v1/letters/source/signatures", params={"format": "csv"})
    assert exported.status_code == 200, exported.text

    r = post(client, "copy", exported.content)
    assert r.status_code == 200, r.text
    assert r.json()["summary"]["matched"] == 2
    (warning,) = r.json()["warnings"]
    assert warning.startswith("2 of 2 rows give signed_on or withdrawn_on, which were ignored")
    assert "2021-03-01" in warning and "keep_dates=true" in warning
    assert signatures_of(db, "copy") == {
        "Stays Trust": (date(2021, 3, 1), None),
        "Leaves Trust": (date(2021, 3, 1), None),
    }

    r = post(client, "kept", exported.content, params={"keep_dates": "true"})
    assert r.status_code == 200, r.text
    assert "warnings" not in r.json()
    assert signatures_of(db, "kept") == {
        "Stays Trust": (date(2020, 9, 10), None),
        "Leaves Trust": (date(2020, 9, 11), date(2020, 10, 1)),
    }


def test_a_bad_date_is_no_error_when_dates_are_ignored(client: TestClient, db: Session) -> None:
    b.letter(db, "l1", published_on=date(2020, 9, 9))
    db.commit()
    body = "name,signed_on\nA,someday\n"
    assert post(client, "l1", body, params={"keep_dates": "true"}).status_code == 422
    r = post(client, "l1", body)
    assert r.status_code == 200, r.text
    assert signatures_of(db, "l1") == {"A": (date(2020, 9, 9), None)}


def test_a_future_withdrawal_is_refused_on_import(client: TestClient, db: Session) -> None:
    b.letter(db, "l1", published_on=date(2020, 9, 9))
    db.commit()
    before = written(db)
    future = (latest_today() + timedelta(days=1)).isoformat()
    today = latest_today().isoformat()
    body = f"name,signed_on,withdrawn_on\nPast,2020-09-09,2020-10-01\nToday,2020-09-09,{today}\nLater,2020-09-09,{future}\n"
    r = post(client, "l1", body, params={"keep_dates": "true"})
    assert r.status_code == 422, r.text
    (error,) = [row for row in r.json()["rows"] if row["status"] == "error"]
    assert error["line"] == 4 and error["error"].startswith(f"withdrawn_on: {future} is in the future")
    assert written(db) == before
    r = post(client, "l1", body.rsplit("Later", 1)[0], params={"keep_dates": "true"})
    assert r.status_code == 200, r.text


def test_a_future_withdrawal_is_refused_by_the_api(client: TestClient, db: Session) -> None:
    letter = b.letter(db, "l1", published_on=date(2020, 9, 9))
    who = b.actor(db, "Withdrawer", kind="organisation")
    b.sign(db, letter, who)
    db.commit()
    future = (latest_today() + timedelta(days=1)).isoformat()
    url = f"/v1/letters/l1/signatures/{who.id}"
    r = client.delete(url, params={"on": future})
    assert r.status_code == 422 and "in the future" in r.json()["detail"], r.text
    r = client.patch(url, json={"withdrawn_on": future})
    assert r.status_code == 422 and "in the future" in r.json()["detail"], r.text
    db.expire_all()
    assert db.scalar(select(Signature.withdrawn_on)) is None
    r = client.patch(url, json={"withdrawn_on": "2020-10-01"})
    assert r.status_code == 200 and r.json()["withdrawn_on"] == "2020-10-01", r.text
