"""What the pages need beyond the letters, actors and analytics services: the signatories of
a page of signatures with the seat each held on the signing day (`app.seats`), and the recipients to choose
from in the letters' filter. Each is one or two queries, whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.letters.service import SignatureFilters, list_signatures
from app.models import Actor, Body, Identifier, Membership, Party, Recipient, Signature
from app.pagination import PageParams
from app.seats import held_on


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
    source: str | None
    identifiers: list[Identifier]


def _seats(session: Session, signature_ids: list[int]) -> dict[int, tuple[str | None, str | None]]:
    """{signature id: (body name, party name)} of the seat each signatory held on the signing
    day (`app.seats`), in one query."""
    if not signature_ids:
        return {}
    stmt = (
        select(Signature.id, Body.name, Party.name)
        .select_from(Signature)
        .join(Membership, held_on(Membership, Signature.actor_id, Signature.signed_on))
        .join(Body, Body.id == Membership.body_id)
        .outerjoin(Party, Party.id == Membership.party_id)
        .where(Signature.id.in_(signature_ids))
    )
    return {int(i): (body, party) for i, body, party in session.execute(stmt).all()}


def signatory_rows(
    session: Session, slug: str, filters: SignatureFilters, params: PageParams
) -> tuple[list[SignatoryRow], str | None]:
    signatures, cursor = list_signatures(session, slug, filters, params)
    seats = _seats(session, [s.id for s in signatures])
    rows = []
    for s in signatures:
        body, party = seats.get(s.id, (None, None))
        rows.append(
            SignatoryRow(
                actor_id=s.actor_id,
                name=s.actor.name,
                kind=s.actor.kind,
                country=s.actor.country,
                org_type=s.actor.org_type,
                body=body,
                party=party,
                capacity=s.capacity,
                affiliation=s.affiliation,
                signed_on=s.signed_on,
                withdrawn_on=s.withdrawn_on,
                source=s.source,
                identifiers=list(s.actor.identifiers),
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
