"""Reads the embeds need: a letter with its cheap validator, its sources, its counts.

The validator (`state`) is the letter's `version` (bumped by every write to the letter or its
signatures) together with the newest change record's id (every write of anything records one),
so a membership or party edit that moves a breakdown also changes it. Both come from one
SELECT of index lookups, before any counting."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.analytics.counts import letter_counts
from app.analytics.results import Counts
from app.embeds.widget import SourceLink
from app.errors import NotFound
from app.http_cache import etag_for
from app.models import ChangeRecord, Letter, Source


@dataclass(frozen=True)
class LetterState:
    letter: Letter
    state: str


def letter_state(session: Session, slug: str) -> LetterState:
    """The letter and its validator, or a 404."""
    latest_change = select(func.max(ChangeRecord.id)).scalar_subquery()
    row = session.execute(select(Letter, latest_change).where(Letter.slug == slug)).one_or_none()
    if row is None:
        raise NotFound(f"no letter with slug '{slug}'")
    letter, change_id = row
    return LetterState(letter=letter, state=f"{letter.version}.{change_id or 0}")


def state_of(session: Session, slug: str) -> str | None:
    """Only the validator (None once the letter is gone): what an open stream polls."""
    latest_change = select(func.max(ChangeRecord.id)).scalar_subquery()
    row = session.execute(select(Letter.version, latest_change).where(Letter.slug == slug)).one_or_none()
    return None if row is None else f"{row[0]}.{row[1] or 0}"


def counts_of(session: Session, letter: Letter) -> Counts:
    """Counts as of today: the document `GET /v1/letters/{slug}/counts` returns."""
    return letter_counts(session, letter, None)


def source_links(session: Session, letter: Letter) -> list[SourceLink]:
    rows = session.execute(
        select(Source.label, Source.url).where(Source.letter_id == letter.id).order_by(Source.id)
    ).all()
    return [SourceLink(label=label or "", url=url) for label, url in rows]


def etag(kind: str, found: LetterState, *parts: object) -> str:
    """A strong validator for one rendering of a letter: what it is, which letter at which
    state, and whatever else (day, query parameters) changes the bytes."""
    return etag_for(kind, found.letter.id, found.state, *parts)
