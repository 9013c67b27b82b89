"""The typed results of the analytics. They know nothing of HTTP: the JSON and CSV routes
render them, and so can SVG charts, embeds and the SSE stream."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class Entry(BaseModel):
    """One line of a breakdown. `key` is a slug, an ISO country code, a `kind` or an
    `org_type`; `null` (label "Unknown") counts those without a value."""

    key: str | None
    label: str
    count: int


class BodyEntry(Entry):
    share_of_body: float | None = Field(
        description="count / seats held in the body on the letter's date (for a campaign's reach, "
        "on its `seats_on`; unrounded); "
        "null when unknown (no seats recorded that day, or the Unknown line)."
    )


class Breakdowns(BaseModel):
    by_kind: list[Entry]
    by_body: list[BodyEntry]
    by_party: list[Entry]
    by_country: list[Entry]
    by_org_type: list[Entry]


class Counts(BaseModel):
    letter: str
    as_of: date | None = Field(description="As asked; null means today.")
    claimed: int | None = Field(description="The count the letter or its press claims.")
    recorded: int = Field(description="Signatures made on or before `as_of` and not withdrawn by then.")
    withdrawn: int = Field(description="Signatures made and withdrawn on or before `as_of`.")
    by_kind: list[Entry]
    by_body: list[BodyEntry]
    by_party: list[Entry]
    by_country: list[Entry]
    by_org_type: list[Entry]


class Reach(BaseModel):
    campaign: str
    letters: int = Field(description="Number of letters in the campaign.")
    distinct: int = Field(description="Distinct actors with at least one signature that still counts.")
    signed_more_than_one: int
    seats_on: date = Field(
        description="The day `share_of_body` counts the seats of each body on: the `published_on` "
        "of the campaign's newest letter (today when none is dated)."
    )
    by_kind: list[Entry]
    by_body: list[BodyEntry]
    by_party: list[Entry]
    by_country: list[Entry]
    by_org_type: list[Entry]


class Pair(BaseModel):
    a: str
    b: str
    common: int
    jaccard: float


class Intersection(BaseModel):
    letters: list[str]
    count: int


class Overlaps(BaseModel):
    letters: list[str]
    sizes: dict[str, int]
    union: int
    pairs: list[Pair]
    intersections: list[Intersection]


class Point(BaseModel):
    date: date
    new: int
    withdrawn: int
    cumulative: int


class DistinctPoint(BaseModel):
    date: date
    new: int
    cumulative: int


class TimelineEvent(BaseModel):
    date: date
    kind: str
    note: str | None


class CampaignEvent(TimelineEvent):
    letter: str | None = Field(description="The letter's slug, or null for an event of the campaign.")


class Timeline(BaseModel):
    letter: str
    interval: str
    points: list[Point]
    events: list[TimelineEvent]


class Series(BaseModel):
    letter: str
    points: list[Point]


class CampaignPoint(BaseModel):
    """A row of a campaign's timeline as CSV or NDJSON: a letter's point, or (`letter` null,
    `withdrawn` null) a point of the distinct signatories."""

    letter: str | None
    date: date
    new: int
    withdrawn: int | None
    cumulative: int


class BreakdownRow(BaseModel):
    """A line of the counts' or the reach's breakdowns as CSV or NDJSON."""

    breakdown: str = Field(description="`kind`, `body`, `party`, `country` or `org_type`.")
    key: str | None
    label: str
    count: int
    share_of_body: float | None


class CampaignTimeline(BaseModel):
    campaign: str
    interval: str
    series: list[Series]
    distinct: list[DistinctPoint]
    events: list[CampaignEvent]
