"""Campaign use cases. The caller's transaction is open; we only flush."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.auth import Writer
from app.campaigns.schemas import CampaignCreate, CampaignUpdate
from app.changes import record_change, snapshot
from app.errors import Conflict, Invalid, NotFound
from app.models import Campaign
from app.pagination import PageParams, SortKey, keyset_page


def get_campaign(session: Session, slug: str) -> Campaign:
    campaign = session.scalar(
        select(Campaign).where(Campaign.slug == slug).options(selectinload(Campaign.letters))
    )
    if campaign is None:
        raise NotFound(f"no campaign with slug '{slug}'")
    return campaign


def list_campaigns(
    session: Session, params: PageParams, q: str | None = None
) -> tuple[list[Campaign], str | None]:
    """Campaigns by id; with `q`, those whose name or slug holds every word of it (any case)."""
    stmt = select(Campaign).options(selectinload(Campaign.letters))
    if q is not None:
        terms = q.lower().split()
        if not terms:
            raise Invalid("has no words to search for", field="query.q")
        haystack = func.lower(Campaign.name + " " + Campaign.slug)
        stmt = stmt.where(*(haystack.contains(term, autoescape=True) for term in terms))
    rows, cursor = keyset_page(session, stmt, [SortKey(Campaign.id)], params)
    return [row[0] for row in rows], cursor


def create_campaign(writer: Writer, data: CampaignCreate) -> Campaign:
    session = writer.session
    if session.scalar(select(Campaign.id).where(Campaign.slug == data.slug)) is not None:
        raise Conflict(f"a campaign with slug '{data.slug}' already exists")
    campaign = Campaign(**data.model_dump())
    session.add(campaign)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a campaign with slug '{data.slug}' already exists") from exc
    record_change(session, writer.key_name, "create", "campaign", campaign.slug, after=snapshot(campaign))
    return get_campaign(session, campaign.slug)


def update_campaign(writer: Writer, slug: str, data: CampaignUpdate) -> Campaign:
    campaign = get_campaign(writer.session, slug)
    before = snapshot(campaign)
    for field, value in data.model_dump(exclude_unset=True).items():
        if field == "name" and value is None:
            continue
        setattr(campaign, field, value)
    writer.session.flush()
    record_change(
        writer.session, writer.key_name, "update", "campaign", slug, before=before, after=snapshot(campaign)
    )
    return campaign


def delete_campaign(writer: Writer, slug: str) -> None:
    """Hard delete (admin). Its letters stay, outside any campaign."""
    campaign = get_campaign(writer.session, slug)
    before = snapshot(campaign)
    for letter in campaign.letters:
        letter.campaign_id = None
    writer.session.delete(campaign)
    writer.session.flush()
    record_change(writer.session, writer.key_name, "delete", "campaign", slug, before=before)
