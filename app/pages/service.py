"""What the pages need beyond the letters, actors and analytics services: the signatories of
a page of signatures with the seat each held on the signing day (`app.seats`) and their
identifiers, and the recipients to choose from in the letters' filter. Each is one or two
queries, whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.letters.service import SignatureFilters, SignatureRow, signature_rows
from app.models import Actor, Identifier, Recipient
from app.pagination import PageParams


@dataclass(frozen=True)
class SignatoryRow:
    """A row of a letter page's signatories: the signature flattened as the exports flatten it
    (body and party by name) and the signatory's identifiers."""

    signature: SignatureRow
    identifiers: list[Identifier]


def signatory_rows(
    session: Session, slug: str, filters: SignatureFilters, params: PageParams
) -> tuple[list[SignatoryRow], str | None]:
    signatures, cursor = signature_rows(session, slug, filters, params)
    held: dict[int, list[Identifier]] = {}
    if signatures:
        stmt = (
            select(Identifier)
            .where(Identifier.actor_id.in_({s.actor_id for s in signatures}))
            .order_by(Identifier.id)
        )
        for identifier in session.scalars(stmt):
            held.setdefault(identifier.actor_id, []).append(identifier)
    return [SignatoryRow(s, held.get(s.actor_id, [])) for s in signatures], cursor


def recipient_choices(session: Session, limit: int = 200) -> list[tuple[int, str]]:
    """Actors that received a letter, by name (for the letters' filter)."""
    stmt = (
        select(Actor.id, Actor.name)
        .where(Actor.id.in_(select(Recipient.actor_id)))
        .order_by(func.lower(Actor.name), Actor.id)
        .limit(limit)
    )
    return [(int(i), str(n)) for i, n in session.execute(stmt).all()]
