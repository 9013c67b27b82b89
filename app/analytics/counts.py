"""Counts of one letter as of a day, with breakdowns by kind, body, party, country, org_type."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app import rollups
from app.analytics.common import breakdowns, with_shares
from app.analytics.results import Counts
from app.models import Letter


def letter_counts(session: Session, letter: Letter, as_of: date | None = None) -> Counts:
    """`recorded`: signatures made on or before the day and not withdrawn on or before it;
    `withdrawn`: those made and withdrawn by then. Breakdowns are over the recorded ones, by
    party and body as of each signature's own day. Two statements, whatever the letter's size:
    one sum over the letter's rollups (app.rollups) up to the day, one for the seats of the
    bodies that appear."""
    day = as_of or date.today()
    rows = rollups.groups(session, letter.id, day)
    result = breakdowns(rows)
    by_body = with_shares(session, result.by_body, letter.published_on or day)
    return Counts(
        letter=letter.slug,
        as_of=as_of,
        claimed=letter.claimed_signatory_count,
        recorded=sum(int(r.n) for r in rows),
        withdrawn=sum(int(r.gone) for r in rows),
        by_kind=result.by_kind,
        by_body=by_body,
        by_party=result.by_party,
        by_country=result.by_country,
        by_org_type=result.by_org_type,
    )
