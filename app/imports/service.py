"""The import use case: rows -> matched or new actors -> signatures of one letter.

One transaction, in phases: lock the letter row (imports of one letter are serialised: `SELECT
… FOR UPDATE` on PostgreSQL; a SQLite write transaction holds the database's write lock from its
`BEGIN IMMEDIATE`), check every row, resolve them in bulk (`matching.Resolver`), and only if no
row is an error, write with bulk statements (`insert_rows`: COPY on PostgreSQL, executemany on
SQLite), chunk by chunk (`PIPELINE_CHUNK` rows: new actors, their identifiers and seats, then
the signatures; on PostgreSQL a large import is written by a thread while the next chunk is
matched). The rollups are updated once for the whole import. The unique constraints
(`signatures(letter_id, actor_id)`, `identifiers(scheme, value)`) stand behind the lock. A dry
run does the same reading and writes nothing (new actors have `id: null`).
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any, Literal

from confusable_homoglyphs.confusables import is_mixed_script
from rapidfuzz import fuzz
from sqlalchemy import Integer, and_, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import pairs, rollups
from app.actors.identity import first_free_actor_id, name_lock, resolve_ids
from app.auth import Writer
from app.changes import record_change
from app.errors import AppError, NotFound
from app.imports.matching import MAX_CANDIDATES, Candidate, Resolver, chunks, conflicts, decide_fuzzy
from app.imports.parsing import ImportRow, RawRow, check_row
from app.models import Actor, ActorAlias, Base, Body, Letter, Membership, Party, Signature
from app.names import differ_by_distinguishing, variant_key
from app.seats import held_on
from app.text import fold, match_folded, match_name, search_text

log = logging.getLogger("undersigned.imports")

# Rows decided, then written, per chunk (on PostgreSQL, an import of more is written by a thread).
PIPELINE_CHUNK = 5000
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
    possible_threshold: float = 80  # (fuzzy scores reported as possible matches only)
    # Rows created as new that are searched for possible matches (their variant keys, and fuzzy
    # scores below `threshold`): the first of a list. The search costs as much as the matching
    # again (more below the threshold); a list of thousands is not checked by a person row by row.
    possible_rows: int = 2000
    # "flagged": the report lists only the rows that are not a plain `created` or `matched`
    # (errors, ambiguous, duplicates, rows with a warning); the summary still counts every row.
    rows: Literal["all", "flagged"] = "all"
    # The report lists at most this many rows of each status (IMPORT_REPORT_ROWS), so a huge
    # list answers a bounded report; `rows_left_out` counts the others.
    rows_per_status: int = 20_000


@dataclass
class _NewActor:
    row: ImportRow
    key: str
    folded: str  # the name, folded
    id: int | None = None


@dataclass
class _Outcome:
    row: ImportRow
    status: Status
    actor_id: int | None = None
    new: _NewActor | None = None
    candidates: list[Candidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    method: str | None = None  # how an existing actor was found (`MatchMethod`)
    score: float | None = None
    possible: list[Candidate] = field(default_factory=list)  # close candidates passed over


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
    """For matched people with body/party on the row: the seat they held on the signing day
    (`app.seats`: the one their signature is counted under) must be in that body and for that
    party, else a warning (not an error). One query per signing day and chunk of actors."""
    checks = [o for o in outcomes if o.status == "matched" and (o.row.body or o.row.party)]
    if not checks:
        return
    actors_on: dict[date, set[int]] = {}
    for o in checks:
        assert o.row.signed_on is not None and o.actor_id is not None
        actors_on.setdefault(o.row.signed_on, set()).add(o.actor_id)
    held: dict[tuple[int, date], tuple[int, int | None]] = {}
    for on, actor_ids in actors_on.items():
        for part in chunks(sorted(actor_ids)):
            stmt = select(Membership.actor_id, Membership.body_id, Membership.party_id).where(
                Membership.actor_id.in_(part), held_on(Membership, Membership.actor_id, on)
            )
            for actor_id, body_id, party_id in session.execute(stmt):
                held[(actor_id, on)] = (body_id, party_id)
    for o in checks:
        day = o.row.signed_on
        assert day is not None and o.actor_id is not None
        seat = held.get((o.actor_id, day))
        if o.row.body and (seat is None or seat[0] != bodies[o.row.body]):
            o.warnings.append(f"body: the seat held on {day} is not in '{o.row.body}'")
        if o.row.party and (seat is None or seat[1] != parties[o.row.party]):
            o.warnings.append(f"party: the seat held on {day} is not for '{o.row.party}'")


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
    rows = [check_row(raw, default_kind=options.default_kind) for raw in raw_rows]
    total = len(rows)
    folded = {
        r.row: fold(r.name) for r in rows if not r.errors
    }  # (the start of a new actor's search_text too)
    keys = {row: match_folded(name) for row, name in folded.items()}
    if not options.dry_run:
        # Before the letter's lock, in the order every writer of a new actor takes them.
        name_lock(session, {(r.kind, keys[r.row]) for r in rows if r.row in keys})
    letter = lock_letter(session, slug)
    default_day = letter.published_on or date.today()
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
    clock.lap("normalise")
    exact: dict[str, dict[str, list[int]]] = {}
    for kind in {r.kind for r in good}:
        exact[kind] = resolver.by_names_bulk(kind, {keys[r.row] for r in good if r.kind == kind})
        aliased = resolver.by_aliases(
            kind, {keys[r.row] for r in good if r.kind == kind and not exact[kind].get(keys[r.row])}
        )
        for key, holders in aliased.items():  # (a name no actor has: an alias names them)
            exact[kind][key] = [-i for i in holders]  # negative: found by an alias
    clock.lap("exact names")
    named = _named(resolver, good, keys, exact)
    # What the exactly named actors hold matters only to rows that give identifiers (`conflicts`).
    held = resolver.identifiers_of(i for r in good if r.identifiers for i, _m in named.get(r.row, ()))
    by_actor_id = _by_actor_id(session, resolver, good, keys)
    # Rows whose identifiers name two actors are errors (found here, so that whether anything
    # will be written is known before the first write).
    conflicted = {
        r.row
        for r in good
        if r.identifiers and len({by_ident[p] for p in r.identifiers if p in by_ident}) > 1
    }
    writing = not options.dry_run and not conflicted and len(good) == total
    # Fuzzy candidates (against existing actors only) for the rows that neither an identifier nor
    # an exact name resolves. The actors they are searched among are read now, in bulk; rows
    # that give identifiers are searched now too (the identifiers of their candidates are read
    # here), the others chunk by chunk below, while the chunks before are written.
    unresolved = [
        r
        for r in good
        if r.row not in by_actor_id
        and not (r.identifiers and any(p in by_ident for p in r.identifiers))
        and not named.get(r.row)
    ]
    for kind in sorted({r.kind for r in unresolved}):
        resolver.prepare_fuzzy(kind, {keys[r.row] for r in unresolved if r.kind == kind})
    # Rows with identifiers or a seat are searched now (what their candidates hold, and their
    # seats, are read here); the others chunk by chunk below, while the chunks before are written.
    fuzzy_of = _fuzzy(resolver, [r for r in unresolved if r.identifiers or r.body], keys)
    fuzzy_held = resolver.identifiers_of(c.id for candidates in fuzzy_of.values() for c in candidates)
    seats = resolver.seats_of(
        [i for r in good if r.body for i, _m in named.get(r.row, ())]
        + [c.id for row, found in fuzzy_of.items() for c in found]
    )
    later = {r.row for r in unresolved if not (r.identifiers or r.body)}
    signed = dict(
        session.execute(
            select(Signature.actor_id, Signature.withdrawn_on).where(Signature.letter_id == letter.id)
        ).all()
    )
    clock.lap("match")

    outcomes: list[_Outcome] = []
    seen: dict[int, int] = {}  # existing actor id -> first row naming it
    new_by_ident: dict[tuple[str, str], _NewActor] = {}
    new_by_name: dict[tuple[str, str], _NewActor] = {}
    created: list[_NewActor] = []
    # PostgreSQL inserts and checks in its own process, so a large import is written by a thread
    # while Python matches the next chunk. SQLite works in ours, its library letting go of the
    # GIL for each row: the two threads only take turns (measured: no gain), so it writes inline.
    background = total > PIPELINE_CHUNK and session.get_bind().dialect.name == "postgresql"
    writer = None
    if writing:
        # Ids for the new actors are taken now, for as many rows as could make one (those no
        # identifier, actor_id or single exact name settles): a chunk goes to the writer ready.
        creatable = sum(
            1
            for r in good
            if r.row not in by_actor_id
            and not (r.identifiers and any(p in by_ident for p in r.identifiers))
            and (len(named.get(r.row, ())) != 1 or bool(r.identifiers))
        )
        reserved = reserve_actor_ids(session, creatable)
        ids = iter(reserved)
        writer = _Writer(
            session,
            letter,
            bodies,
            parties,
            background=background,
            new_from=reserved[0] if reserved else None,
        )
    try:
        with (
            generic_plans(session) if writer else nullcontext(),
            _QUICK_SWITCHES if background and writer else nullcontext(),
        ):
            for part in chunks(rows, PIPELINE_CHUNK):
                fuzzy_of.update(_fuzzy(resolver, [r for r in part if r.row in later], keys))
                first = len(outcomes)
                for r in part:
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
                                "identifiers: they belong to different actors "
                                f"({', '.join(map(str, sorted(ident_ids)))})"
                            )
                            outcomes.append(_Outcome(r, "error"))
                            continue
                        if ident_ids:
                            target = ident_ids.pop()
                        pending = next((new_by_ident[p] for p in idents if p in new_by_ident), None)
                    candidates: list[Candidate] = []
                    passed: list[Candidate] = []
                    method = "identifier" if target is not None else None
                    if r.row in by_actor_id:
                        method = "actor_id"
                    if target is None and pending is None:
                        names = named.get(r.row, [])
                        if idents:
                            names = [(i, m) for i, m in names if not conflicts(idents, held.get(i, {}))]
                        if len(names) > 1 and r.body:
                            names = _seated(names, r, bodies, parties, seats) or names
                        if len(names) == 1:
                            target, method = names[0]
                        elif len(names) > 1:
                            candidates = [Candidate(i, "", 1.0) for i, _m in names]  # named in the report
                        else:
                            pending = new_by_name.get((r.kind, key))
                            if (
                                pending is not None
                                and idents
                                and conflicts(idents, dict(pending.row.identifiers))
                            ):
                                pending = None
                            if pending is None and r.row in fuzzy_of:
                                fuzzy = fuzzy_of[r.row]
                                if idents:
                                    fuzzy = [
                                        c for c in fuzzy if not conflicts(idents, fuzzy_held.get(c.id, {}))
                                    ]
                                strong, told_apart, passed = _split_fuzzy(resolver, r, key, fuzzy, options)
                                if len(strong) > 1 and r.body:
                                    seated = _seated(
                                        [(c.id, "seat") for c in strong], r, bodies, parties, seats
                                    )
                                    strong = [c for c in strong if (c.id, "seat") in seated] or strong
                                    if len(strong) == 1:
                                        method = "seat"
                                best, candidates = decide_fuzzy(strong)
                                if best is not None:
                                    target, method = best.id, method or "fuzzy"
                                    passed = [c for c in fuzzy if c.id != best.id][:MAX_CANDIDATES]
                                elif not candidates and told_apart:
                                    candidates = told_apart  # a distinguishing word: ask, never match
                    if target is not None:
                        outcome = _Outcome(r, "matched", actor_id=target, method=method, possible=passed)
                        outcome.score = _score_of(method, target, fuzzy_of.get(r.row, []))
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
                            _Outcome(
                                r,
                                "duplicate",
                                new=pending,
                                warnings=[f"same actor as row {pending.row.row}"],
                                method="row",
                            )
                        )
                        continue
                    if candidates and options.on_ambiguous != "create":
                        outcomes.append(_Outcome(r, "ambiguous", candidates=candidates, possible=passed))
                        continue
                    new = _NewActor(r, key, folded[r.row], next(ids) if writer else None)
                    created.append(new)
                    for p in r.identifiers:
                        new_by_ident.setdefault(p, new)
                    new_by_name.setdefault((r.kind, key), new)
                    outcome = _Outcome(r, "created", new=new, possible=candidates + passed)
                    if candidates:
                        outcome.warnings.append("ambiguous; created a new actor (on_ambiguous=create)")
                    if r.party and not r.body:
                        outcome.warnings.append("party: no membership recorded without a body")
                    outcomes.append(outcome)
                if progress:
                    progress("matching", len(outcomes), total)
                if writer:
                    writer.put(outcomes[first:])
            if writer:
                writer.finish()
    finally:
        if writer:
            writer.close()
    clock.lap("decide and write")

    _variant_matches(
        resolver, outcomes, {o.new.id for o in outcomes if o.new and o.new.id}, options.possible_rows
    )
    _close_matches(session, outcomes, keys, options)
    resolver.fetch_names(
        [o.actor_id for o in outcomes if o.actor_id is not None]
        + [c.id for o in outcomes for c in (*o.candidates, *o.possible)]
    )
    _seat_warnings(session, outcomes, bodies, parties)
    clock.lap("names and warnings")
    summary = dict.fromkeys(("created", "matched", "duplicate", "ambiguous", "error"), 0)
    for o in outcomes:
        summary[o.status] += 1
    failed = summary["error"] > 0
    assert failed != (len(good) == total and not conflicted)

    if writer:
        if progress:
            progress("writing", total, total)
        writer.count()
        _analyze(
            session,
            {
                "actors": len(created),
                "identifiers": sum(len(n.row.identifiers) for n in created),
                "signatures": summary["created"] + summary["matched"],
            },
        )
        rollups.touch_letter(session, letter.id)
        if writer.seated:
            rollups.touch_all(session)
        record_change(
            session,
            key_name,
            "import",
            "letter",
            letter.slug,
            after={"summary": {"rows": total, **summary}, "dry_run": False},
        )
        session.flush()

    clock.lap("count")
    listed = dict.fromkeys(summary, 0)
    reported: list[dict[str, Any]] = []
    for o in outcomes:
        if options.rows == "all" or o.warnings or o.status not in ("created", "matched"):
            listed[o.status] += 1
            if listed[o.status] <= options.rows_per_status:
                reported.append(_row_report(o, resolver.names))
    report: dict[str, Any] = {
        "dry_run": options.dry_run,
        "summary": {"rows": total, **summary},
        "rows": reported,
    }
    left_out = {
        status: n - options.rows_per_status for status, n in listed.items() if n > options.rows_per_status
    }
    if left_out:
        report["rows_left_out"] = left_out
    clock.lap("report")
    log.debug("import into %s, %d rows: %s", slug, total, clock)
    if failed:
        raise ImportFailed(
            f"{summary['error']} of {total} rows have errors; nothing was imported", extra=report
        )
    return report


def _named(
    resolver: Resolver, rows: list[ImportRow], keys: dict[int, str], exact: dict[str, dict[str, list[int]]]
) -> dict[int, list[tuple[int, str]]]:
    """The actors each row names by its normalised name (`exact`) or an alias (`alias`; their
    ids negative in `exact`), leaving out, for an organisation with a country, those of another
    country: they are other organisations of the same name."""
    out: dict[int, list[tuple[int, str]]] = {}
    for r in rows:
        hits = exact[r.kind].get(keys[r.row])
        if hits:
            out[r.row] = [(i, "exact") if i > 0 else (-i, "alias") for i in hits]
    checked = [r for r in rows if r.row in out and r.kind == "organisation" and r.country]
    facts = resolver.facts_of(i for r in checked for i, _m in out[r.row])
    for r in checked:
        out[r.row] = [(i, m) for i, m in out[r.row] if facts.get(i, ("", None))[1] in (None, r.country)]
    return out


def _by_actor_id(
    session: Session, resolver: Resolver, rows: list[ImportRow], keys: dict[int, str]
) -> dict[int, int]:
    """`actor_id` (a signatures export) names an actor when kind and normalised name (or one
    of its aliases) agree; an id merged into another stands for the actor it is now."""
    given = {r.actor_id for r in rows if r.actor_id is not None}
    present = set()
    for part in chunks(sorted(given)):
        present |= set(session.scalars(select(Actor.id).where(Actor.id.in_(part))))
    moved = resolve_ids(session, given - present)
    wanted = sorted({moved.get(i, i) for i in given})
    known: dict[int, tuple[str, set[str]]] = {}
    for part in chunks(wanted):
        stmt = select(Actor.id, Actor.kind, Actor.match_name, Actor.name).where(Actor.id.in_(part))
        for actor_id, kind, key, name in session.execute(stmt):
            known[actor_id] = (kind, {key})
            resolver.names[actor_id] = name
        for actor_id, key in session.execute(
            select(ActorAlias.actor_id, ActorAlias.match_name).where(ActorAlias.actor_id.in_(part))
        ):
            known[actor_id][1].add(key)
    out: dict[int, int] = {}
    for r in rows:
        if r.actor_id is None:
            continue
        actor_id = moved.get(r.actor_id, r.actor_id)
        kind, names = known.get(actor_id, ("", set()))
        if kind == r.kind and keys[r.row] in names:
            out[r.row] = actor_id
    return out


def _seated(
    names: list[tuple[int, str]],
    r: ImportRow,
    bodies: dict[str, int],
    parties: dict[str, int],
    seats: dict[int, list[tuple[int, int | None, Any, Any]]],
) -> list[tuple[int, str]]:
    """Of several actors a person's row names, those holding the row's seat (its body, and its
    party if given) on the signing day: one of them is the row's actor, found by `seat`."""
    day = r.signed_on
    body = bodies.get(r.body or "")
    party = parties.get(r.party) if r.party else None
    out = []
    for actor_id, _method in names:
        for seat_body, seat_party, start, end in seats.get(actor_id, []):
            if seat_body != body or (party is not None and seat_party != party):
                continue
            if day is not None and start <= day and (end is None or end >= day):
                out.append((actor_id, "seat"))
                break
    return out


def _split_fuzzy(
    resolver: Resolver, r: ImportRow, key: str, fuzzy: list[Candidate], options: ImportOptions
) -> tuple[list[Candidate], list[Candidate], list[Candidate]]:
    """A row's fuzzy candidates as: those that may match (at the threshold, nothing telling them
    apart), those at the threshold that a distinguishing word tells apart (a country, a number,
    a chapter: never matched, asked about), and the others (possible matches only)."""
    strong, told_apart, passed = [], [], []
    for c in fuzzy:
        other, country = resolver.scanned(r.kind, c.id)
        if (
            r.kind == "organisation" and r.country and country and country != r.country
        ) or c.score * 100 < options.threshold:
            passed.append(c)
        elif differ_by_distinguishing(key, other, r.kind):
            told_apart.append(c)
        else:
            strong.append(c)
    return strong, told_apart[:MAX_CANDIDATES], passed


def _score_of(method: str | None, target: int, fuzzy: list[Candidate]) -> float:
    if method in ("fuzzy", "seat"):
        return next((c.score for c in fuzzy if c.id == target), 1.0)
    return 1.0


def _variant_matches(resolver: Resolver, outcomes: list[_Outcome], new_ids: set[int], limit: int) -> None:
    """Rows created as new (the first `limit`) get, as possible matches, the existing actors
    whose name is theirs once short forms and spellings are made one (`variant_key`: "Sir Ed
    Davey", "Amnesty Intl"), scored by the fuzzy scorer; and every row whose name mixes scripts
    a warning."""
    for o in outcomes:
        if (
            o.status != "error"
            and not o.row.name.isascii()
            and any(is_mixed_script(w) for w in o.row.name.split())
        ):
            o.warnings.append("name: mixes scripts (its Latin look-alikes were read as Latin)")
    created = [o for o in outcomes if o.status == "created"][:limit]
    wanted: dict[str, dict[str, list[_Outcome]]] = {}
    for o in created:
        wanted.setdefault(o.row.kind, {}).setdefault(variant_key(o.row.name, o.row.kind), []).append(o)
    hits: dict[int, list[int]] = {}
    for kind, by_variant in wanted.items():
        for variant, ids in resolver.by_variants(kind, by_variant).items():
            for o in by_variant.get(variant, []):
                hits[o.row.row] = [i for i in ids if i not in new_ids]
    facts = resolver.facts_of(i for ids in hits.values() for i in ids)
    for o in created:
        known = {c.id for c in o.possible}
        key = match_name(o.row.name)
        for actor_id in hits.get(o.row.row, []):
            if actor_id not in known and actor_id in facts:
                score = round(fuzz.token_sort_ratio(key, facts[actor_id][0]) / 100, 4)
                o.possible.append(Candidate(actor_id, "", score))
        o.possible.sort(key=lambda c: (-c.score, c.id))


def _close_matches(
    session: Session, outcomes: list[_Outcome], keys: dict[int, str], options: ImportOptions
) -> None:
    """Rows created as new (the first `possible_rows`) get, as possible matches, the existing
    actors whose names score between `possible_threshold` and `threshold` ("Human Rights Watch
    (HRW)"), searched after the matching (below the threshold the q-gram filter skips little,
    so it is kept off the path that decides the rows)."""
    created = [o for o in outcomes if o.status == "created"][: options.possible_rows]
    if not created or options.possible_threshold >= options.threshold:
        return
    new_ids = {o.new.id for o in outcomes if o.new and o.new.id}
    near = Resolver(session, scorer=options.scorer, threshold=options.possible_threshold)
    for kind in sorted({o.row.kind for o in created}):
        found = near.fuzzy_many(kind, (keys[o.row.row] for o in created if o.row.kind == kind))
        for o in created:
            if o.row.kind != kind:
                continue
            known = {c.id for c in o.possible}
            extra = [c for c in found.get(keys[o.row.row], []) if c.id not in known and c.id not in new_ids]
            o.possible = sorted([*o.possible, *extra], key=lambda c: (-c.score, c.id))


def _fuzzy(resolver: Resolver, rows: list[ImportRow], keys: dict[int, str]) -> dict[int, list[Candidate]]:
    """The fuzzy candidates of each of `rows` that has any (rows of the same name share them)."""
    out: dict[int, list[Candidate]] = {}
    for kind in sorted({r.kind for r in rows}):
        found = resolver.fuzzy_many(kind, (keys[r.row] for r in rows if r.kind == kind))
        for r in rows:
            if r.kind == kind and keys[r.row] in found:
                out[r.row] = found[keys[r.row]]
    return out


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
    """Bulk insert: `COPY … FROM STDIN` on PostgreSQL, one `executemany` of the driver
    elsewhere, the values converted by the columns' own types as SQLAlchemy would (dates,
    timestamps). Python-side column defaults (created_at, …) are filled in once for all the
    rows. Every row has the keys of the first."""
    if not rows:
        return
    given = list(rows[0])
    pick = itemgetter(*given)
    tuples = [pick(row) for row in rows] if len(given) > 1 else [(pick(row),) for row in rows]
    _Insert(session.get_bind().dialect, table_name, given, tuples).run(session.connection())


class _Insert:
    """One bulk insert into a table: the rows made ready here (values converted, or the COPY
    text formatted) and sent by `run`, maybe in another thread. `columns` are the given ones;
    Python-side defaults of the others (created_at, …) are added, the same for every row."""

    def __init__(
        self, dialect: Dialect, table_name: str, columns: list[str], rows: list[tuple[Any, ...]]
    ) -> None:
        table = Base.metadata.tables[table_name]
        defaults: dict[str, Any] = {}
        for column in table.columns:
            default = column.default
            if column.name in columns or default is None:
                continue
            if getattr(default, "is_callable", False):
                defaults[column.name] = default.arg(None)  # type: ignore[attr-defined]
            elif getattr(default, "is_scalar", False):
                defaults[column.name] = default.arg  # type: ignore[attr-defined]
        names = columns + list(defaults)
        tail = tuple(defaults.values())
        self.copy: str | None = None
        self.rows: list[tuple[Any, ...]] = []
        self.postgres = dialect.name == "postgresql"
        if self.postgres:
            self.sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
            self.rows = [row + tail for row in rows]
            self.copy = copy_text(self.rows)
            return
        quote = dialect.identifier_preparer.quote
        self.sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
        tail = tuple(
            value if process is None else process(value)
            for value, process in zip(tail, processors[len(columns) :], strict=True)
        )
        convert = [
            (i, process) for i, process in enumerate(processors[: len(columns)]) if process is not None
        ]
        if convert and rows:
            # A column at a time, each distinct value once (a few days, many rows).
            values = list(zip(*rows, strict=True))
            for i, process in convert:
                cells = values[i]
                try:
                    converted = {v: process(v) for v in set(cells)}
                except TypeError:  # unhashable values (JSON): one by one
                    values[i] = tuple(map(process, cells))
                else:
                    values[i] = tuple(map(converted.__getitem__, cells))
            rows = list(zip(*values, strict=True))
        self.rows = [row + tail for row in rows]

    def run(self, conn: Connection) -> None:
        if not self.rows:
            return
        if not self.postgres:
            conn.exec_driver_sql(self.sql, self.rows)
            return
        raw = conn.connection.driver_connection
        assert raw is not None
        try:
            with raw.cursor() as cursor, cursor.copy(self.sql) as copy:
                if self.copy is not None:
                    copy.write(self.copy)
                else:
                    for values in self.rows:
                        copy.write_row(values)
        except conn.dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy would raise it (IntegrityError, DataError, …), for the app's handlers.
            raise DBAPIError.instance(self.sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = ("\\", "\t", "\n", "\r")


def copy_text(rows: list[tuple[Any, ...]]) -> str | None:
    """`rows` in the text format of COPY, made a column at a time by str's own C loops (psycopg
    dumps value by value: 0.85 s for 100,000 actors and their signatures, this 0.1 s); None when
    a column holds something else than str, int, date, datetime or None (then psycopg formats).
    Backslash, tab, newline and carriage return are escaped; None is `\\N`."""
    if not rows:
        return ""
    columns: list[list[str]] = []
    for column in zip(*rows, strict=True):
        kinds = set(map(type, column))
        nulls = type(None) in kinds
        kinds.discard(type(None))
        if not kinds:
            columns.append(["\\N"] * len(column))
            continue
        if len(kinds) > 1:
            return None
        (kind,) = kinds
        present = [v for v in column if v is not None] if nulls else column
        if kind is str:
            if any(c in "".join(present) for c in _COPY_SPECIAL):
                present = [v.translate(_COPY_ESCAPES) for v in present]
            text = list(present)
        elif kind is int:
            text = list(map(str, present))
        elif kind is date or kind is datetime:  # (a few distinct days and timestamps)
            formatted = {v: v.isoformat() for v in set(present)}
            text = list(map(formatted.__getitem__, present))
        else:
            return None
        if nulls:
            filled = iter(text)
            text = ["\\N" if v is None else next(filled) for v in column]
        columns.append(text)
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def insert_actors(session: Session, values: list[dict[str, Any]]) -> list[int]:
    """Insert actors in bulk; their new ids, in order.

    The ids are taken first (`reserve_actor_ids`), so that the rows can go in without
    RETURNING: on PostgreSQL from the table's sequence (`nextval` over `generate_series` in one
    statement, then COPY); on SQLite above every id and merged id (`first_free_actor_id`), safe because a SQLite write transaction
    holds the database's only write lock from its first statement (`BEGIN IMMEDIATE`)."""
    if not values:
        return []
    ids = reserve_actor_ids(session, len(values))
    insert_rows(session, "actors", [{"id": i, **v} for v, i in zip(values, ids, strict=True)])
    return ids


def reserve_actor_ids(session: Session, count: int) -> list[int]:
    """`count` ids for new actors (see `insert_actors`); an id taken and not used is a gap."""
    if count <= 0:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # The sequence is looked up once: `nextval(pg_get_serial_sequence(…))` looks it up per
        # row (0.28 s for 100,000 ids instead of 0.04 s); the ids come back as one array.
        sequence = conn.scalar(text("SELECT CAST(pg_get_serial_sequence('actors', 'id') AS regclass)::oid"))
        return list(
            conn.scalar(
                text("SELECT array_agg(nextval(CAST(:seq AS oid))) FROM generate_series(1, :n)"),
                {"seq": sequence, "n": count},
            )
        )
    start = first_free_actor_id(session)
    return list(range(start, start + count))


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
    if o.method is not None:
        out["method"] = o.method
        out["score"] = o.score if o.score is not None else 1.0
    if o.possible:
        out["possible_matches"] = [
            {"id": c.id, "name": names.get(c.id, ""), "score": c.score} for c in o.possible[:MAX_CANDIDATES]
        ]
    if o.warnings:
        out["warning"] = "; ".join(o.warnings)
    return out


class _QuickSwitches:
    """While an import's writer thread runs: the GIL changes hands every millisecond instead of
    every five. The writer waits on the database four times a chunk, and each time it had to
    wait up to the switch interval for the matching thread to let go of the GIL, the database
    idle meanwhile (measured: the decide-and-write phase of 100,000 rows, 2.2-2.4 s instead of
    2.5-2.9 s). Process-wide, so counted: the interval is restored when the last import using
    it ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.saved = 0.0

    def __enter__(self) -> None:
        with self.lock:
            if self.users == 0:
                self.saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self.saved, 0.001))
            self.users += 1

    def __exit__(self, *_exc: object) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                sys.setswitchinterval(self.saved)


_QUICK_SWITCHES = _QuickSwitches()


class _Writer:
    """Writes an import's outcomes, a chunk at a time, in the import's transaction: new actors
    (their ids taken beforehand), their identifiers and seats, and the signatures. `put` makes
    a chunk's rows ready (the COPY text formatted) in the caller's thread; with `background`, a
    thread of its own sends them while the caller decides the next chunk, so that the database
    inserts and checks one chunk while Python matches the next (the sending thread only waits
    on the database, and hardly contends for the GIL). The caller does not use the session
    until `finish`. `count` then adds the signatures to the rollups: those of new actors as
    counted here (what they count under is on their rows), those of existing actors in SQL."""

    def __init__(
        self,
        session: Session,
        letter: Letter,
        bodies: dict[str, int],
        parties: dict[str, int],
        *,
        background: bool,
        new_from: int | None,
    ) -> None:
        self.session = session
        self.conn = session.connection()
        self.dialect = self.conn.dialect
        self.letter = letter
        self.bodies = bodies
        self.parties = parties
        self.postgres = self.dialect.name == "postgresql"
        # SQLite: the transaction holds the database's only write lock, so the signatures with
        # a higher id than any before are this import's.
        self.before = 0 if self.postgres else session.scalar(select(func.max(Signature.id))) or 0
        # (and on SQLite the new actors' ids are the reserved ones, from `new_from` up)
        self.new_from = new_from
        self.matched: list[int] = []  # existing actors that sign
        self.seated = False  # whether seats were written (they count in their bodies' seats)
        # The new actors' signatures as rollup rows: (letter, day, combination) -> [new, withdrawn].
        self.moves: dict[tuple[Any, ...], list[int]] = {}
        self.error: BaseException | None = None
        self.queue: queue.Queue[list[_Insert] | None] = queue.Queue(maxsize=2)
        self.thread: threading.Thread | None = None
        if background:
            self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
            self.thread.start()

    def put(self, outcomes: list[_Outcome]) -> None:
        inserts = self._inserts(outcomes)
        if self.thread is None:
            for insert in inserts:
                insert.run(self.conn)
            return
        if self.error is not None:
            raise self.error
        self.queue.put(inserts)

    def finish(self) -> None:
        """Wait for the writes; raise what failed."""
        self.close()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None

    def _run(self) -> None:
        while (inserts := self.queue.get()) is not None:
            if self.error is None:
                try:
                    for insert in inserts:
                        insert.run(self.conn)
                except BaseException as exc:  # handed to the caller; later chunks are dropped
                    self.error = exc

    def _inserts(self, outcomes: list[_Outcome]) -> list[_Insert]:
        new = [o.new for o in outcomes if o.status == "created" and o.new is not None]
        out = []
        if new:
            actors = [
                (
                    n.id,
                    n.row.kind,
                    n.row.name,
                    n.row.sort_name,
                    n.row.country,
                    n.row.org_type,
                    n.key,
                    f"{n.folded} {search_text(n.row.sort_name)}" if n.row.sort_name else n.folded,
                )
                for n in new
            ]
            out.append(_Insert(self.dialect, "actors", _ACTOR_COLUMNS, actors))
            identifiers = [(n.id, s, v) for n in new for s, v in n.row.identifiers]
            if identifiers:
                out.append(_Insert(self.dialect, "identifiers", ["actor_id", "scheme", "value"], identifiers))
            seats = [
                (
                    n.id,
                    self.bodies[n.row.body],
                    self.parties[n.row.party] if n.row.party else None,
                    n.row.signed_on,
                    None,
                )
                for n in new
                if n.row.body
            ]
            if seats:
                out.append(_Insert(self.dialect, "memberships", _SEAT_COLUMNS, seats))
                self.seated = True
        signatures = []
        letter_id, moves = self.letter.id, self.moves
        for o in outcomes:
            row = o.row
            actor_id: int | None
            if o.status == "matched":
                actor_id = o.actor_id
                assert actor_id is not None
                self.matched.append(actor_id)
            elif o.status == "created" and o.new is not None:
                actor_id = o.new.id
                # As `rollups` counts it: kind, country, org type, and the seat written above
                # (valid from the signing day on), on the day signed and the day withdrawn.
                combo = (
                    row.kind,
                    row.country or "",
                    row.org_type or "",
                    self.bodies[row.body] if row.body else 0,
                    self.parties[row.party] if row.body and row.party else 0,
                )
                if (made := moves.get(key := (letter_id, row.signed_on, *combo))) is None:
                    moves[key] = [1, 0]
                else:
                    made[0] += 1
                if row.withdrawn_on is not None:
                    if (gone := moves.get(key := (letter_id, row.withdrawn_on, *combo))) is None:
                        moves[key] = [0, 1]
                    else:
                        gone[1] += 1
            else:
                continue
            signatures.append(
                (
                    self.letter.id,
                    actor_id,
                    row.signed_on,
                    row.capacity,
                    row.affiliation,
                    row.position,
                    row.source,
                    row.status,
                    row.withdrawn_on,
                )
            )
        if signatures:
            out.append(_Insert(self.dialect, "signatures", _SIGNATURE_COLUMNS, signatures))
        return out

    def count(self) -> None:
        """The signatures written count in the rollups: the new actors' as counted (one
        statement, a row per combination and day), the existing actors' read back in SQL.
        PostgreSQL: this letter's signatures by those actors (each actor signs a letter once),
        the ids as one array parameter."""
        rollups.add_counted(self.session, self.moves)
        pairs.add_sizes(self.session, self.moves)  # (a new actor signed no other letter)
        if not self.matched:
            return
        if not self.postgres:
            written = and_(Signature.letter_id == self.letter.id, Signature.id > self.before)
            if self.new_from is not None:
                written = and_(written, Signature.actor_id < self.new_from)
            rollups.shift(self.session, written, 1)
            return
        written = Signature.actor_id == any_(bindparam("actor_ids", self.matched, type_=ARRAY(Integer)))
        # Memory for the statement's sort of every signature read back to stay off disk (0.39 s
        # instead of 0.44 s for 100,000), for this statement only.
        work_mem = self.session.scalar(text("SELECT current_setting('work_mem')"))
        self.session.execute(text("SELECT set_config('work_mem', '64MB', true)"))
        rollups.shift(self.session, and_(Signature.letter_id == self.letter.id, written), 1)
        self.session.execute(text("SELECT set_config('work_mem', :value, true)"), {"value": work_mem})


_ACTOR_COLUMNS = ["id", "kind", "name", "sort_name", "country", "org_type", "match_name", "search_text"]
_SEAT_COLUMNS = ["actor_id", "body_id", "party_id", "start_date", "end_date"]
_SIGNATURE_COLUMNS = [
    "letter_id",
    "actor_id",
    "signed_on",
    "capacity",
    "affiliation",
    "position",
    "source",
    "status",
    "withdrawn_on",
]


def import_for_writer(
    writer: Writer,
    slug: str,
    raw_rows: Iterable[RawRow],
    options: ImportOptions,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    return import_signatures(writer.session, writer.key_name, slug, raw_rows, options, progress=progress)
