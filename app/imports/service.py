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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy import and_, func, insert, select, text
from sqlalchemy.orm import Session

from app import rollups
from app.auth import Writer
from app.changes import record_change
from app.errors import AppError, NotFound
from app.imports.matching import Candidate, Resolver, chunks, conflicts, decide_fuzzy
from app.imports.parsing import ImportRow, RawRow, check_row
from app.models import Actor, Base, Body, Letter, Membership, Party, Signature
from app.text import match_name, search_text

WRITE_CHUNK = 5000
ANALYZE_AFTER = 10_000  # new actors
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
    letter = lock_letter(session, slug)
    default_day = letter.published_on or date.today()
    rows = [check_row(raw, default_kind=options.default_kind) for raw in raw_rows]
    total = len(rows)
    if progress:
        progress("checking", total, total)

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
    exact: dict[str, dict[str, list[int]]] = {}
    for kind in {r.kind for r in good}:
        exact[kind] = resolver.by_names(kind, (keys[r.row] for r in good if r.kind == kind))
    held = resolver.identifiers_of(i for per_kind in exact.values() for ids in per_kind.values() for i in ids)
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
    for r in good:
        if (
            r.row not in by_actor_id
            and not any(p in by_ident for p in r.identifiers)
            and not exact[r.kind].get(keys[r.row])
        ):
            found = resolver.fuzzy(r.kind, keys[r.row])
            if found:
                fuzzy_of[r.row] = found
    fuzzy_held = resolver.identifiers_of(
        c.id for r in good if r.identifiers and r.row in fuzzy_of for c in fuzzy_of[r.row]
    )
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
        ident_ids = {by_ident[p] for p in r.identifiers if p in by_ident}
        if len(ident_ids) > 1:
            r.errors.append(
                f"identifiers: they belong to different actors ({', '.join(map(str, sorted(ident_ids)))})"
            )
            outcomes.append(_Outcome(r, "error"))
            continue
        target: int | None = ident_ids.pop() if ident_ids else by_actor_id.get(r.row)
        pending = next((new_by_ident[p] for p in r.identifiers if p in new_by_ident), None)
        candidates: list[Candidate] = []
        if target is None and pending is None:
            names = [i for i in exact[r.kind].get(key, []) if not conflicts(r.identifiers, held.get(i, {}))]
            if len(names) == 1:
                target = names[0]
            elif len(names) > 1:
                candidates = [Candidate(i, resolver.names[i], 1.0) for i in names]
            else:
                pending = new_by_name.get((r.kind, key))
                if pending is not None and conflicts(r.identifiers, dict(pending.row.identifiers)):
                    pending = None
                if pending is None:
                    fuzzy = [
                        c
                        for c in fuzzy_of.get(r.row, [])
                        if not conflicts(r.identifiers, fuzzy_held.get(c.id, {}))
                    ]
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
        _write(session, letter, created, outcomes, bodies, parties, progress)
        if len(created) >= ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
            # Fresh statistics, so that the next import right after this one (before autovacuum
            # comes round) still plans index lookups rather than scans.
            session.execute(text("ANALYZE actors, identifiers, signatures"))
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

    report = {
        "dry_run": options.dry_run,
        "summary": {"rows": total, **summary},
        "rows": [_row_report(o, resolver.names) for o in outcomes],
    }
    if failed:
        raise ImportFailed(
            f"{summary['error']} of {total} rows have errors; nothing was imported", extra=report
        )
    return report


def insert_rows(session: Session, table_name: str, rows: list[dict[str, Any]]) -> None:
    """Bulk insert: `COPY … FROM STDIN` on PostgreSQL (psycopg's `cursor.copy()`), executemany
    elsewhere. Python-side column defaults (created_at, …) are filled in for COPY too."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.connection().execute(insert(Base.metadata.tables[table_name]), rows)
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
    tail = list(defaults.values())
    raw = session.connection().connection.driver_connection
    assert raw is not None
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row([row[c] for c in given] + tail)


def insert_actors(session: Session, values: list[dict[str, Any]]) -> list[int]:
    """Insert actors in bulk; their new ids, in order.

    The ids are taken first, so that the rows can go in without RETURNING: on PostgreSQL from
    the table's sequence (`nextval` over `generate_series`, then COPY); on SQLite from `max(id)`,
    safe because a SQLite write transaction holds the database's only write lock from its first
    statement (`BEGIN IMMEDIATE`)."""
    if not values:
        return []
    conn = session.connection()
    actors = Base.metadata.tables["actors"]
    if conn.dialect.name == "postgresql":
        ids = list(
            conn.scalars(
                text("SELECT nextval(pg_get_serial_sequence('actors', 'id')) FROM generate_series(1, :n)"),
                {"n": len(values)},
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
        # The signatures just written (the letter is locked, and each actor signs it once).
        rollups.shift(
            session,
            and_(Signature.letter_id == letter.id, Signature.actor_id.in_([v["actor_id"] for v in values])),
            1,
        )
        done += len(part)
        if progress:
            progress("writing", min(done, total), total)


def import_for_writer(
    writer: Writer,
    slug: str,
    raw_rows: Iterable[RawRow],
    options: ImportOptions,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    return import_signatures(writer.session, writer.key_name, slug, raw_rows, options, progress=progress)
