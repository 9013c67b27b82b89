"""Counts of one letter as of a day, with breakdowns by kind, body, party, country, org_type."""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from app.analytics.common import breakdowns, grouped_rows, seats_on
from app.analytics.results import BodyEntry, Counts
from app.models import Letter, Signature


def letter_counts(session: Session, letter: Letter, as_of: date | None = None) -> Counts:
    """`recorded`: signatures made on or before the day and not withdrawn on or before it;
    `withdrawn`: those made and withdrawn by then. Breakdowns are over the recorded ones, by
    party and body as of each signature's own day. Three statements: the totals, one GROUP BY
    for the breakdowns, one for the seats of the bodies that appear."""
    day = as_of or date.today()
    made = and_(Signature.letter_id == letter.id, Signature.signed_on <= day)
    gone = and_(Signature.withdrawn_on.is_not(None), Signature.withdrawn_on <= day)
    totals = session.execute(
        select(func.count(), func.coalesce(func.sum(case((gone, 1), else_=0)), 0)).where(made)
    ).one()
    recorded_rows = (
        select(Signature.actor_id, Signature.signed_on.label("day"))
        .where(made, or_(Signature.withdrawn_on.is_(None), Signature.withdrawn_on > day))
        .subquery("recorded")
    )
    result = breakdowns(grouped_rows(session, recorded_rows))
    seats_day = letter.published_on or day
    seats = seats_on(session, [e.key for e in result.by_body if e.key is not None], seats_day)
    by_body = [
        BodyEntry(
            key=e.key,
            label=e.label,
            count=e.count,
            share_of_body=(e.count / seats[e.key]) if e.key is not None and seats.get(e.key) else None,
        )
        for e in result.by_body
    ]
    withdrawn = int(totals[1])
    return Counts(
        letter=letter.slug,
        as_of=as_of,
        claimed=letter.claimed_signatory_count,
        recorded=int(totals[0]) - withdrawn,
        withdrawn=withdrawn,
        by_kind=result.by_kind,
        by_body=by_body,
        by_party=result.by_party,
        by_country=result.by_country,
        by_org_type=result.by_org_type,
    )
