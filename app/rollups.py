"""Per-letter derived data kept in step with every write, in the write's own transaction:

- `letters.version`, bumped by every write that can change what a letter's reads show (its
  fields, its signatures, or the actors and memberships its signatures are counted under), and
  `registry_version`, bumped by the writes that change every letter's breakdowns without being
  theirs (seats, body and party names: `touch_all`): together the validator for ETags and the
  key of the rendered cache;
- `letter_rollups`, signatures made and withdrawn per letter, day and breakdown combination
  (kind, country, org type, and body and party of the seat held on the day of the signature:
  `app.seats`), so counts and timelines sum a few rows at any letter size.

Every change goes through `shift(where, ±1)`: it adds (or takes away) the contribution of the
signatures selected by `where`, computed in SQL from their current state — one INSERT … SELECT
… ON CONFLICT DO UPDATE. An edit is `retract` before and `apply` after (the `rewriting`
context); `rebuild` recomputes everything from the signatures. Nothing here reads signatures
into Python. A bulk writer that knows the contribution of what it writes without reading it
back (an import's new actors: their kind, country, org type and one seat are on its rows) gives
it counted instead (`add_counted`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    case,
    column,
    delete,
    func,
    literal,
    or_,
    select,
    table,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app import pairs
from app.db.engine import execute_together, insert_for
from app.live.notify import letters_changed, notifying
from app.models import Actor, Body, Letter, LetterRollup, Membership, Party, RegistryVersion, Signature
from app.models.base import utcnow
from app.seats import held_on, valid_on

COMBINATION = ("kind", "country", "org_type", "body_id", "party_id")
COLUMNS = ["letter_id", "day", *COMBINATION, "new", "withdrawn"]  # of a rollup row


def _moves(where: ColumnElement[bool], sign: int) -> Any:
    """The signatures selected by `where` as rollup deltas: +sign `new` on the day each was made
    and +sign `withdrawn` on the day it was withdrawn, grouped per letter, day and combination."""
    # Body and party of the seat held on the signing day (`app.seats`): at most one, so the
    # outer join keeps one row per signature.
    seat = aliased(Membership)
    base = (
        select(
            Signature.letter_id,
            Signature.signed_on,
            Signature.withdrawn_on,
            Actor.kind,
            func.coalesce(Actor.country, "").label("country"),
            func.coalesce(Actor.org_type, "").label("org_type"),
            func.coalesce(seat.body_id, 0).label("body_id"),
            func.coalesce(seat.party_id, 0).label("party_id"),
        )
        .join(Actor, Actor.id == Signature.actor_id)
        .outerjoin(seat, held_on(seat, Signature.actor_id, Signature.signed_on))
        .where(where)
        .cte("base")
    )
    combo = [base.c[name] for name in COMBINATION]
    made = select(
        base.c.letter_id,
        base.c.signed_on.label("day"),
        *combo,
        literal(sign).label("new"),
        literal(0).label("withdrawn"),
    )
    gone = select(
        base.c.letter_id,
        base.c.withdrawn_on.label("day"),
        *combo,
        literal(0).label("new"),
        literal(sign).label("withdrawn"),
    ).where(base.c.withdrawn_on.is_not(None))
    moves = union_all(made, gone).subquery("moves")
    keys = [moves.c.letter_id, moves.c.day, *(moves.c[name] for name in COMBINATION)]
    return select(*keys, func.sum(moves.c.new), func.sum(moves.c.withdrawn)).group_by(*keys)


def shift(session: Session, where: ColumnElement[bool], sign: int) -> None:
    """Add (`sign=1`) or take away (`sign=-1`) the rollup contribution of the signatures `where`
    selects, as they stand now — and their pair counts (`app.pairs.shift`, the same rule), so
    every writer that keeps the rollups through `shift`, `added`, `rewriting` (withdrawals,
    reinstatements, moves, merges) or a deletion wrapped in a `shift(where, -1)` keeps the pairs."""
    session.flush()
    session.execute(_adding(_insert(session).from_select(COLUMNS, _moves(where, sign))))
    pairs.shift(session, where, sign)


@lru_cache(maxsize=4)
def _signature_shift(dialect: str, sign: int) -> Any:
    """`shift` of the one signature `:signature_id`, built once per dialect and sign (building
    and keying `_moves` anew was a third of a signature write's time in Python)."""
    moves = _moves(Signature.id == bindparam("signature_id"), sign)
    insert = insert_for(dialect, LetterRollup)
    return _adding(insert.from_select(COLUMNS, moves))


def add_counted(session: Session, moves: dict[tuple[Any, ...], list[int]]) -> None:
    """Add contributions counted by the caller: `{(letter_id, day, kind, country, org_type,
    body_id, party_id): [new, withdrawn]}`, keyed as `_moves` groups them ('' and 0 for an
    absent value; a withdrawal counts on its own day)."""
    if not moves:
        return
    session.flush()
    rows = [dict(zip(COLUMNS, (*key, *counts), strict=True)) for key, counts in moves.items()]
    session.execute(_adding(_insert(session)), rows)


def _insert(session: Session) -> Any:
    return insert_for(session.get_bind().dialect.name, LetterRollup)


def _adding(stmt: Any) -> Any:
    """`stmt`, an INSERT of rollup rows, made to add to the rows already there."""
    return stmt.on_conflict_do_update(
        index_elements=["letter_id", "day", *COMBINATION],
        set_={
            "new": LetterRollup.new + stmt.excluded.new,
            "withdrawn": LetterRollup.withdrawn + stmt.excluded.withdrawn,
        },
    )


def touch(session: Session, where: ColumnElement[bool]) -> None:
    """Bump the version of every letter that has a signature `where` selects."""
    session.flush()
    letter_ids = select(Signature.letter_id).where(where).distinct().scalar_subquery()
    session.execute(
        update(Letter).where(Letter.id.in_(letter_ids)).values(version=Letter.version + 1),
        execution_options={"synchronize_session": "fetch"},
    )
    letters_changed(session)  # (live counts streams: any letter, on commit)


def signature_added(session: Session, signature_id: int, letter_id: int) -> None:
    """A new signature counted: the pairs it makes with its actor's other letters (`app.pairs`),
    its rollup row, and its letter's version bumped (`touch_letter`). Every writer of the letter
    waits for the rows these take until the transaction ends, so they are taken last, together:
    one round trip on PostgreSQL (`execute_together`)."""
    session.flush()
    dialect = session.get_bind().dialect.name
    touch = _TOUCH_LETTER_NOTIFYING if dialect == "postgresql" else _TOUCH_LETTER
    *_, touched = execute_together(
        session,
        [
            (pairs.signature_shift(dialect, 1), {"signature_id": signature_id}),
            (_signature_shift(dialect, 1), {"signature_id": signature_id}),
            (touch, {"letter_id": letter_id, "now": utcnow()}),
        ],
    )
    _loaded_version(session, letter_id, touched[0] if touched is not None else None)


def touch_letter(session: Session, letter_id: int) -> None:
    """Bump one letter's version, as an UPDATE so concurrent writers never lose a bump: a
    statement built once, run on the session's connection, the new version set on the loaded
    letter if the session holds it (what the ORM's own synchronisation did, at a third of the
    cost)."""
    session.flush()
    postgresql = session.get_bind().dialect.name == "postgresql"  # (and it tells live streams)
    statement = _TOUCH_LETTER_NOTIFYING if postgresql else _TOUCH_LETTER
    version = session.connection().execute(statement, {"letter_id": letter_id, "now": utcnow()}).scalar()
    _loaded_version(session, letter_id, version)


def _loaded_version(session: Session, letter_id: int, version: int | None) -> None:
    """The letter's new version set on the loaded letter, if the session holds it."""
    loaded = session.identity_map.get(identity_key(Letter, letter_id))
    if loaded is not None and version is not None:
        set_committed_value(loaded, "version", version)


# (`updated_at` as a parameter, not the column's Python-side default, so that the statement
# also runs outside the ORM's execution: `execute_together`)
_TOUCH_LETTER = (
    update(Letter)
    .where(Letter.id == bindparam("letter_id"))
    .values(version=Letter.version + 1, updated_at=bindparam("now", type_=Letter.updated_at.type))
    .returning(Letter.version)
)
_TOUCH_LETTER_NOTIFYING = _TOUCH_LETTER.returning(notifying(Letter.id))


def touch_all(session: Session) -> None:
    """Bump the registry's version (`RegistryVersion`), which every letter's validator holds:
    for a write that changes what letters show without being a write to them — a seat made,
    changed or removed (its body's member count is the denominator of every letter's
    `share_of_body`), a body or party renamed (a label of their breakdowns). One row, so such
    writers take turns on it and its value grows in the order they commit."""
    session.flush()
    session.execute(
        update(RegistryVersion).where(RegistryVersion.id == 1).values(version=RegistryVersion.version + 1)
    )
    letters_changed(session)  # (live counts streams: every letter, on commit)


def added(session: Session, where: ColumnElement[bool]) -> None:
    """New signatures (already flushed) now count, in the rollups and in the pair counts."""
    shift(session, where, 1)
    touch(session, where)


@contextmanager
def rewriting(session: Session, where: ColumnElement[bool]) -> Iterator[None]:
    """Wrap a change to the signatures `where` selects, or to their actors or memberships:
    their old contribution is taken away before the block and their new one added after it,
    in the rollups and in the pair counts (`app.pairs`: a withdrawal, a reinstatement, a
    signature moved to another actor, actors merged). `where` must select the same signatures
    before and after (those deleted in the block: before only)."""
    shift(session, where, -1)
    yield
    shift(session, where, 1)
    touch(session, where)
    letter_ids = select(Signature.letter_id).where(where).distinct().scalar_subquery()
    session.execute(
        delete(LetterRollup).where(
            LetterRollup.letter_id.in_(letter_ids), LetterRollup.new == 0, LetterRollup.withdrawn == 0
        )
    )


@contextmanager
def removing(session: Session, where: ColumnElement[bool], letter_id: int) -> Iterator[None]:
    """Wrap the deletion of the signatures `where` selects (of one letter): their contribution
    is taken away, as if they had never been recorded, and the letter's version moves."""
    shift(session, where, -1)
    yield
    session.flush()
    touch_letter(session, letter_id)
    session.execute(
        delete(LetterRollup).where(
            LetterRollup.letter_id == letter_id, LetterRollup.new == 0, LetterRollup.withdrawn == 0
        )
    )


def _rebuilt() -> Any:
    """Every signature's contribution, grouped as the rollups are: what `_moves` gives for all
    signatures, computed for a whole registry without a window over a sort of every signature.
    The seat a signature counts under (`app.seats`) comes from an inner join, which PostgreSQL
    runs with the rule's rival lookup as an anti-join; the signatures without a seat that day
    come from a second anti-join. Each row then counts as `new` on its signing day and, once
    more, as `withdrawn` on the day it was withdrawn."""
    seat, other = aliased(Membership), aliased(Membership)
    actor = [
        Actor.kind,
        func.coalesce(Actor.country, "").label("country"),
        func.coalesce(Actor.org_type, "").label("org_type"),
    ]
    days = [Signature.letter_id, Signature.signed_on, Signature.withdrawn_on]
    seated = (
        select(*days, *actor, seat.body_id, func.coalesce(seat.party_id, 0).label("party_id"))
        .join(Actor, Actor.id == Signature.actor_id)
        .join(seat, held_on(seat, Signature.actor_id, Signature.signed_on))
    )
    seatless = (
        select(*days, *actor, literal(0).label("body_id"), literal(0).label("party_id"))
        .join(Actor, Actor.id == Signature.actor_id)
        .where(
            ~select(other.id)
            .where(other.actor_id == Signature.actor_id, valid_on(other, Signature.signed_on))
            .exists()
        )
    )
    base = union_all(seated, seatless).subquery("base")
    twice = union_all(select(literal(1).label("i")), select(literal(2).label("i"))).subquery("twice")
    day = case((twice.c.i == 1, base.c.signed_on), else_=base.c.withdrawn_on).label("day")
    combo = [base.c[name] for name in COMBINATION]
    return (
        select(
            base.c.letter_id,
            day,
            *combo,
            func.sum(2 - twice.c.i).label("new"),
            func.sum(twice.c.i - 1).label("withdrawn"),
        )
        .select_from(base.join(twice, true()))
        .where(or_(twice.c.i == 1, base.c.withdrawn_on.is_not(None)))
        .group_by(base.c.letter_id, day, *combo)
    )


def rebuild(session: Session, *, exclusive: bool = False) -> int:
    """Recompute every rollup from the signatures (and bump every letter's version). Returns
    the number of rollup rows.

    `exclusive`: the caller has the registry to itself (a load into an empty registry). On
    PostgreSQL the table's keys are then dropped before the insert and made again after it (an
    index built once rather than maintained row by row: half the time), which holds the table
    locked until the caller commits; without it, reads of the rollups go on during a rebuild."""
    session.flush()
    session.execute(delete(LetterRollup))
    if session.get_bind().dialect.name != "postgresql":
        session.execute(sqlite.insert(LetterRollup).from_select(COLUMNS, _rebuilt()))
    else:
        # Enough memory for the grouping to stay off disk, for this statement only.
        work_mem = session.scalar(text("SELECT current_setting('work_mem')"))
        session.execute(text("SELECT set_config('work_mem', '128MB', true)"))
        # Computed into a temporary table first: CREATE TABLE AS may run the select in parallel
        # workers, INSERT … SELECT may not (3 s instead of 4.7 s at scale 1 on 2 cores).
        session.execute(text("DROP TABLE IF EXISTS rollups_rebuilt"))
        rebuilt = _rebuilt().compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        session.connection().exec_driver_sql(f"CREATE TEMPORARY TABLE rollups_rebuilt AS {rebuilt}")
        remake = _drop_keys(session) if exclusive else []
        computed = table("rollups_rebuilt", *(column(name) for name in COLUMNS))
        stmt = postgresql.insert(LetterRollup).from_select(COLUMNS, select(*computed.c))
        if not remake:  # a write committed since the DELETE may have added rows: add to them
            stmt = stmt.on_conflict_do_update(
                index_elements=["letter_id", "day", *COMBINATION],
                set_={
                    "new": LetterRollup.new + stmt.excluded.new,
                    "withdrawn": LetterRollup.withdrawn + stmt.excluded.withdrawn,
                },
            )
        session.execute(stmt)
        for statement in remake:
            session.connection().exec_driver_sql(statement)
        session.execute(text("DROP TABLE rollups_rebuilt"))
        session.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": work_mem})
    session.execute(update(Letter).values(version=Letter.version + 1))
    letters_changed(session)  # (live counts streams: every letter, on commit)
    return int(session.scalar(select(func.count()).select_from(LetterRollup)) or 0)


def _drop_keys(session: Session) -> list[str]:
    """Drop the rollups' primary key and foreign key; the statements that make them again. Not
    the table's owner: nothing dropped, nothing to make (the rebuild then keeps its keys)."""
    keys = session.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST('letter_rollups' AS regclass) AND contype IN ('p', 'f') ORDER BY contype DESC"
        )
    ).all()
    try:
        with session.begin_nested():
            for name, _definition in keys:
                session.execute(text(f'ALTER TABLE letter_rollups DROP CONSTRAINT "{name}"'))
    except DBAPIError:
        return []
    return [f'ALTER TABLE letter_rollups ADD CONSTRAINT "{name}" {definition}' for name, definition in keys]


def snapshot(session: Session) -> set[tuple[Any, ...]]:
    """The rollups as a set of rows (zero rows left out), to compare a rebuild with the
    incrementally kept state."""
    rows = session.execute(
        select(
            LetterRollup.letter_id,
            LetterRollup.day,
            *(getattr(LetterRollup, c) for c in COMBINATION),
            LetterRollup.new,
            LetterRollup.withdrawn,
        ).where((LetterRollup.new != 0) | (LetterRollup.withdrawn != 0))
    ).all()
    return {tuple(r) for r in rows}


# --- reads ------------------------------------------------------------------------------------


def groups(session: Session, letter_id: int, day: date) -> list[Any]:
    """The letter's signatures as of `day`, per breakdown combination: rows shaped like
    `app.analytics.common.grouped_rows` (kind, country, org_type, body and party slug and name,
    `n` = recorded) plus `gone` = withdrawn by then. Sums at most days × combinations rows."""
    stmt = (
        select(
            LetterRollup.kind,
            func.nullif(LetterRollup.country, "").label("country"),
            func.nullif(LetterRollup.org_type, "").label("org_type"),
            Body.slug.label("body"),
            Body.name.label("body_name"),
            Party.slug.label("party"),
            Party.name.label("party_name"),
            (func.sum(LetterRollup.new) - func.sum(LetterRollup.withdrawn)).label("n"),
            func.sum(LetterRollup.withdrawn).label("gone"),
        )
        .outerjoin(Body, Body.id == LetterRollup.body_id)
        .outerjoin(Party, Party.id == LetterRollup.party_id)
        .where(LetterRollup.letter_id == letter_id, LetterRollup.day <= day)
        .group_by(
            LetterRollup.kind,
            LetterRollup.country,
            LetterRollup.org_type,
            Body.slug,
            Body.name,
            Party.slug,
            Party.name,
        )
    )
    return list(session.execute(stmt).all())


def per_day(session: Session, letter_ids: list[int], bucket: Any) -> list[Any]:
    """(letter_id, bucket, new, withdrawn) for the letters, `bucket` being an SQL expression over
    `LetterRollup.day` (day, week or month)."""
    inner = (
        select(LetterRollup.letter_id, bucket.label("bucket"), LetterRollup.new, LetterRollup.withdrawn)
        .where(LetterRollup.letter_id.in_(letter_ids))
        .subquery("bucketed")
    )
    stmt = select(
        inner.c.letter_id, inner.c.bucket, func.sum(inner.c.new), func.sum(inner.c.withdrawn)
    ).group_by(inner.c.letter_id, inner.c.bucket)
    return list(session.execute(stmt).all())
