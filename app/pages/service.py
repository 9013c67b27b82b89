"""What the pages need beyond the letters, actors and analytics services: the signatories of
a page of signatures with the seat each held on the signing day, and the recipients to choose
from in the letters' filter. Each is one or two queries, whatever the number of rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.letters.service import SignatureFilters, list_signatures
from app.models import Actor, Membership, Recipient
from app.pagination import PageParams


@dataclass(frozen=True)
class SignatoryRow:
    actor_id: int
    name: str
    kind: str
    country: str | None
    org_type: str | None
    body: str | None
    party: str | None
    capacity: str | None
    affiliation: str | None
    signed_on: date
    withdrawn_on: date | None


def _seat(memberships: list[Membership], day: date) -> Membership | None:
    """The membership counted on `day`, by the analytics' rule: valid that day, the
    latest-starting, then the lowest id."""
    valid = [m for m in memberships if m.start_date <= day and (m.end_date is None or m.end_date >= day)]
    valid.sort(key=lambda m: (-m.start_date.toordinal(), m.id))
    return valid[0] if valid else None


def signatory_rows(
    session: Session, slug: str, filters: SignatureFilters, params: PageParams
) -> tuple[list[SignatoryRow], str | None]:
    signatures, cursor = list_signatures(session, slug, filters, params)
    by_actor: dict[int, list[Membership]] = defaultdict(list)
    if signatures:
        memberships = session.scalars(
            select(Membership)
            .where(Membership.actor_id.in_({s.actor_id for s in signatures}))
            .options(selectinload(Membership.body), selectinload(Membership.party))
        )
        for m in memberships:
            by_actor[m.actor_id].append(m)
    rows = []
    for s in signatures:
        seat = _seat(by_actor[s.actor_id], s.signed_on)
        rows.append(
            SignatoryRow(
                actor_id=s.actor_id,
                name=s.actor.name,
                kind=s.actor.kind,
                country=s.actor.country,
                org_type=s.actor.org_type,
                body=seat.body.name if seat else None,
                party=seat.party.name if seat and seat.party else None,
                capacity=s.capacity,
                affiliation=s.affiliation,
                signed_on=s.signed_on,
                withdrawn_on=s.withdrawn_on,
            )
        )
    return rows, cursor


def recipient_choices(session: Session, limit: int = 200) -> list[tuple[int, str]]:
    """Actors that received a letter, by name (for the letters' filter)."""
    stmt = (
        select(Actor.id, Actor.name)
        .where(Actor.id.in_(select(Recipient.actor_id)))
        .order_by(func.lower(Actor.name), Actor.id)
        .limit(limit)
    )
    return [(int(i), str(n)) for i, n in session.execute(stmt).all()]
