"""Pair counts kept in step with every write, in the write's own transaction: for every two
letters that share a signatory, how many actors signed both (`letter_pairs`, `letter_a` <
`letter_b`), and on the diagonal (`letter_a` = `letter_b`) each letter's size, counting only
the signatures that still count (not withdrawn, as every overlap counts). A pairwise overlap
then reads three rows by primary key, whatever the letters' sizes.

Every change goes through `shift(where, ±1)`, as the rollups' does: it adds (or takes away)
the pairs the signatures selected by `where` form, as they stand now, with the other counting
signatures of their actors — one INSERT … SELECT … ON CONFLICT DO UPDATE, computed in SQL. A
signature of an actor who signed k other letters moves k + 1 rows (its letter's diagonal
too); so does its withdrawal. An edit
of signatures (a withdrawal, a reinstatement, a signature moved to another actor or letter) is
`rewriting(where)`: the old pairs taken away before the block, the new ones added after it;
`where` must select the same signatures before and after. `rollups.shift` calls `shift` with
the same arguments, so every writer that keeps the rollups through it (`rollups.added`,
`rollups.rewriting`: withdrawals, reinstatements, moves, merges; a deletion of signatures after
a `rollups.shift(where, -1)`; the import endpoint) keeps the pairs too. The two bulk-counted
paths are the rollups' own: a new signature (`signature_shift`, run by
`rollups.signature_added`) and an import's new actors (`add_sizes`, beside
`rollups.add_counted`).
`rebuild` recomputes everything in one statement (the bulk load ends with it, and
`undersigned db rebuild-rollups` reports the drift it finds). Nothing here reads signatures
into Python.

Rows are inserted in key order in every statement, so concurrent writers that move the same
pairs take their row locks in the same order and wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session, aliased

from app.db.engine import insert_for
from app.models import LetterPair, Signature

COLUMNS = ["letter_a", "letter_b", "common"]


def counting(signature: Any = Signature) -> ColumnElement[bool]:
    """The signatures an overlap counts: not withdrawn (SPEC §2: withdrawn signatures never
    count). The one place the rule is written for the pairs."""
    rule: ColumnElement[bool] = signature.withdrawn_on.is_(None)
    return rule


def _moves(where: ColumnElement[bool], sign: int) -> Any:
    """The pairs the counting signatures `where` selects form with their actors' counting
    signatures, as (letter_a, letter_b, ±count), in key order: with the actor's other letters,
    and each with itself (its letter's diagonal row, the letter's size). A pair of two selected
    signatures is counted once (from the one on the lower letter), a pair of a selected one
    and another once."""
    chosen = (
        select(Signature.id, Signature.letter_id, Signature.actor_id).where(where, counting()).cte("chosen")
    )
    other = aliased(Signature, name="other")
    again = chosen.alias("again")
    low = case((chosen.c.letter_id < other.letter_id, chosen.c.letter_id), else_=other.letter_id)
    high = case((chosen.c.letter_id < other.letter_id, other.letter_id), else_=chosen.c.letter_id)
    return (
        select(low.label("letter_a"), high.label("letter_b"), (func.count() * sign).label("common"))
        .select_from(chosen)
        .join(
            other,
            and_(other.actor_id == chosen.c.actor_id, counting(other)),
        )
        .outerjoin(again, again.c.id == other.id)
        .where(or_(again.c.id.is_(None), chosen.c.letter_id <= other.letter_id))
        .group_by(low, high)
        .order_by(low, high)
    )


def _adding(stmt: Any) -> Any:
    """`stmt`, an INSERT of pair rows, made to add to the rows already there."""
    return stmt.on_conflict_do_update(
        index_elements=["letter_a", "letter_b"], set_={"common": LetterPair.common + stmt.excluded.common}
    )


def shift(session: Session, where: ColumnElement[bool], sign: int) -> None:
    """Add (`sign=1`) or take away (`sign=-1`) the pairs of the signatures `where` selects, as
    they stand now (those that do not count add nothing)."""
    session.flush()
    insert = insert_for(session.get_bind().dialect.name, LetterPair)
    session.execute(_adding(insert.from_select(COLUMNS, _moves(where, sign))))


@lru_cache(maxsize=4)
def signature_shift(dialect: str, sign: int) -> Any:
    """The statement of `shift_signature`, for the signature `:signature_id`."""
    moves = _moves(Signature.id == bindparam("signature_id"), sign)
    return _adding(insert_for(dialect, LetterPair).from_select(COLUMNS, moves))


def add_sizes(session: Session, moves: dict[tuple[Any, ...], list[int]]) -> None:
    """New signatures of actors who signed no other letter (an import's new actors), given as
    the rollups count them (`rollups.add_counted`: `{(letter_id, day, …): [new, withdrawn]}`):
    they move only their letters' diagonal rows, by the signatures that still count."""
    sizes: dict[int, int] = {}
    for key, (made, gone) in moves.items():
        sizes[key[0]] = sizes.get(key[0], 0) + made - gone
    rows = [{"letter_a": letter, "letter_b": letter, "common": n} for letter, n in sorted(sizes.items()) if n]
    if rows:
        session.flush()
        session.execute(_adding(insert_for(session.get_bind().dialect.name, LetterPair)), rows)


def added(session: Session, where: ColumnElement[bool]) -> None:
    """New signatures (already flushed) now count in the pairs (`rollups.added` does this)."""
    shift(session, where, 1)


@contextmanager
def rewriting(session: Session, where: ColumnElement[bool]) -> Iterator[None]:
    """Wrap a change to the signatures `where` selects (withdrawn or reinstated, moved to
    another actor or letter, deleted): their old pairs are taken away before the block and the
    new ones added after it. `rollups.rewriting` does this as part of its own (through
    `rollups.shift`), so the writers that use it need not; this is for a writer that moves
    signatures without the rollups."""
    shift(session, where, -1)
    yield
    shift(session, where, 1)


def forget_letter(session: Session, letter_id: int) -> None:
    """A letter deleted (with its signatures): its pairs go with it."""
    session.execute(
        delete(LetterPair).where(or_(LetterPair.letter_a == letter_id, LetterPair.letter_b == letter_id))
    )


def _all_pairs() -> Any:
    """Every pair, computed from the signatures: one self-join on the actor, grouped (a
    signature joined with itself makes its letter's diagonal row: an actor signs a letter
    once)."""
    mine, theirs = aliased(Signature, name="mine"), aliased(Signature, name="theirs")
    return (
        select(
            mine.letter_id.label("letter_a"), theirs.letter_id.label("letter_b"), func.count().label("common")
        )
        .select_from(mine)
        .join(theirs, and_(theirs.actor_id == mine.actor_id, theirs.letter_id >= mine.letter_id))
        .where(counting(mine), counting(theirs))
        .group_by(mine.letter_id, theirs.letter_id)
    )


def rebuild(session: Session, *, exclusive: bool = False) -> int:
    """Recompute every pair from the signatures, in one statement after emptying the table.
    Returns the number of pair rows.

    `exclusive`: the caller has the registry to itself (a load into an empty registry, which
    drops the table's keys around this call): the rows go straight from the join into the
    table, with nothing to add to (no write can have come in since the DELETE)."""
    session.flush()
    session.execute(delete(LetterPair))
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        session.execute(_adding(insert_for(dialect.name, LetterPair).from_select(COLUMNS, _all_pairs())))
        return int(session.scalar(select(func.count()).select_from(LetterPair)) or 0)
    # For this statement only: enough memory for the grouping to stay off disk, and a hash
    # join of the signatures with themselves (the planner's nested loop over the actor index
    # took three times as long at 2,000,000 signatures).
    previous = {name: session.scalar(text(f"SELECT current_setting('{name}')")) for name in _SETTINGS}
    for name, value in _SETTINGS.items():
        session.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
    if exclusive:
        session.execute(insert_for(dialect.name, LetterPair).from_select(COLUMNS, _all_pairs()))
        for name, value in previous.items():
            session.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
        return int(session.scalar(select(func.count()).select_from(LetterPair)) or 0)
    # Computed into a temporary table first: CREATE TABLE AS may run the join and the grouping
    # in parallel workers, INSERT … SELECT may not; then inserted in key order (each index
    # page filled once).
    session.execute(text("DROP TABLE IF EXISTS pairs_rebuilt"))
    computed = _all_pairs().compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    session.connection().exec_driver_sql(f"CREATE TEMPORARY TABLE pairs_rebuilt AS {computed}")
    rebuilt = table("pairs_rebuilt", *(column(name) for name in COLUMNS))
    rows = select(*rebuilt.c).order_by(rebuilt.c.letter_a, rebuilt.c.letter_b)
    # (adding to what a write committed since the DELETE made)
    session.execute(_adding(insert_for(dialect.name, LetterPair).from_select(COLUMNS, rows)))
    session.execute(text("DROP TABLE pairs_rebuilt"))
    for name, value in previous.items():
        session.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})
    return int(session.scalar(select(func.count()).select_from(LetterPair)) or 0)


_SETTINGS = {"work_mem": "256MB", "enable_nestloop": "off", "jit": "off"}


def snapshot(session: Session) -> set[tuple[int, int, int]]:
    """The pairs as a set of rows (zero rows left out), to compare a rebuild or a recomputation
    with the state the writes kept."""
    rows = session.execute(
        select(LetterPair.letter_a, LetterPair.letter_b, LetterPair.common).where(LetterPair.common != 0)
    ).all()
    return {(int(a), int(b), int(n)) for a, b, n in rows}


def recomputed(session: Session) -> set[tuple[int, int, int]]:
    """The pairs as the signatures give them now (what `rebuild` would write), as a set."""
    return {(int(a), int(b), int(n)) for a, b, n in session.execute(_all_pairs()).all()}


# --- reads ------------------------------------------------------------------------------------


def matrix(session: Session, letter_ids: list[int]) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """The letters' sizes (their diagonal rows) and the common count of every pair of them that
    shares a signatory, in one statement over the pair rows' primary key: at most n·(n+1)/2
    rows for n letters, never a signature.

    Returns `({letter_id: size}, {(low_id, high_id): common})`."""
    if not letter_ids:
        return {}, {}
    rows = session.execute(
        select(LetterPair.letter_a, LetterPair.letter_b, LetterPair.common).where(
            LetterPair.letter_a.in_(letter_ids), LetterPair.letter_b.in_(letter_ids), LetterPair.common != 0
        )
    ).all()
    size_of: dict[int, int] = dict.fromkeys(letter_ids, 0)
    shared: dict[tuple[int, int], int] = {}
    for a, b, n in rows:
        if a == b:
            size_of[int(a)] = int(n)
        else:
            shared[(int(a), int(b))] = int(n)
    return size_of, shared


def common_key(a: int, b: int) -> tuple[int, int]:
    """The key of a pair in `matrix`'s answer (and in the table): the lower id first."""
    return (a, b) if a < b else (b, a)
