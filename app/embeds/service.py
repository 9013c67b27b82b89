"""Reads the embeds need: a letter with its cheap validator (`app.http.validators.letter_state`,
shared with the counts route), its sources, its counts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.analytics.counts import letter_counts
from app.analytics.results import Counts
from app.embeds.widget import SourceLink
from app.http.validators import LetterState, letter_state
from app.models import Letter, Source

__all__ = ["LetterState", "counts_of", "letter_state", "source_links"]


def counts_of(session: Session, letter: Letter) -> Counts:
    """Counts as of today: the document `GET /v1/letters/{slug}/counts` returns."""
    return letter_counts(session, letter, None)


def source_links(session: Session, letter: Letter) -> list[SourceLink]:
    rows = session.execute(
        select(Source.label, Source.url).where(Source.letter_id == letter.id).order_by(Source.id)
    ).all()
    return [SourceLink(label=label or "", url=url) for label, url in rows]
