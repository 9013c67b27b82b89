"""Builders: make the rows a scenario needs in one line each, straight through the ORM (for
tests of reads and analytics; tests of writes go through the HTTP API). Signatures,
memberships and events keep the letters' rollups and versions in step, as the services do."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app import rollups
from app.models import Actor, Body, Campaign, Event, Identifier, Letter, Membership, Party, Signature
from app.text import match_name, search_text


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
) -> Actor:
    row = Actor(
        kind=kind,
        name=name,
        country=country,
        org_type=org_type,
        match_name=match_name(name),
        search_text=search_text(name),
        identifiers=[Identifier(scheme=s, value=v) for s, v in (identifiers or {}).items()],
    )
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
    with rollups.rewriting(db, Signature.actor_id == who.id):  # as the memberships API does
        db.add(row)
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
    db.flush()
    rollups.added(db, Signature.id == row.id)  # as the signatures API does
    return row


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
