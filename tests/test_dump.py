"""`undersigned export DIR` / `import DIR` (and `--popolo`): whole-registry round trips between
two fresh databases of the same backend, compared table by table without ids."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app import migrate, pairs, rollups
from app.cli import cli
from app.config import Settings, get_settings
from app.db.engine import create_engine_for
from app.demo.loader import load_demo
from app.errors import Invalid
from app.imports.dump import files, postgres
from app.imports.dump.files import COLUMNS, directory_source
from app.imports.dump.load import LoadStats, load_registry
from app.main import create_app
from app.models import Event, Recipient
from app.vocabulary import ORG_TYPES
from tests import builders as b
from tests.conftest import make_database_url

runner = CliRunner()

# Each table as rows of natural keys: ids replaced by what they point at.
CANONICAL = {
    "bodies": "select slug, name, country from bodies",
    "parties": "select slug, name, country from parties",
    "campaigns": "select slug, name, description from campaigns",
    "actors": "select kind, name, sort_name, country, org_type, match_name, variant_key from actors",
    "aliases": "select a.name, x.name, x.match_name, x.variant_key from actor_aliases x join actors a on a.id = x.actor_id",
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
    "rollups": (
        "select l.slug, r.day, r.kind, r.country, r.org_type, b.slug, p.slug, r.new, r.withdrawn "
        "from letter_rollups r join letters l on l.id = r.letter_id left join bodies b on b.id = r.body_id "
        "left join parties p on p.id = r.party_id where r.new <> 0 or r.withdrawn <> 0"
    ),
}


def canonical(bind: Engine | Connection, tables: list[str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return canonical(conn, tables)
    out = {}
    for table, sql in CANONICAL.items():
        if tables is None or table in tables:
            rows = [tuple("" if v is None else str(v) for v in r) for r in bind.execute(text(sql))]
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
            aliases=["World Uyghur Congress", "WUC"],
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
    # (written out, not COLUMNS: the SPEC's header is the contract the export must keep)
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


# Each actor's and letter's search document, by its name or slug: what the database's full-text
# index holds (the tsvector on PostgreSQL, the FTS5 row on SQLite).
DOCUMENTS = {
    "postgresql": {
        "actors": "select name, cast(search_vector as text) from actors",
        "letters": "select slug, cast(search_vector as text) from letters",
    },
    "sqlite": {
        "actors": "select a.name, f.name, f.aliases from actors a join actors_fts f on f.rowid = a.id",
        "letters": (
            "select l.slug, f.title, f.campaign, f.summary, f.body from letters l "
            "join letters_fts f on f.rowid = l.id"
        ),
    },
}


def _found(client: TestClient, q: str) -> tuple[list[str], list[str]]:
    r = client.get("/v1/search", params={"q": q, "limit": 50})
    assert r.status_code == 200, r.text
    return sorted(x["slug"] for x in r.json()["letters"]), sorted(a["name"] for a in r.json()["actors"])


def test_a_load_is_found_by_search_as_the_writes_that_made_it_are(
    urls: tuple[str, str], engines: tuple[Engine, Engine], use: Any, tmp_path: Path
) -> None:
    """A load into an empty registry computes the actors' search documents set-based (not by the
    trigger the API's writes go through): they must be the same documents, and search must find
    the loaded actors by name and alias and the letters by title as in the registry dumped."""
    source, target = engines
    fill(source)
    with Session(source) as db:
        b.actor(db, "Ilham Tohti").sort_name = "Tohti, Ilham (economist)"
        db.commit()
    use(urls[0])
    run("export", str(tmp_path / "dump"))
    use(urls[1])
    run("import", str(tmp_path / "dump"))
    documents = DOCUMENTS[target.dialect.name]
    for table, sql in documents.items():
        with source.connect() as made, target.connect() as loaded_:
            expected = sorted(map(tuple, made.execute(text(sql))))
            assert sorted(map(tuple, loaded_.execute(text(sql)))) == expected, table
        assert len(expected) >= {"actors": 1000, "letters": 3}[table]
    clients = [TestClient(create_app(Settings(database_url=url))) for url in urls]
    with clients[0] as before, clients[1] as after:
        for q in (
            "World Uyghur Congress",
            "WUC",
            "维吾尔",
            "drop table",
            "extra letter",
            "uighur",
            "economist",
        ):
            assert _found(after, q) == _found(before, q), q
        assert _found(after, "WUC") == ([], ["世界维吾尔代表大会"])  # by its alias
        assert _found(after, "uyghur congress")[1] == ["世界维吾尔代表大会"]
        assert "extra-letter" in _found(after, "extra letter")[0]  # by its title
        assert _found(after, "robert drop")[1] == ["Robert'); DROP TABLE actors;--"]
        assert _found(after, "economists")[1] == ["Ilham Tohti"]  # by its sort name


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


# --- the bulk path (PostgreSQL) against the row-by-row path -------------------------------------
#
# On PostgreSQL actors, memberships and signatures take the bulk path (COPY to staging tables,
# checks and joins in SQL; into an empty registry, indexes dropped and remade). Whatever it does,
# the registry must end up as the row-by-row path leaves it: same rows, same order of ids, same
# rollups, same counts of rows skipped. On SQLite both loads take the row-by-row path; the
# comparisons there check the rollups of a load against a rebuild.

# Signatures in id order (the file's order), and memberships (their ids break ties in the rollups).
ORDERED = {
    "signature_order": (
        "select l.slug, a.name from signatures s join letters l on l.id = s.letter_id "
        "join actors a on a.id = s.actor_id order by s.id"
    ),
    "membership_order": (
        "select a.name, bo.slug, m.start_date from memberships m join actors a on a.id = m.actor_id "
        "join bodies bo on bo.id = m.body_id order by m.id"
    ),
}

ACTORS = 2600
LETTERS = ["l1", "l2", "l3", "l4"]
DAY0 = date(2020, 1, 1)


def _write(path: Path, header: list[str], rows: list[list[str]], *, crlf: bool = False) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n" if crlf else "\n")
        writer.writerow(header)
        writer.writerows(rows)


def signature_rows() -> list[list[str]]:
    """letter, actor_ref, signed_on, capacity, affiliation, position, status, withdrawn_on, source:
    5,200 rows (more than one batch of the row-by-row path)."""
    rows = []
    for i in range(ACTORS):
        for j, letter in enumerate(LETTERS):
            if (i + j) % 2:
                continue
            signed = DAY0 + timedelta(days=i % 200)
            rows.append(
                [
                    letter,
                    f"a{i}",
                    signed.isoformat(),
                    "MP" if i % 5 == 0 else "",
                    f"Org {i % 17}" if i % 7 == 0 else "",
                    str(i) if letter == "l1" else "",
                    "unverified" if i % 31 == 0 else "confirmed" if i % 2 else "",
                    (signed + timedelta(days=10)).isoformat() if i % 50 == 0 else "",
                    f"https://example.org/{i}" if i % 13 == 0 else "",
                ]
            )
    return rows


def make_dump(directory: Path, variant: str = "plain") -> Path:
    """A dump with every kind of row the loader maps: actors with identifiers, overlapping and
    ended memberships (two starting the same day), withdrawn and unverified signatures.
    `variant` writes signatures.csv (and memberships.csv) another way; see test below."""
    directory.mkdir(parents=True, exist_ok=True)
    _write(
        directory / "bodies.csv",
        ["slug", "name", "country"],
        [["house", "House", "GB"], ["senate", "Senate", ""]],
    )
    _write(
        directory / "parties.csv",
        ["slug", "name", "country"],
        [["red", "Red", "GB"], ["blue", "Blue", "GB"], ["green", "Green", ""]],
    )
    _write(directory / "campaigns.csv", ["slug", "name", "description"], [["camp", "Camp", "A campaign"]])
    actors = []
    for i in range(ACTORS):
        person = i % 3 != 0
        identifiers = (
            f"wikidata:Q{i}" + (f';website:https://x{i}.org/?q=a,{{b}}"c\\d' if i % 7 == 0 else "")
            if i % 2
            else ""
        )
        actors.append(
            [
                f"a{i}",
                "person" if person else "organisation",
                f"Person {i} Smith" if person else f"Org {i} Trust",
                f"Smith, Person {i}" if person else "",
                ["GB", "FR", ""][i % 3],
                "" if person else ["ngo", "union", ""][i % 3],
                identifiers,
            ]
        )
    _write(
        directory / "actors.csv",
        COLUMNS["actors.csv"],
        actors,
    )
    seats = []
    for i in range(1, ACTORS, 3):
        seats.append([f"a{i}", "house", ["red", "blue", ""][i % 3], f"Seat {i % 40}", "2019-12-01", ""])
        if i % 9 == 1:
            seats.append([f"a{i}", "senate", "green", "", "2020-03-01", "2020-06-30"])
        if i % 27 == 1:  # the same start: the lower id counts
            seats.append([f"a{i}", "senate", "blue", "", "2019-12-01", ""])
    seat_header = COLUMNS["memberships.csv"]
    _write(
        directory / "letters.csv",
        ["slug", "title", "published_on", "campaign"],
        [[slug, f"Letter {slug}", "2020-01-01", "camp" if slug == "l1" else ""] for slug in LETTERS],
    )
    header = COLUMNS["signatures.csv"]
    rows = signature_rows()
    path = directory / "signatures.csv"
    if variant == "quoted":  # parsed here: fields with commas, quotes, line breaks
        for n, row in enumerate(rows):
            if n % 11 == 0:
                row[3] = f'Director, "Policy"\nline {n}'
        _write(path, header, rows)
    elif variant == "spaced":  # whitespace around fields, trimmed in SQL
        pads = [" ", "\t", "\u00a0", "\u3000 "]
        rows = [
            [f"{pads[n % 4]}{v}{pads[(n + k) % 4]}" if v else v for k, v in enumerate(row)]
            for n, row in enumerate(rows)
        ]
        seats = [[f" {v} " if v else v for v in seat] for seat in seats]
        _write(path, header, rows)
    elif variant == "crlf":  # Windows line ends, a BOM, blank lines at the end
        _write(path, header, rows, crlf=True)
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes() + b"\r\n\r\n")
    elif variant == "compact-date":  # a form only date.fromisoformat reads: row by row
        rows[4000][2] = rows[4000][2].replace("-", "")
        _write(path, header, rows)
    elif variant == "short-row":  # missing trailing fields: row by row
        _write(path, header, rows)
        with path.open("a", encoding="utf-8") as f:
            f.write("l1,a1,2020-02-02\n")
    elif variant == "twice":  # a pair twice: the unique index fails, row by row skips it
        _write(path, header, [*rows, rows[10]])
    else:
        _write(path, header, rows)
    _write(directory / "memberships.csv", seat_header, seats)
    return directory


@pytest.fixture(scope="module")
def load_engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An empty, migrated database of the backend; each load runs in a transaction rolled back."""
    for url in make_database_url(backend, tmp_path_factory.mktemp("load")):
        migrate.upgrade(url)
        engine = create_engine_for(Settings(database_url=url))
        yield engine
        engine.dispose()


def schema(conn: Connection) -> list[str]:
    """The indexes and constraints of the tables."""
    if conn.dialect.name == "sqlite":
        return sorted(conn.execute(text("select sql from sqlite_master where sql is not null")).scalars())
    indexes = conn.execute(text("select indexdef from pg_indexes where schemaname = 'public'")).scalars()
    constraints = conn.execute(
        text(
            "select conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated "
            "from pg_constraint where connamespace = 'public'::regnamespace"
        )
    ).scalars()
    return sorted([*indexes, *constraints])


def loaded(
    engine: Engine, *dumps: Path, bulk: bool = True, fails: str | None = None
) -> tuple[LoadStats | None, dict[str, list[tuple[Any, ...]]]]:
    """Load the dumps one after the other into the empty registry, in a transaction rolled back
    afterwards: the stats of the last load and every table. The rollups kept must equal a
    rebuild, and the indexes and constraints must be the schema's (both backends drop some). With `fails`,
    the last load must fail with that message and leave the registry as it was."""
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            original = schema(conn)
            session = Session(bind=conn, join_transaction_mode="create_savepoint")
            stats = None
            for n, dump in enumerate(dumps, 1):
                if fails and n == len(dumps):
                    before = canonical(conn)
                    with pytest.raises(Invalid) as caught, session.begin_nested():
                        load_registry(session, "test", directory_source(dump), bulk=bulk)
                    assert caught.value.extra["errors"][0]["msg"] == fails
                    assert canonical(conn) == before
                else:
                    stats = load_registry(session, "test", directory_source(dump), bulk=bulk)
            session.flush()
            tables = canonical(conn)
            tables.update(
                {name: [tuple(map(str, r)) for r in conn.execute(text(sql))] for name, sql in ORDERED.items()}
            )
            assert schema(conn) == original
            kept = rollups.snapshot(session)
            rollups.rebuild(session)
            assert rollups.snapshot(session) == kept
            assert pairs.snapshot(session) == pairs.recomputed(session)
            return stats, tables
        finally:
            outer.rollback()


VARIANTS = ["plain", "quoted", "spaced", "crlf", "compact-date", "short-row", "twice"]
ROW_BY_ROW = {"compact-date", "short-row", "twice"}  # the bulk path hands these files over


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_bulk_path_loads_what_the_row_by_row_path_does(
    load_engine: Engine, tmp_path: Path, variant: str
) -> None:
    dump = make_dump(tmp_path / "dump", variant)
    stats, tables = loaded(load_engine, dump)
    expected_stats, expected = loaded(load_engine, dump, bulk=False)
    assert stats is not None and expected_stats is not None
    assert set(tables) == set(expected)
    for table in expected:
        assert tables[table] == expected[table], table
    assert stats.as_dict() == expected_stats.as_dict()
    signatures = 5200 + (variant == "short-row")
    assert len(tables["signatures"]) == signatures and len(tables["rollups"]) > 1000
    assert stats.actors_created == ACTORS and stats.rows["signatures.csv"] == signatures + (
        variant == "twice"
    )
    assert stats.skipped == ({"signatures.csv": 1} if variant == "twice" else {})
    bulk = load_engine.dialect.name == "postgresql"
    assert stats.row_by_row == (["signatures.csv"] if bulk and variant in ROW_BY_ROW else [])


BAD_ROWS = [  # file, line, column, value, message
    ("signatures.csv", 4001, 1, "a99999", "actor_ref 'a99999' is not in actors.csv"),
    ("signatures.csv", 4001, 0, "nope", "unknown letter 'nope'"),
    ("signatures.csv", 4001, 0, "", "letter is required"),
    ("signatures.csv", 4001, 2, "2020-02-30", "'2020-02-30' is not a date"),
    ("signatures.csv", 4001, 2, "2020-1-1", "'2020-1-1' is not a date"),
    ("signatures.csv", 4001, 5, "1.5", "'1.5' is not a whole number"),
    ("signatures.csv", 4001, 7, "soon", "'soon' is not a date"),
    ("memberships.csv", 500, 0, "", "actor_ref is required"),
    ("memberships.csv", 500, 1, "nowhere", "unknown body 'nowhere'"),
    ("memberships.csv", 500, 2, "purple", "unknown party 'purple'"),
    ("memberships.csv", 500, 4, "", "start_date is required"),
    ("actors.csv", 2000, 0, "a5", "ref 'a5' appears twice"),
    ("actors.csv", 2000, 1, "robot", "kind must be person or organisation"),
    ("actors.csv", 2000, 4, "ZZ", "'ZZ' is not an ISO 3166-1 alpha-2 code"),
    ("actors.csv", 2000, 6, "wikidata", "identifiers: 'wikidata' is not scheme:value"),
    ("actors.csv", 2000, 5, "club", f"org_type must be one of {', '.join(ORG_TYPES)}, not 'club'"),
    ("signatures.csv", 4001, 6, "maybe", "status must be confirmed or unverified, not 'maybe'"),
    (
        "signatures.csv",
        4001,
        8,
        "javascript:alert(1)",
        "source must be an http(s) URL with a host (https://example.org/)",
    ),
    (
        "signatures.csv",
        4001,
        8,
        "data:text/html,x",
        "source must be an http(s) URL with a host (https://example.org/)",
    ),
]


@pytest.mark.parametrize(("name", "line", "column", "value", "message"), BAD_ROWS)
def test_a_bad_row_deep_in_a_file_is_reported_with_its_line_and_nothing_is_loaded(
    load_engine: Engine, tmp_path: Path, name: str, line: int, column: int, value: str, message: str
) -> None:
    dump = make_dump(tmp_path / "dump")
    path = dump / name
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    rows[line - 1][column] = value
    _write(path, rows[0], rows[1:])
    # Into the empty registry (bulk: dropped indexes), and into one holding the plain dump (where
    # the actor of a bad country is matched by name: the country of a matched actor is not read).
    loaded(load_engine, dump, fails=f"{name} line {line}: {message}")
    if value not in ("ZZ", "club"):
        loaded(load_engine, make_dump(tmp_path / "first"), dump, fails=f"{name} line {line}: {message}")


def test_a_load_into_a_registry_with_data_skips_what_is_there_as_the_row_by_row_path_does(
    load_engine: Engine, tmp_path: Path
) -> None:
    first = make_dump(tmp_path / "first")
    second = make_dump(tmp_path / "second")
    # The second dump: half the signatures are there already, some new ones (one of them twice),
    # a seat there already, a new one, the same new one again; an actor matched by name.
    rows = signature_rows()[::2]
    rows += [
        ["l1", "a1", "2021-01-01", "", "", "", "", "", ""],
        ["l1", "a3", "2021-01-02", "", "", "7", "", "", ""],
    ]
    rows += [
        ["l1", "a3", "2021-01-03", "", "", "", "", "", ""],
        ["l2", "new", "2021-01-04", "", "", "", "", "", ""],
    ]
    _write(
        second / "signatures.csv",
        COLUMNS["signatures.csv"],
        rows,
    )
    with (second / "actors.csv").open("a", encoding="utf-8") as f:
        f.write("new,person,Someone New,,,,\n")
    seats = [
        ["a1", "house", "red", "Seat 1", "2019-12-01", ""],
        ["a4", "senate", "", "", "2021-01-01", ""],
        ["a4", "senate", "red", "", "2021-01-01", ""],
        ["new", "house", "", "", "2021-01-01", ""],
    ]
    _write(
        second / "memberships.csv",
        COLUMNS["memberships.csv"],
        seats,
    )
    stats, tables = loaded(load_engine, first, second)
    expected_stats, expected = loaded(load_engine, first, second, bulk=False)
    assert stats is not None and expected_stats is not None
    for table in expected:
        assert tables[table] == expected[table], table
    assert stats.as_dict() == expected_stats.as_dict()
    assert stats.actors_created == 1 and stats.actors_matched == ACTORS
    assert stats.skipped["signatures.csv"] == len(rows) - 3 and stats.skipped["memberships.csv"] == 2
    assert ("l1", "Org 3 Trust", "organisation", "2021-01-02") in {r[:4] for r in tables["signatures"]}
    assert stats.row_by_row == []


def test_signature_ids_follow_the_file_whatever_plan_joins_the_staged_rows(
    load_engine: Engine, tmp_path: Path
) -> None:
    """Into an empty registry the bulk insert has no ORDER BY: each row's id is taken as it is
    staged. With merge joins forced (which sort the staged rows by letter and by ref) the ids
    must still follow the file, as the row-by-row path gives them."""
    if load_engine.dialect.name != "postgresql":
        pytest.skip("the bulk path is PostgreSQL's")
    dump = make_dump(tmp_path / "dump")
    _stats, expected = loaded(load_engine, dump, bulk=False)
    with load_engine.connect() as conn:
        outer = conn.begin()
        try:
            conn.execute(text("SET LOCAL enable_hashjoin = off"))
            conn.execute(text("SET LOCAL enable_nestloop = off"))
            session = Session(bind=conn, join_transaction_mode="create_savepoint")
            stats = load_registry(session, "test", directory_source(dump))
            session.flush()
            order = [tuple(map(str, r)) for r in conn.execute(text(ORDERED["signature_order"]))]
        finally:
            outer.rollback()
    assert stats.row_by_row == []
    assert order == expected["signature_order"]


@pytest.mark.parametrize("role", ["origin", "local"])
def test_the_bulk_load_keeps_the_foreign_keys_where_it_may_turn_their_triggers_off(
    load_engine: Engine, tmp_path: Path, role: str
) -> None:
    """Into an empty registry the bulk inserts of signatures and memberships take every
    reference from a join, so their foreign keys stay in place with their triggers off for the
    insert only (`session_replication_role`, which the superuser of the tests may set): after
    the load the same transaction is back to `origin` and a signature of no actor is refused.
    Where the role is not `origin` beforehand (as where it may not be set) the keys are dropped
    and made again: the same rows, the same schema (`loaded` compares it) either way."""
    if load_engine.dialect.name != "postgresql":
        pytest.skip("the bulk path is PostgreSQL's")
    dump = make_dump(tmp_path / "dump")
    _stats, expected = loaded(load_engine, dump, bulk=False)
    with load_engine.connect() as conn:
        outer = conn.begin()
        try:
            original = schema(conn)
            conn.execute(text(f"SET LOCAL session_replication_role = {role}"))
            session = Session(bind=conn, join_transaction_mode="create_savepoint")
            stats = load_registry(session, "test", directory_source(dump))
            session.flush()
            assert stats.row_by_row == []
            assert conn.execute(text("SELECT current_setting('session_replication_role')")).scalar() == role
            assert schema(conn) == original
            assert canonical(conn) == {table: expected[table] for table in CANONICAL}
            assert pairs.snapshot(session) == pairs.recomputed(session)
            letter = conn.execute(text("SELECT min(id) FROM letters")).scalar()
            with pytest.raises(IntegrityError, match="fk_signatures_actor_id_actors"), conn.begin_nested():
                conn.execute(
                    text(
                        "INSERT INTO signatures (letter_id, actor_id, signed_on, status, created_at, "
                        "updated_at) VALUES (:letter, -1, DATE '2020-02-02', 'confirmed', now(), now())"
                    ),
                    {"letter": letter},
                )
        finally:
            outer.rollback()


def test_a_dump_file_reads_as_csv_dictreader_gives_it(tmp_path: Path) -> None:
    """Blank rows skipped, a short row's missing fields None, fields trimmed (empty: None),
    the header trimmed and lower-cased, lines counted as the file's, a long row reported."""
    path = tmp_path / "actors.csv"
    path.write_bytes(
        "\ufeff Ref ,KIND,name,sort_name\r\n"
        'a1, person ,"Ann\nB",\r\n'
        "\r\n"
        "a2,organisation\r\n"
        "a3,person,  ,x\r\n".encode()
    )
    rows = list(files.read_rows(path, "actors.csv"))
    assert rows == [
        (3, {"ref": "a1", "kind": "person", "name": "Ann\nB", "sort_name": None}),
        (5, {"ref": "a2", "kind": "organisation", "name": None, "sort_name": None}),
        (6, {"ref": "a3", "kind": "person", "name": None, "sort_name": "x"}),
    ]
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write("a4,person,Dee,,extra\r\n")
    with pytest.raises(Invalid) as caught:
        list(files.read_rows(path, "actors.csv"))
    assert caught.value.extra["errors"][0]["msg"] == "actors.csv line 7: more fields than the header"
    path.write_text("ref,name\na1,Ann\n", encoding="utf-8")
    with pytest.raises(Invalid) as caught:
        list(files.read_rows(path, "actors.csv"))
    assert caught.value.extra["errors"][0]["msg"] == "actors.csv: the header lacks kind"


def test_a_file_holding_copys_end_marker_is_parsed_here(tmp_path: Path) -> None:
    """`\\.` ends COPY's data: a file holding it anywhere is not given to the server to parse,
    a file with other backslashes is."""
    path = tmp_path / "signatures.csv"
    path.write_bytes(b"letter,actor_ref\nl1,a\\b\n" + b"l1,a1\n" * 300_000 + b"l2,x\\.y\n")
    assert postgres.inspect_file(path)[1] is None
    path.write_bytes(b"letter,actor_ref\nl1,a\\b\n" + b"l1,a1\n" * 300_000)
    assert postgres.inspect_file(path)[1] == len(b"letter,actor_ref\n")


def test_whitespace_is_what_str_strip_takes_off() -> None:
    assert "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()) == postgres.WHITESPACE
