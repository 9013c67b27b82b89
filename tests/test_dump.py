"""`undersigned export DIR` / `import DIR` (and `--popolo`): whole-registry round trips between
two fresh databases of the same backend, compared table by table without ids."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app import migrate
from app.cli import cli
from app.config import Settings, get_settings
from app.db import create_engine_for
from app.demo.loader import load_demo
from app.models import Event, Recipient
from tests import builders as b
from tests.conftest import make_database_url

runner = CliRunner()

# Each table as rows of natural keys: ids replaced by what they point at.
CANONICAL = {
    "bodies": "select slug, name, country from bodies",
    "parties": "select slug, name, country from parties",
    "campaigns": "select slug, name, description from campaigns",
    "actors": "select kind, name, sort_name, country, org_type, match_name from actors",
    "identifiers": "select a.name, i.scheme, i.value from identifiers i join actors a on a.id = i.actor_id",
    "memberships": (
        "select a.name, bo.slug, p.slug, m.constituency, m.start_date, m.end_date from memberships m "
        "join actors a on a.id = m.actor_id join bodies bo on bo.id = m.body_id "
        "left join parties p on p.id = m.party_id"
    ),
    "letters": (
        "select l.slug, l.title, l.summary, l.body, l.language, l.published_on, l.status, "
        "l.claimed_signatory_count, c.slug from letters l left join campaigns c on c.id = l.campaign_id"
    ),
    "claims": "select l.slug, x.count, x.wording, x.url from claims x join letters l on l.id = x.letter_id",
    "sources": "select l.slug, x.label, x.url from sources x join letters l on l.id = x.letter_id",
    "signatures": (
        "select l.slug, a.name, a.kind, s.signed_on, s.capacity, s.affiliation, s.position, s.status, "
        "s.withdrawn_on, s.source from signatures s join letters l on l.id = s.letter_id "
        "join actors a on a.id = s.actor_id"
    ),
    "recipients": (
        "select l.slug, a.name, r.role, r.capacity from recipients r join letters l on l.id = r.letter_id "
        "join actors a on a.id = r.actor_id"
    ),
    "events": (
        "select l.slug, c.slug, e.date, e.kind, e.note, e.url from events e "
        "left join letters l on l.id = e.letter_id left join campaigns c on c.id = e.campaign_id"
    ),
}


def canonical(engine: Engine, tables: list[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with engine.connect() as conn:
        for table, sql in CANONICAL.items():
            if tables is None or table in tables:
                rows = [tuple("" if v is None else str(v) for v in r) for r in conn.execute(text(sql))]
                out[table] = sorted(rows)
    return out


def run(*args: str, ok: bool = True) -> str:
    result = runner.invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, (
            f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
        )
    return result.output


@pytest.fixture
def urls(backend: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two new, migrated databases: the source and the target."""
    for source in make_database_url(backend, tmp_path):
        for target in make_database_url(backend, tmp_path):
            migrate.upgrade(source)
            migrate.upgrade(target)
            yield source, target


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def point(url: str) -> None:
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()

    yield point
    get_settings.cache_clear()


@pytest.fixture
def engines(urls: tuple[str, str]) -> Iterator[tuple[Engine, Engine]]:
    source = create_engine_for(Settings(database_url=urls[0]))
    target = create_engine_for(Settings(database_url=urls[1]))
    yield source, target
    source.dispose()
    target.dispose()


def fill(engine: Engine) -> None:
    """The demo data plus the awkward cases: hard names, a withdrawn signature, a campaign event,
    a letter body, a cc recipient, identifiers of several schemes."""
    with Session(engine) as db:
        assert load_demo(db)
        campaign = b.campaign(db, "extra-campaign", "Extra")
        letter = b.letter(db, "extra-letter", campaign=campaign, published_on=date(2021, 1, 2))
        letter.body = 'Line one,\nline "two"; ئۇيغۇر'
        hard = b.actor(
            db,
            "世界维吾尔代表大会",
            kind="organisation",
            country="DE",
            org_type="ngo",
            identifiers={"wikidata": "Q1", "website": "https://www.uyghurcongress.org/en/"},
        )
        quote = b.actor(db, "Robert'); DROP TABLE actors;--", kind="person")
        b.sign(db, letter, hard, date(2021, 1, 3), withdrawn_on=date(2021, 2, 1), capacity="Президент, WUC")
        b.sign(db, letter, quote, status="unverified")
        db.add(Recipient(letter_id=letter.id, actor_id=quote.id, role="cc", capacity=None))
        db.add(Event(campaign_id=campaign.id, date=date(2021, 3, 1), kind="other", note="campaign only"))
        db.commit()


def test_export_then_import_into_an_empty_registry_keeps_every_row(
    urls: tuple[str, str], engines: tuple[Engine, Engine], use: Any, tmp_path: Path
) -> None:
    source, target = engines
    fill(source)
    use(urls[0])
    out = run("export", str(tmp_path / "dump"))
    assert "wrote" in out
    with (tmp_path / "dump" / "actors.csv").open(encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == ["ref", "kind", "name", "sort_name", "country", "org_type", "identifiers"]
    use(urls[1])
    out = run("import", str(tmp_path / "dump"))
    assert "loaded" in out and "0 matched" in out
    before, after = canonical(source), canonical(target)
    for table in CANONICAL:
        assert after[table] == before[table], table
    assert len(after["signatures"]) >= 18 and len(after["memberships"]) > 1000
    with target.connect() as conn:
        records = conn.execute(text("select action, entity from change_records where action = 'load'")).all()
    assert records == [("load", "registry")]


def test_import_into_a_registry_with_data_matches_and_skips(
    urls: tuple[str, str], engines: tuple[Engine, Engine], use: Any, tmp_path: Path
) -> None:
    source, _target = engines
    fill(source)
    use(urls[0])
    run("export", str(tmp_path / "dump"))
    before = canonical(source)
    out = run("import", str(tmp_path / "dump"))  # into the registry it came from
    assert "0 actors created" in out
    assert canonical(source) == before


def test_a_bad_dump_loads_nothing(
    urls: tuple[str, str], engines: tuple[Engine, Engine], use: Any, tmp_path: Path
) -> None:
    dump = tmp_path / "bad"
    dump.mkdir()
    (dump / "actors.csv").write_text(
        "ref,kind,name\n1,person,A Person\n2,organisation,An Org\n", encoding="utf-8"
    )
    (dump / "letters.csv").write_text("slug,title\nl1,Letter\n", encoding="utf-8")
    (dump / "signatures.csv").write_text(
        "letter,actor_ref,signed_on\nl1,1,2020-01-01\nl1,99,2020-01-01\n", encoding="utf-8"
    )
    use(urls[1])
    result = runner.invoke(cli, ["import", str(dump)])
    assert result.exit_code == 1
    assert "signatures.csv line 3" in result.output and "99" in result.output
    counts = canonical(engines[1], ["actors", "letters", "signatures"])
    assert counts == {"actors": [], "letters": [], "signatures": []}

    (dump / "signatures.csv").unlink()
    (dump / "letters.csv").unlink()
    out = run("import", str(dump))  # only actors.csv with ref, kind, name
    assert "2 actors created" in out
    assert sorted(r[1] for r in canonical(engines[1], ["actors"])["actors"]) == ["A Person", "An Org"]


def test_popolo_round_trip(
    urls: tuple[str, str], engines: tuple[Engine, Engine], use: Any, tmp_path: Path
) -> None:
    source, target = engines
    fill(source)
    use(urls[0])
    file = tmp_path / "popolo.json"
    run("export", "--popolo", str(file))
    document = json.loads(file.read_text(encoding="utf-8"))
    assert set(document) == {"persons", "organizations", "memberships"}
    person = next(p for p in document["persons"] if p.get("identifiers"))
    assert {"scheme", "identifier"} <= set(person["identifiers"][0])
    assert any(o.get("classification") == "legislature" for o in document["organizations"])
    seat = document["memberships"][0]
    assert seat["person_id"].startswith("actor-") and seat["organization_id"].startswith("body-")
    assert "start_date" in seat
    use(urls[1])
    run("import", "--popolo", str(file))
    tables = ["bodies", "parties", "actors", "identifiers", "memberships"]
    assert canonical(target, tables) == canonical(source, tables)
