"""The import use case: rows -> matched or new actors -> signatures of one letter.

One transaction, in phases: lock the letter row (imports of one letter are serialised: `SELECT
… FOR UPDATE` on PostgreSQL; a SQLite write transaction holds the database's write lock from its
`BEGIN IMMEDIATE`), check every row, resolve them in bulk (`matching.Resolver`), and only if no
row is an error, write with bulk statements (`insert_rows`: COPY on PostgreSQL, executemany on
SQLite), chunk by chunk (`WRITE_CHUNK` rows: new actors, their identifiers and seats, then
the signatures). The rollups are updated once for the whole import. The unique constraints
(`signatures(letter_id, actor_id)`, `identifiers(scheme, value)`) stand behind the lock. A dry
run does the same reading and writes nothing (new actors have `id: null`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from confusable_homoglyphs.confusables import is_mixed_script
from rapidfuzz import fuzz
from sqlalchemy import Integer, and_, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app import pairs, rollups
from app.actors.identity import name_lock, resolve_ids
from app.auth import Writer
from app.changes import record_change
from app.errors import AppError, NotFound
from app.imports import collector
from app.imports.inserts import BulkInsert, reserve_actor_ids
from app.imports.matching import MAX_CANDIDATES, Candidate, Resolver, chunks, conflicts, decide_fuzzy
from app.imports.parsing import ImportRow, RawRow, check_row
from app.models import Actor, ActorAlias, Body, Letter, Membership, Party, Signature
from app.names import differ_by_distinguishing, variant_key, variant_key_of_match
from app.seats import held_on
from app.text import fold, match_folded, match_name, search_text

log = logging.getLogger("undersigned.imports")

# Rows written per bulk statement.
WRITE_CHUNK = 5000
ANALYZE_AFTER = 10_000  # rows added to a table
# Matched actors from which their signatures are read back with hash joins (`_Writer.count`).
HASH_JOIN_AFTER = 20_000
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
    # Take `signed_on` and `withdrawn_on` from the rows. Off by default: an export of another
    # letter read back would otherwise copy that letter's dates and withdrawals into this one.
    keep_dates: bool = False


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
    with collector.held_off():
        run = _Import(session, key_name, options, progress)
        run.check(slug, raw_rows)
        run.resolve()
        run.decide()
        run.write()
        return run.report()


@dataclass
class _Resolved:
    """What the `resolve` phase read for the rows without errors, in bulk: the actors their
    identifiers, `actor_id`s, exact names and aliases name, fuzzy candidates, what those
    candidates hold (identifiers, seats) and who has signed the letter already."""

    resolver: Resolver
    by_ident: dict[tuple[str, str], int]
    named: dict[int, list[tuple[int, str]]]
    held: dict[int, dict[str, str]]
    by_actor_id: dict[int, int]
    conflicted: set[int]
    fuzzy_of: dict[int, list[Candidate]]
    fuzzy_held: dict[int, dict[str, str]]
    seats: dict[int, list[tuple[int, int | None, Any, Any]]]
    signed: dict[int, date | None]


class _Import:
    """One import, in four phases called in order: `check` (every row on its own, then against
    the letter and the known bodies and parties), `resolve` (the actors the rows may name, read
    in bulk), `decide` (each row's outcome, in file order: matched, created, duplicate,
    ambiguous or error) and `write` (only when no row is an error and this is no dry run); then
    `report`."""

    def __init__(
        self, session: Session, key_name: str, options: ImportOptions, progress: Progress | None
    ) -> None:
        self.session = session
        self.key_name = key_name
        self.options = options
        self.progress = progress
        self.clock = _Clock()
        self.outcomes: list[_Outcome] = []
        self.created: list[_NewActor] = []
        self.reserved: list[int] = []  # ids taken for new actors (when the import writes)
        self.writer: _Writer | None = None

    def _report_progress(self, step: str, done: int) -> None:
        if self.progress:
            self.progress(step, done, self.total)

    # --- check ------------------------------------------------------------------------------------

    def check(self, slug: str, raw_rows: Iterable[RawRow]) -> None:
        """Each row checked and its name normalised; the letter locked; unknown bodies and
        parties and impossible dates made row errors."""
        session, options = self.session, self.options
        keep = options.keep_dates
        rows = [check_row(raw, default_kind=options.default_kind, keep_dates=keep) for raw in raw_rows]
        self.rows = rows
        self.total = len(rows)
        # (the folded name is the start of a new actor's search_text too)
        self.folded = {r.row: fold(r.name) for r in rows if not r.errors}
        self.keys = {row: match_folded(name) for row, name in self.folded.items()}
        if not options.dry_run:
            # Before the letter's lock, in the order every writer of a new actor takes them.
            name_lock(session, {(r.kind, self.keys[r.row]) for r in rows if r.row in self.keys})
        self.letter = lock_letter(session, slug)
        default_day = self.default_day = self.letter.published_on or date.today()
        self._report_progress("checking", self.total)
        self.clock.lap("read")
        self.bodies = _slug_ids(session, Body, {r.body for r in rows if r.body})
        self.parties = _slug_ids(session, Party, {r.party for r in rows if r.party})
        for r in rows:
            if r.body and r.body not in self.bodies:
                r.errors.append(f"body: unknown body '{r.body}'")
            if r.party and r.party not in self.parties:
                r.errors.append(f"party: unknown party '{r.party}'")
            r.signed_on = r.signed_on or default_day
            if r.withdrawn_on and r.withdrawn_on < r.signed_on:
                r.errors.append("withdrawn_on: before signed_on")
        self.good = [r for r in rows if not r.errors]

    # --- resolve ----------------------------------------------------------------------------------

    def resolve(self) -> None:
        """The actors the good rows may name, read in bulk (see `_Resolved`)."""
        session, options, good, keys = self.session, self.options, self.good, self.keys
        resolver = Resolver(session, scorer=options.scorer, threshold=options.threshold)
        by_ident = resolver.by_identifiers(p for r in good for p in r.identifiers)
        self.clock.lap("normalise")
        exact: dict[str, dict[str, list[int]]] = {}
        for kind in {r.kind for r in good}:
            exact[kind] = resolver.by_names_bulk(kind, {keys[r.row] for r in good if r.kind == kind})
            aliased = resolver.by_aliases(
                kind, {keys[r.row] for r in good if r.kind == kind and not exact[kind].get(keys[r.row])}
            )
            for key, holders in aliased.items():  # (a name no actor has: an alias names them)
                exact[kind][key] = [-i for i in holders]  # negative: found by an alias
        self.clock.lap("exact names")
        named = _named(resolver, good, keys, exact)
        # What the exactly named actors hold matters only to rows that give identifiers (`conflicts`).
        held = resolver.identifiers_of(i for r in good if r.identifiers for i, _m in named.get(r.row, ()))
        by_actor_id = _by_actor_id(session, resolver, good, keys)
        # Rows whose identifiers name two actors are errors (found here, so that whether anything
        # will be written is known before the first decision).
        conflicted = {
            r.row
            for r in good
            if r.identifiers and len({by_ident[p] for p in r.identifiers if p in by_ident}) > 1
        }
        # Fuzzy candidates (against existing actors only) for the rows that neither an identifier
        # nor an exact name resolves; what those candidates hold, and their seats, for the rows
        # that give identifiers or a seat.
        unresolved = [
            r
            for r in good
            if r.row not in by_actor_id
            and not (r.identifiers and any(p in by_ident for p in r.identifiers))
            and not named.get(r.row)
        ]
        for kind in sorted({r.kind for r in unresolved}):
            resolver.prepare_fuzzy(kind, {keys[r.row] for r in unresolved if r.kind == kind})
        fuzzy_of = _fuzzy(resolver, unresolved, keys)
        fuzzy_held = resolver.identifiers_of(
            c.id for r in unresolved if r.identifiers for c in fuzzy_of.get(r.row, ())
        )
        seats = resolver.seats_of(
            [i for r in good if r.body for i, _m in named.get(r.row, ())]
            + [c.id for r in unresolved if r.body for c in fuzzy_of.get(r.row, ())]
        )
        signed = dict(
            session.execute(
                select(Signature.actor_id, Signature.withdrawn_on).where(
                    Signature.letter_id == self.letter.id
                )
            ).all()
        )
        self.resolved = _Resolved(
            resolver, by_ident, named, held, by_actor_id, conflicted, fuzzy_of, fuzzy_held, seats, signed
        )
        self.writing = not options.dry_run and not conflicted and len(good) == self.total
        self.clock.lap("match")

    # --- decide -----------------------------------------------------------------------------------

    def decide(self) -> None:
        """Each row's outcome, in file order (a row can be a duplicate of an earlier one). When
        the import will write, the new actors' ids are taken first, for as many rows as could
        make one (those no identifier, actor_id or single exact name settles)."""
        res, good = self.resolved, self.good
        ids: Iterator[int] | None = None
        if self.writing:
            creatable = sum(
                1
                for r in good
                if r.row not in res.by_actor_id
                and not (r.identifiers and any(p in res.by_ident for p in r.identifiers))
                and (len(res.named.get(r.row, ())) != 1 or bool(r.identifiers))
            )
            self.reserved = reserve_actor_ids(self.session, creatable)
            ids = iter(self.reserved)
        seen: dict[int, int] = {}  # existing actor id -> first row naming it
        new_by_ident: dict[tuple[str, str], _NewActor] = {}
        new_by_name: dict[tuple[str, str], _NewActor] = {}
        for r in self.rows:
            outcome = self._decide_row(r, seen, new_by_ident, new_by_name, ids)
            self.outcomes.append(outcome)
            if len(self.outcomes) % WRITE_CHUNK == 0:
                self._report_progress("matching", len(self.outcomes))
        self._report_progress("matching", len(self.outcomes))
        self.clock.lap("decide")

    def _decide_row(
        self,
        r: ImportRow,
        seen: dict[int, int],
        new_by_ident: dict[tuple[str, str], _NewActor],
        new_by_name: dict[tuple[str, str], _NewActor],
        ids: Iterator[int] | None,
    ) -> _Outcome:
        if r.errors:
            return _Outcome(r, "error")
        res, options = self.resolved, self.options
        bodies, parties = self.bodies, self.parties
        key = self.keys[r.row]
        idents = r.identifiers  # (without any, no actor can conflict with the row)
        target: int | None = res.by_actor_id.get(r.row)
        pending: _NewActor | None = None
        if idents:
            ident_ids = {res.by_ident[p] for p in idents if p in res.by_ident}
            if len(ident_ids) > 1:
                r.errors.append(
                    f"identifiers: they belong to different actors ({', '.join(map(str, sorted(ident_ids)))})"
                )
                return _Outcome(r, "error")
            if ident_ids:
                target = ident_ids.pop()
            pending = next((new_by_ident[p] for p in idents if p in new_by_ident), None)
        candidates: list[Candidate] = []
        passed: list[Candidate] = []
        method = "identifier" if target is not None else None
        if r.row in res.by_actor_id:
            method = "actor_id"
        if target is None and pending is None:
            names = res.named.get(r.row, [])
            if idents:
                names = [(i, m) for i, m in names if not conflicts(idents, res.held.get(i, {}))]
            if len(names) > 1 and r.body:
                names = _seated(names, r, bodies, parties, res.seats) or names
            if len(names) == 1:
                target, method = names[0]
            elif len(names) > 1:
                candidates = [Candidate(i, "", 1.0) for i, _m in names]  # named in the report
            else:
                pending = new_by_name.get((r.kind, key))
                if pending is not None and idents and conflicts(idents, dict(pending.row.identifiers)):
                    pending = None
                if pending is None and r.row in res.fuzzy_of:
                    fuzzy = res.fuzzy_of[r.row]
                    if idents:
                        fuzzy = [c for c in fuzzy if not conflicts(idents, res.fuzzy_held.get(c.id, {}))]
                    strong, told_apart, passed = _split_fuzzy(res.resolver, r, key, fuzzy, options)
                    if len(strong) > 1 and r.body:
                        seated = _seated([(c.id, "seat") for c in strong], r, bodies, parties, res.seats)
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
            outcome.score = _score_of(method, target, res.fuzzy_of.get(r.row, []))
            if target in res.signed:
                outcome.status = "duplicate"
                withdrawn = res.signed[target]
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
            return outcome
        if pending is not None:
            return _Outcome(
                r, "duplicate", new=pending, warnings=[f"same actor as row {pending.row.row}"], method="row"
            )
        if candidates and options.on_ambiguous != "create":
            return _Outcome(r, "ambiguous", candidates=candidates, possible=passed)
        new = _NewActor(r, key, self.folded[r.row], next(ids) if ids is not None else None)
        self.created.append(new)
        for p in r.identifiers:
            new_by_ident.setdefault(p, new)
        new_by_name.setdefault((r.kind, key), new)
        outcome = _Outcome(r, "created", new=new, possible=candidates + passed)
        if candidates:
            outcome.warnings.append("ambiguous; created a new actor (on_ambiguous=create)")
        if r.party and not r.body:
            outcome.warnings.append("party: no membership recorded without a body")
        return outcome

    # --- write ------------------------------------------------------------------------------------

    def write(self) -> None:
        """When the import writes: the outcomes chunk by chunk (`WRITE_CHUNK` rows: new
        actors, their identifiers and seats, then the signatures); then, as for a dry run, the
        possible matches and warnings of every row; then the rollups, statistics and the change
        record."""
        session, outcomes = self.session, self.outcomes
        if self.writing:
            self.writer = _Writer(
                session,
                self.letter,
                self.bodies,
                self.parties,
                new_from=self.reserved[0] if self.reserved else None,
            )
            with generic_plans(session):
                for part in chunks(outcomes, WRITE_CHUNK):
                    self.writer.put(part)
            self.clock.lap("write")
        res = self.resolved
        _variant_matches(
            res.resolver,
            outcomes,
            {o.new.id for o in outcomes if o.new and o.new.id},
            self.options.possible_rows,
        )
        _close_matches(res.resolver, outcomes, self.keys, self.options)
        res.resolver.fetch_names(
            [o.actor_id for o in outcomes if o.actor_id is not None]
            + [c.id for o in outcomes for c in (*o.candidates, *o.possible)]
        )
        _seat_warnings(session, outcomes, self.bodies, self.parties)
        self.clock.lap("names and warnings")
        self.summary = dict.fromkeys(("created", "matched", "duplicate", "ambiguous", "error"), 0)
        for o in outcomes:
            self.summary[o.status] += 1
        assert (self.summary["error"] > 0) != (len(self.good) == self.total and not res.conflicted)
        writer = self.writer
        if writer is None:
            return
        self._report_progress("writing", self.total)
        writer.count()
        _analyze(
            session,
            {
                "actors": len(self.created),
                "identifiers": sum(len(n.row.identifiers) for n in self.created),
                "signatures": self.summary["created"] + self.summary["matched"],
            },
        )
        rollups.touch_letter(session, self.letter.id)
        if writer.seated:
            rollups.touch_all(session)
        record_change(
            session,
            self.key_name,
            "import",
            "letter",
            self.letter.slug,
            after={"summary": {"rows": self.total, **self.summary}, "dry_run": False},
        )
        session.flush()
        self.clock.lap("count")

    # --- report -----------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The report (SPEC §4); raises `ImportFailed` with it when a row is an error."""
        options, summary, total = self.options, self.summary, self.total
        listed = dict.fromkeys(summary, 0)
        reported: list[dict[str, Any]] = []
        for o in self.outcomes:
            if options.rows == "all" or o.warnings or o.status not in ("created", "matched"):
                listed[o.status] += 1
                if listed[o.status] <= options.rows_per_status:
                    reported.append(_row_report(o, self.resolved.resolver.names))
        report: dict[str, Any] = {
            "dry_run": options.dry_run,
            "summary": {"rows": total, **summary},
            "rows": reported,
        }
        if dated := sum(1 for r in self.rows if r.dates_ignored):
            report["warnings"] = [
                f"{dated} of {total} rows give signed_on or withdrawn_on, which were ignored: their "
                f"signatures are dated {self.default_day.isoformat()} (the letter's default) and none is "
                "withdrawn. To take the dates from the file, import with keep_dates=true "
                "(undersigned import-signatures --keep-dates)."
            ]
        left_out = {
            status: n - options.rows_per_status for status, n in listed.items() if n > options.rows_per_status
        }
        if left_out:
            report["rows_left_out"] = left_out
        self.clock.lap("report")
        log.debug("import into %s, %d rows: %s", self.letter.slug, total, self.clock)
        if summary["error"] > 0:
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
    resolver: Resolver, outcomes: list[_Outcome], keys: dict[int, str], options: ImportOptions
) -> None:
    """Rows created as new (the first `possible_rows`) get, as possible matches, the existing
    actors whose names score between `possible_threshold` and `threshold` ("Human Rights Watch
    (HRW)"), searched after the matching (below the threshold the q-gram filter skips little,
    so it is kept off the path that decides the rows)."""
    created = [o for o in outcomes if o.status == "created"][: options.possible_rows]
    if not created or options.possible_threshold >= options.threshold:
        return
    new_ids = {o.new.id for o in outcomes if o.new and o.new.id}
    near = resolver.with_threshold(options.possible_threshold)
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


def _row_report(o: _Outcome, names: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"row": o.row.row, "status": o.status}
    if o.row.line is not None and (o.warnings or o.status not in ("created", "matched")):
        out["line"] = o.row.line  # (the rows to look at in the file: those `rows=flagged` keeps)
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


class _Writer:
    """Writes an import's outcomes, a chunk at a time, in the import's transaction: new actors
    (their ids taken beforehand), their identifiers and seats, and the signatures. `count` then
    adds the signatures to the rollups: those of new actors as counted here (what they count
    under is on their rows), those of existing actors in SQL."""

    def __init__(
        self,
        session: Session,
        letter: Letter,
        bodies: dict[str, int],
        parties: dict[str, int],
        *,
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

    def put(self, outcomes: Sequence[_Outcome]) -> None:
        for insert in self._inserts(outcomes):
            insert.run(self.conn)

    def _inserts(self, outcomes: Sequence[_Outcome]) -> list[BulkInsert]:
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
                    variant_key_of_match(n.key, n.row.kind),
                    f"{n.folded} {search_text(n.row.sort_name)}" if n.row.sort_name else n.folded,
                )
                for n in new
            ]
            out.append(BulkInsert(self.dialect, "actors", _ACTOR_COLUMNS, actors, computed=_ACTOR_COMPUTED))
            identifiers = [(n.id, s, v) for n in new for s, v in n.row.identifiers]
            if identifiers:
                out.append(
                    BulkInsert(self.dialect, "identifiers", ["actor_id", "scheme", "value"], identifiers)
                )
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
                out.append(BulkInsert(self.dialect, "memberships", _SEAT_COLUMNS, seats))
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
            out.append(BulkInsert(self.dialect, "signatures", _SIGNATURE_COLUMNS, signatures))
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
        # For these statements only: memory for the sort of every signature read back to stay
        # off disk, and, for many matched actors, hash joins. The pair counts read every other
        # signature of each matched actor; the planner, which cannot tell how many of the
        # letter's rows the array selects, looks them up actor by actor through the actor index
        # (about a dozen scattered heap pages each), where one sequential read of the
        # signatures hashed against the matched ones costs less once they are many.
        settings = {"work_mem": "64MB"}
        if len(self.matched) >= HASH_JOIN_AFTER:
            settings["enable_nestloop"] = "off"
        previous = {name: self.session.scalar(text(f"SELECT current_setting('{name}')")) for name in settings}
        for name, value in settings.items():
            self.session.execute(
                text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
            )
        rollups.shift(self.session, and_(Signature.letter_id == self.letter.id, written), 1)
        for name, value in previous.items():
            self.session.execute(
                text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
            )


_ACTOR_COLUMNS = [
    "id",
    "kind",
    "name",
    "sort_name",
    "country",
    "org_type",
    "match_name",
    "variant_key",
    "search_text",
]
# PostgreSQL: a new actor's search document, as its insert trigger would make it (migration
# 0024: a new actor has no aliases yet), computed for a chunk of actors in one statement.
_ACTOR_COMPUTED = {"search_vector": "actor_search_vector(name, sort_name, NULL)"}
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
