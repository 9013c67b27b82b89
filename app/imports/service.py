"""The import use case: rows -> matched or new actors -> signatures of one letter.

One transaction, in phases: lock the letter row (imports of one letter are serialised: `SELECT
… FOR UPDATE` on PostgreSQL; a SQLite write transaction holds the database's write lock from its
`BEGIN IMMEDIATE`), check every row, resolve them in bulk (`matching.Resolver`), and only if no
row is an error, write with bulk statements (chunks of `WRITE_CHUNK` rows: actors with
`INSERT … RETURNING`, then identifiers, memberships and signatures by executemany). The unique
constraints (`signatures(letter_id, actor_id)`, `identifiers(scheme, value)`) stand behind the
lock. A dry run does the same reading and writes nothing (new actors have `id: null`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import Any, Literal

from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Integer, and_, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app import rollups
from app.auth import Writer
from app.changes import record_change
from app.errors import AppError, NotFound
from app.imports.matching import Candidate, Resolver, chunks, conflicts, decide_fuzzy
from app.imports.parsing import ImportRow, RawRow, check_row
from app.models import Actor, Base, Body, Letter, Membership, Party, Signature
from app.text import match_name, search_text

log = logging.getLogger("undersigned.imports")

WRITE_CHUNK = 5000
ANALYZE_AFTER = 10_000  # rows added to a table
Status = Literal["created", "matched", "duplicate", "ambiguous", "error"]
Progress = Callable[[str, int, int], None]


class ImportFailed(AppError):
    """At least one row is an error: 422, the report in the problem document, nothing written."""

    status, title, slug = 422, "Import has error rows", "import-errors"


@dataclass
class ImportOptions:
    default_kind: str = "organisation"
    dry_run: bool = False
    on_ambiguous: Literal["report", "create"] = "report"
    scorer: str = "token_sort_ratio"
    threshold: float = 92


@dataclass
class _NewActor:
    row: ImportRow
    key: str
    id: int | None = None


@dataclass
class _Outcome:
    row: ImportRow
    status: Status
    actor_id: int | None = None
    new: _NewActor | None = None
    candidates: list[Candidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Clock:
    """Seconds spent per phase, for the debug log."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.laps: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps.append((name, now - self.last))
        self.last = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.3f} s" for name, seconds in self.laps)


def lock_letter(session: Session, slug: str) -> Letter:
    """The letter, its row locked for the rest of the transaction (PostgreSQL)."""
    letter = session.scalar(select(Letter).where(Letter.slug == slug).with_for_update())
    if letter is None:
        raise NotFound(f"no letter with slug {slug!r}")
    return letter


def _slug_ids(session: Session, model: type[Body] | type[Party], slugs: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in chunks(sorted(slugs)):
        for slug, ident in session.execute(select(model.slug, model.id).where(model.slug.in_(part))):
            out[slug] = ident
    return out


def _seat_warnings(
    session: Session, outcomes: list[_Outcome], bodies: dict[str, int], parties: dict[str, int]
) -> None:
    """For matched people with body/party on the row: the membership valid on the signing day
    must agree, else a warning (not an error)."""
    checks = [o for o in outcomes if o.status == "matched" and (o.row.body or o.row.party)]
    if not checks:
        return
    seats: dict[int, list[tuple[int, int | None, date, date | None]]] = {}
    for part in chunks(sorted({o.actor_id for o in checks if o.actor_id is not None})):
        stmt = select(
            Membership.actor_id,
            Membership.body_id,
            Membership.party_id,
            Membership.start_date,
            Membership.end_date,
        ).where(Membership.actor_id.in_(part))
        for actor_id, body_id, party_id, start, end in session.execute(stmt):
            seats.setdefault(actor_id, []).append((body_id, party_id, start, end))
    for o in checks:
        day = o.row.signed_on
        assert day is not None and o.actor_id is not None
        valid = [s for s in seats.get(o.actor_id, []) if s[2] <= day and (s[3] is None or s[3] >= day)]
        if o.row.body:
            in_body = [s for s in valid if s[0] == bodies[o.row.body]]
            if not in_body:
                o.warnings.append(f"body: no membership of '{o.row.body}' valid on {day}")
            valid = in_body or valid
        if o.row.party and not any(s[1] == parties[o.row.party] for s in valid):
            o.warnings.append(f"party: no membership for '{o.row.party}' valid on {day}")


def import_signatures(
    session: Session,
    key_name: str,
    slug: str,
    raw_rows: Iterable[RawRow],
    options: ImportOptions,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Import rows into a letter's signatures; returns the report (SPEC §4). Raises
    `ImportFailed` (422, with the report) when a row is an error; nothing is then written."""
    with _gc_paused():
        return _import(session, key_name, slug, raw_rows, options, progress)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while an import runs. It makes a few objects per row and
    keeps them to the end, none in cycles; the collector would walk them all again and again as
    they pile up (a third of the time of a 100,000-row import, measured). Reference counting
    still frees everything; the collector resumes after (unless something else had paused it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _import(
    session: Session,
    key_name: str,
    slug: str,
    raw_rows: Iterable[RawRow],
    options: ImportOptions,
    progress: Progress | None,
) -> dict[str, Any]:
    clock = _Clock()
    letter = lock_letter(session, slug)
    default_day = letter.published_on or date.today()
    rows = [check_row(raw, default_kind=options.default_kind) for raw in raw_rows]
    total = len(rows)
    if progress:
        progress("checking", total, total)
    clock.lap("read")

    bodies = _slug_ids(session, Body, {r.body for r in rows if r.body})
    parties = _slug_ids(session, Party, {r.party for r in rows if r.party})
    for r in rows:
        if r.body and r.body not in bodies:
            r.errors.append(f"body: unknown body '{r.body}'")
        if r.party and r.party not in parties:
            r.errors.append(f"party: unknown party '{r.party}'")
        r.signed_on = r.signed_on or default_day
        if r.withdrawn_on and r.withdrawn_on < r.signed_on:
            r.errors.append("withdrawn_on: before signed_on")

    resolver = Resolver(session, scorer=options.scorer, threshold=options.threshold)
    good = [r for r in rows if not r.errors]
    by_ident = resolver.by_identifiers(p for r in good for p in r.identifiers)
    keys = {r.row: match_name(r.name) for r in good}
    clock.lap("normalise")
    exact: dict[str, dict[str, list[int]]] = {}
    for kind in {r.kind for r in good}:
        exact[kind] = resolver.by_names_bulk(kind, {keys[r.row] for r in good if r.kind == kind})
    # What the exactly named actors hold matters only to rows that give identifiers (`conflicts`).
    held = resolver.identifiers_of(
        i for r in good if r.identifiers for i in exact[r.kind].get(keys[r.row], ())
    )
    # `actor_id` (a signatures export) names an actor when kind and normalised name agree.
    known_ids: dict[int, tuple[str, str]] = {}
    for part in chunks(sorted({r.actor_id for r in good if r.actor_id is not None})):
        stmt = select(Actor.id, Actor.kind, Actor.match_name, Actor.name).where(Actor.id.in_(part))
        for actor_id, kind, key, name in session.execute(stmt):
            known_ids[actor_id] = (kind, key)
            resolver.names[actor_id] = name
    by_actor_id = {
        r.row: r.actor_id
        for r in good
        if r.actor_id is not None and known_ids.get(r.actor_id) == (r.kind, keys[r.row])
    }
    # Fuzzy candidates (against existing actors only) for the rows that neither an identifier nor
    # an exact name resolves, and the identifiers those candidates hold, in bulk.
    fuzzy_of: dict[int, list[Candidate]] = {}
    unresolved = [
        r
        for r in good
        if r.row not in by_actor_id
        and not (r.identifiers and any(p in by_ident for p in r.identifiers))
        and not exact[r.kind].get(keys[r.row])
    ]
    for kind in sorted({r.kind for r in unresolved}):
        found = resolver.fuzzy_many(kind, (keys[r.row] for r in unresolved if r.kind == kind))
        for r in unresolved:
            if r.kind == kind and keys[r.row] in found:
                fuzzy_of[r.row] = found[keys[r.row]]
    fuzzy_held = resolver.identifiers_of(
        c.id for r in good if r.identifiers and r.row in fuzzy_of for c in fuzzy_of[r.row]
    )
    clock.lap("match")
    signed = dict(
        session.execute(
            select(Signature.actor_id, Signature.withdrawn_on).where(Signature.letter_id == letter.id)
        ).all()
    )

    outcomes: list[_Outcome] = []
    seen: dict[int, int] = {}  # existing actor id -> first row naming it
    new_by_ident: dict[tuple[str, str], _NewActor] = {}
    new_by_name: dict[tuple[str, str], _NewActor] = {}
    created: list[_NewActor] = []
    for done, r in enumerate(rows, start=1):
        if progress and done % 5000 == 0:
            progress("matching", done, total)
        if r.errors:
            outcomes.append(_Outcome(r, "error"))
            continue
        key = keys[r.row]
        idents = r.identifiers  # (without any, no actor can conflict with the row)
        target: int | None = by_actor_id.get(r.row)
        pending: _NewActor | None = None
        if idents:
            ident_ids = {by_ident[p] for p in idents if p in by_ident}
            if len(ident_ids) > 1:
                r.errors.append(
                    f"identifiers: they belong to different actors ({', '.join(map(str, sorted(ident_ids)))})"
                )
                outcomes.append(_Outcome(r, "error"))
                continue
            if ident_ids:
                target = ident_ids.pop()
            pending = next((new_by_ident[p] for p in idents if p in new_by_ident), None)
        candidates: list[Candidate] = []
        if target is None and pending is None:
            names = exact[r.kind].get(key, [])
            if idents:
                names = [i for i in names if not conflicts(idents, held.get(i, {}))]
            if len(names) == 1:
                target = names[0]
            elif len(names) > 1:
                candidates = [Candidate(i, "", 1.0) for i in names]  # named in the report
            else:
                pending = new_by_name.get((r.kind, key))
                if pending is not None and idents and conflicts(idents, dict(pending.row.identifiers)):
                    pending = None
                if pending is None and r.row in fuzzy_of:
                    fuzzy = fuzzy_of[r.row]
                    if idents:
                        fuzzy = [c for c in fuzzy if not conflicts(idents, fuzzy_held.get(c.id, {}))]
                    best, candidates = decide_fuzzy(fuzzy)
                    target = best.id if best else None
        if target is not None:
            outcome = _Outcome(r, "matched", actor_id=target)
            if target in signed:
                outcome.status = "duplicate"
                withdrawn = signed[target]
                outcome.warnings.append(
                    f"already signed; the signature was withdrawn on {withdrawn} and is left as it is"
                    if withdrawn
                    else "already signed this letter"
                )
            elif target in seen:
                outcome.status = "duplicate"
                outcome.warnings.append(f"same actor as row {seen[target]}")
            else:
                seen[target] = r.row
            outcomes.append(outcome)
            continue
        if pending is not None:
            outcomes.append(
                _Outcome(r, "duplicate", new=pending, warnings=[f"same actor as row {pending.row.row}"])
            )
            continue
        if candidates and options.on_ambiguous != "create":
            outcomes.append(_Outcome(r, "ambiguous", candidates=candidates))
            continue
        new = _NewActor(r, key)
        created.append(new)
        for p in r.identifiers:
            new_by_ident.setdefault(p, new)
        new_by_name.setdefault((r.kind, key), new)
        outcome = _Outcome(r, "created", new=new)
        if candidates:
            outcome.warnings.append("ambiguous; created a new actor (on_ambiguous=create)")
        if r.party and not r.body:
            outcome.warnings.append("party: no membership recorded without a body")
        outcomes.append(outcome)
    if progress:
        progress("matching", total, total)
    clock.lap("decide")

    resolver.fetch_names(
        [o.actor_id for o in outcomes if o.actor_id is not None]
        + [c.id for o in outcomes for c in o.candidates]
    )
    _seat_warnings(session, outcomes, bodies, parties)
    summary = dict.fromkeys(("created", "matched", "duplicate", "ambiguous", "error"), 0)
    for o in outcomes:
        summary[o.status] += 1
    failed = summary["error"] > 0

    if not failed and not options.dry_run:
        with generic_plans(session):
            _write(session, letter, created, outcomes, bodies, parties, progress)
        _analyze(
            session,
            {
                "actors": len(created),
                "identifiers": sum(len(n.row.identifiers) for n in created),
                "signatures": summary["created"] + summary["matched"],
            },
        )
        rollups.touch_letter(session, letter.id)
        record_change(
            session,
            key_name,
            "import",
            "letter",
            letter.slug,
            after={"summary": {"rows": total, **summary}, "dry_run": False},
        )
        session.flush()

    clock.lap("write")
    report = {
        "dry_run": options.dry_run,
        "summary": {"rows": total, **summary},
        "rows": [_row_report(o, resolver.names) for o in outcomes],
    }
    clock.lap("report")
    log.debug("import into %s, %d rows: %s", slug, total, clock)
    if failed:
        raise ImportFailed(
            f"{summary['error']} of {total} rows have errors; nothing was imported", extra=report
        )
    return report


@contextmanager
def generic_plans(session: Session) -> Iterator[None]:
    """PostgreSQL: let a bulk write's foreign-key checks use their cached generic plans. The
    engine plans every prepared statement for its parameters (`plan_cache_mode =
    force_custom_plan`, app/db.py), which for the checks — one primary-key lookup per written
    row, prepared by the trigger — means planning each row again: COPY of 100,000 signatures
    took 4.8 s instead of 1.6 s here. The setting is restored after the block (on an error the
    rollback restores it)."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    previous = session.scalar(text("SELECT current_setting('plan_cache_mode')"))
    session.execute(text("SET LOCAL plan_cache_mode = auto"))
    yield
    session.execute(text("SELECT set_config('plan_cache_mode', :value, true)"), {"value": previous})


def _analyze(session: Session, added: dict[str, int]) -> None:
    """PostgreSQL: statistics for the tables a large import at least doubled (or that have none
    yet), so that the next import right after this one, before autovacuum comes round, still
    plans index lookups rather than scans. Without statistics the planner takes an `IN` list of
    500 names to match much of the table (exact-name lookups of an import into a registry loaded
    a moment before took 6 s instead of 1 s, measured); statistics of a table half its size
    still describe it (a name is as rare), and autovacuum refreshes them soon after."""
    if session.get_bind().dialect.name != "postgresql":
        return
    stale = []
    for table, rows in added.items():
        if rows < ANALYZE_AFTER:
            continue
        known = session.scalar(
            text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
        )
        if known is None or known < 0 or rows >= known:  # (-1: never analysed)
            stale.append(table)
    if stale:
        session.execute(text(f"ANALYZE {', '.join(stale)}"))


def insert_rows(session: Session, table_name: str, rows: list[dict[str, Any]]) -> None:
    """Bulk insert: `COPY … FROM STDIN` on PostgreSQL (psycopg's `cursor.copy()`), one
    `executemany` of the driver elsewhere, the values converted by the columns' own types as
    SQLAlchemy would (dates, timestamps). Python-side column defaults (created_at, …) are
    filled in once for all the rows. Every row has the keys of the first."""
    if not rows:
        return
    table = Base.metadata.tables[table_name]
    given = list(rows[0])
    defaults: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None:
            continue
        if getattr(default, "is_callable", False):
            defaults[column.name] = default.arg(None)  # type: ignore[attr-defined]
        elif getattr(default, "is_scalar", False):
            defaults[column.name] = default.arg  # type: ignore[attr-defined]
    columns = given + list(defaults)
    conn = session.connection()
    dialect = conn.dialect
    if dialect.name != "postgresql":
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
        tail = tuple(
            value if process is None else process(value)
            for value, process in zip(defaults.values(), processors[len(given) :], strict=True)
        )
        convert = [(i, process) for i, process in enumerate(processors[: len(given)]) if process is not None]
        pick = itemgetter(*given)

        def values(row: dict[str, Any]) -> tuple[Any, ...]:
            picked = pick(row)
            out = list(picked) if len(given) > 1 else [picked]
            for i, process in convert:
                out[i] = process(out[i])
            return (*out, *tail)

        quote = dialect.identifier_preparer.quote
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        conn.exec_driver_sql(sql, [values(row) for row in rows])
        return
    tail_values = tuple(defaults.values())
    pick_all = itemgetter(*given)
    single = len(given) == 1
    raw = conn.connection.driver_connection
    assert raw is not None
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    # A worker thread sends while this one formats the rows, and the server inserts them.
    with raw.cursor() as cursor, cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
        for row in rows:
            picked = pick_all(row)
            copy.write_row(((picked,) if single else picked) + tail_values)


def insert_actors(session: Session, values: list[dict[str, Any]]) -> list[int]:
    """Insert actors in bulk; their new ids, in order.

    The ids are taken first, so that the rows can go in without RETURNING: on PostgreSQL from
    the table's sequence (`nextval` over `generate_series` in one statement, then COPY); on SQLite from `max(id)`,
    safe because a SQLite write transaction holds the database's only write lock from its first
    statement (`BEGIN IMMEDIATE`)."""
    if not values:
        return []
    conn = session.connection()
    actors = Base.metadata.tables["actors"]
    if conn.dialect.name == "postgresql":
        # The sequence is looked up once: `nextval(pg_get_serial_sequence(…))` looks it up per
        # row (0.28 s for 100,000 ids instead of 0.04 s); the ids come back as one array.
        sequence = conn.scalar(text("SELECT CAST(pg_get_serial_sequence('actors', 'id') AS regclass)::oid"))
        ids = list(
            conn.scalar(
                text("SELECT array_agg(nextval(CAST(:seq AS oid))) FROM generate_series(1, :n)"),
                {"seq": sequence, "n": len(values)},
            )
        )
    else:
        start = (conn.scalar(select(func.max(actors.c.id))) or 0) + 1
        ids = list(range(start, start + len(values)))
    insert_rows(session, "actors", [{"id": i, **v} for v, i in zip(values, ids, strict=True)])
    return ids


def _row_report(o: _Outcome, names: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"row": o.row.row, "status": o.status}
    if o.status == "error":
        out["error"] = "; ".join(o.row.errors)
    elif o.status == "ambiguous":
        out["candidates"] = [
            {"id": c.id, "name": names.get(c.id, ""), "score": c.score} for c in o.candidates
        ]
    elif o.actor_id is not None:
        out["actor"] = {"id": o.actor_id, "name": names.get(o.actor_id, "")}
    elif o.new is not None:
        out["actor"] = {"id": o.new.id, "name": o.new.row.name}
    if o.warnings:
        out["warning"] = "; ".join(o.warnings)
    return out


def _write(
    session: Session,
    letter: Letter,
    created: list[_NewActor],
    outcomes: list[_Outcome],
    bodies: dict[str, int],
    parties: dict[str, int],
    progress: Progress | None,
) -> None:
    total = len(created) + len(outcomes)
    done = 0
    for part in chunks(created, WRITE_CHUNK):
        values = [
            {
                "kind": n.row.kind,
                "name": n.row.name,
                "sort_name": n.row.sort_name,
                "country": n.row.country,
                "org_type": n.row.org_type,
                "match_name": n.key,
                "search_text": search_text(n.row.name, n.row.sort_name),
            }
            for n in part
        ]
        ids = insert_actors(session, values)
        for n, new_id in zip(part, ids, strict=True):
            n.id = new_id
        identifiers = [
            {"actor_id": n.id, "scheme": s, "value": v} for n in part for s, v in n.row.identifiers
        ]
        if identifiers:
            insert_rows(session, "identifiers", identifiers)
        seats = [
            {
                "actor_id": n.id,
                "body_id": bodies[n.row.body],
                "party_id": parties[n.row.party] if n.row.party else None,
                "start_date": n.row.signed_on,
                "end_date": None,
            }
            for n in part
            if n.row.body
        ]
        if seats:
            insert_rows(session, "memberships", seats)
        done += len(part)
        if progress:
            progress("writing", done, total)
    signing = [o for o in outcomes if o.status in ("created", "matched")]
    postgres = session.get_bind().dialect.name == "postgresql"
    # SQLite: the transaction holds the database's only write lock, so the signatures with a
    # higher id than any before are this import's.
    before = 0 if postgres else session.scalar(select(func.max(Signature.id))) or 0
    actor_ids: list[int] = []
    for part in chunks(signing, WRITE_CHUNK):
        values = []
        for o in part:
            actor_id = o.actor_id if o.actor_id is not None else (o.new.id if o.new else None)
            assert actor_id is not None
            values.append(
                {
                    "letter_id": letter.id,
                    "actor_id": actor_id,
                    "signed_on": o.row.signed_on,
                    "capacity": o.row.capacity,
                    "affiliation": o.row.affiliation,
                    "position": o.row.position,
                    "source": o.row.source,
                    "status": o.row.status,
                    "withdrawn_on": o.row.withdrawn_on,
                }
            )
        insert_rows(session, "signatures", values)
        actor_ids.extend(v["actor_id"] for v in values)
        done += len(part)
        if progress:
            progress("writing", min(done, total), total)
    if not actor_ids:
        return
    # The signatures just written count, in one statement. PostgreSQL: this letter's signatures
    # by those actors (each actor signs a letter once), the ids as one array parameter.
    written = (
        Signature.actor_id == any_(bindparam("actor_ids", actor_ids, type_=ARRAY(Integer)))
        if postgres
        else Signature.id > before
    )
    rollups.shift(session, and_(Signature.letter_id == letter.id, written), 1)


def import_for_writer(
    writer: Writer,
    slug: str,
    raw_rows: Iterable[RawRow],
    options: ImportOptions,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    return import_signatures(writer.session, writer.key_name, slug, raw_rows, options, progress=progress)
