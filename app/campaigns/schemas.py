from __future__ import annotations

from datetime import date, datetime

from app.schemas import Input, LongText, Output, ShortText, Slug


class CampaignCreate(Input):
    slug: Slug
    name: ShortText
    description: LongText | None = None


class CampaignUpdate(Input):
    name: ShortText | None = None
    description: LongText | None = None


class CampaignLetter(Output):
    """A letter of a campaign, in brief (the whole letter is at `/v1/letters/{slug}`)."""

    slug: str
    title: str
    published_on: date | None
    status: str


class CampaignOut(Output):
    id: int
    slug: str
    name: str
    description: str | None
    letters: list[CampaignLetter]
    created_at: datetime
    updated_at: datetime
