"""Builders: make the rows a scenario needs in one line each, straight through the ORM (for
tests of reads and analytics; tests of writes go through the HTTP API). Signatures,
memberships and events keep the letters' rollups and versions in step, as the services do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app import rollups
from app.actors.identity import set_aliases
from app.models import Actor, Body, Campaign, Event, Identifier, Letter, Membership, Party, Signature
from app.text import search_text


def campaign(db: Session, slug: str, name: str | None = None) -> Campaign:
    c = Campaign(slug=slug, name=name or slug)
    db.add(c)
    db.flush()
    return c


def letter(
    db: Session,
    slug: str,
    *,
    published_on: date | None = date(2020, 9, 9),
    claimed: int | None = None,
    campaign: Campaign | None = None,
    title: str | None = None,
    status: str = "published",
) -> Letter:
    title = title or slug.replace("-", " ").title()
    row = Letter(
        slug=slug,
        title=title,
        published_on=published_on,
        claimed_signatory_count=claimed,
        campaign_id=campaign.id if campaign else None,
        status=status,
        search_text=search_text(title),
    )
    db.add(row)
    db.flush()
    return row


def actor(
    db: Session,
    name: str,
    *,
    kind: str = "person",
    country: str | None = None,
    org_type: str | None = None,
    identifiers: dict[str, str] | None = None,
    aliases: list[str] | None = None,
) -> Actor:
    row = Actor(
        kind=kind,
        name=name,
        country=country,
        org_type=org_type,
        identifiers=[Identifier(scheme=s, value=v) for s, v in (identifiers or {}).items()],
        aliases=[],
    )
    set_aliases(row, aliases or [])
    db.add(row)
    db.flush()
    return row


def body(db: Session, slug: str, name: str | None = None, country: str | None = "GB") -> Body:
    row = Body(slug=slug, name=name or slug, country=country)
    db.add(row)
    db.flush()
    return row


def party(db: Session, slug: str, name: str | None = None, country: str | None = "GB") -> Party:
    row = Party(slug=slug, name=name or slug, country=country)
    db.add(row)
    db.flush()
    return row


def membership(
    db: Session,
    who: Actor,
    in_body: Body,
    for_party: Party | None,
    start: date,
    end: date | None = None,
    constituency: str | None = None,
) -> Membership:
    row = Membership(
        actor_id=who.id,
        body_id=in_body.id,
        party_id=for_party.id if for_party else None,
        start_date=start,
        end_date=end,
        constituency=constituency,
    )
    if db.scalar(select(exists().where(Signature.actor_id == who.id))):
        with rollups.rewriting(db, Signature.actor_id == who.id):  # as the memberships API does
            db.add(row)
    else:  # (an actor who signed nothing: a rewrite would move nothing)
        db.add(row)
    db.flush()
    return row


def sign(
    db: Session,
    on: Letter,
    who: Actor,
    signed_on: date | None = None,
    *,
    withdrawn_on: date | None = None,
    capacity: str | None = None,
    status: str = "confirmed",
) -> Signature:
    day = signed_on or on.published_on or date(2020, 9, 9)
    row = Signature(
        letter_id=on.id,
        actor_id=who.id,
        signed_on=day,
        withdrawn_on=withdrawn_on,
        capacity=capacity,
        status=status,
    )
    db.add(row)
    batch: list[Signature] | None = db.info.get(_BATCH)
    if batch is not None:
        batch.append(row)
        return row
    db.flush()
    rollups.signature_added(db, row.id, on.id)  # as the signatures API does
    return row


_BATCH = "builders.signatures"


@contextmanager
def many_signatures(db: Session) -> Iterator[None]:
    """The signatures `sign` makes in the block are written and counted together when it ends
    (one flush, one `rollups.added` over all of them, as an import counts its rows), for a
    scenario of hundreds; inside the block they have no id yet."""
    batch: list[Signature] = []
    db.info[_BATCH] = batch
    try:
        yield
    finally:
        del db.info[_BATCH]
    db.flush()
    if batch:
        rollups.added(db, Signature.id.in_([row.id for row in batch]))


def event(
    db: Session,
    day: date,
    kind: str = "other",
    *,
    on: Letter | None = None,
    of_campaign: Campaign | None = None,
    note: str | None = None,
) -> Event:
    row = Event(
        letter_id=on.id if on else None,
        campaign_id=of_campaign.id if of_campaign else None,
        date=day,
        kind=kind,
        note=note,
    )
    db.add(row)
    db.flush()
    if on is not None:
        rollups.touch_letter(db, on.id)  # as the events API does: the letter's reads change
    return row
