"""The seat an actor held on a day: the one rule by which a signature is placed in a body and a
party, written once, in SQL, for every read and write that needs it (the rollups behind counts
and timelines, the reach, the signatures' export and `?body=`/`?party=` filters, the letter
pages, the actors' filter, the bodies' seats, the import's warnings).

The rule (docs/seats.md):

- a membership is *valid* on a day when it started on or before that day and has not ended
  before it (`end_date` is the last day held; none: still held);
- of the memberships of an actor valid on a day, the seat is the one that started last (a
  switch recorded with the old seat ending on the day the new one starts counts under the new
  one); of several that started on the same day, the one recorded first (the lowest id);
- the body and the party of a signature are those of that one membership (no party: none),
  never taken from two different ones; no valid membership: no body and no party.

So every signature is counted once in each breakdown, each breakdown sums to the total, and
what a letter's page shows, its export writes and its filters select is what its counts count.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from app.models import Body, Membership


def valid_on(membership: Any, day: Any) -> ColumnElement[bool]:
    """`membership` (the class or an alias) is valid on `day` (a date or a column)."""
    return and_(membership.start_date <= day, or_(membership.end_date.is_(None), membership.end_date >= day))


def held_on(seat: Any, actor_id: Any, day: Any) -> ColumnElement[bool]:
    """`seat` (the class or an alias) is the seat `actor_id` held on `day`: valid that day, and
    no other valid membership of the actor started later, or the same day with a lower id.

    At most one membership matches an actor and a day, so a LEFT JOIN on it keeps one row per
    signature and an EXISTS with it filters by the seat. The rival is looked up by actor on the
    (actor_id, start_date, end_date) index; in an inner join or a WHERE, PostgreSQL runs it as an
    anti-join."""
    rival = aliased(Membership)
    beaten = (
        exists()
        .where(
            rival.actor_id == seat.actor_id,
            valid_on(rival, day),
            or_(
                rival.start_date > seat.start_date,
                and_(rival.start_date == seat.start_date, rival.id < seat.id),
            ),
        )
        .correlate_except(rival)
    )
    return and_(seat.actor_id == actor_id, valid_on(seat, day), ~beaten)


def seated(actor_id: Any, day: Any, *, body_id: Any = None, party_id: Any = None) -> ColumnElement[bool]:
    """The seat `actor_id` held on `day` is in the body `body_id` and for the party `party_id`
    (each when given; ids or scalar subqueries): an EXISTS, for filters."""
    seat = aliased(Membership)
    conditions = [held_on(seat, actor_id, day)]
    if body_id is not None:
        conditions.append(seat.body_id == body_id)
    if party_id is not None:
        conditions.append(seat.party_id == party_id)
    return exists().where(*conditions).correlate_except(seat)


def seats_in(session: Session, key: Any, keys: list[Any], day: date) -> dict[Any, int]:
    """Seats of each body on `day`: the actors whose seat that day is in it (an actor holding
    two valid memberships is one seat, in the body of the one that counts). `key` is `Body.id`
    or `Body.slug`, `keys` the bodies wanted; one GROUP BY."""
    if not keys:
        return {}
    rows = session.execute(
        select(key, func.count())
        .select_from(Membership)
        .join(Body, Body.id == Membership.body_id)
        .where(key.in_(keys), held_on(Membership, Membership.actor_id, day))
        .group_by(key)
    ).all()
    return {k: int(n) for k, n in rows}
