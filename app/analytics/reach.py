"""The reach of a campaign: distinct actors across its letters, with breakdowns."""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.analytics.common import breakdowns, campaign_letters, grouped_rows, with_shares
from app.analytics.results import Reach
from app.models import Campaign, Signature


def campaign_reach(session: Session, campaign: Campaign) -> Reach:
    """Distinct actors with at least one signature on the campaign's letters that still counts
    (not withdrawn). Each actor is counted once in every breakdown, by body and party as of the
    day of its latest such signature (any tie is on the same day, so it picks the same
    membership). `share_of_body` is the count over the seats held in the body on `seats_on`:
    the date of the campaign's newest letter (today when none is dated), the day a letter's
    counts use for a campaign of one letter, or of letters of one day."""
    letters = campaign_letters(session, campaign)
    letter_ids = [letter.id for letter in letters]
    seats_day = max((letter.published_on for letter in letters if letter.published_on), default=date.today())
    per_actor = (
        select(
            Signature.actor_id,
            func.max(Signature.signed_on).label("day"),
            case((func.count() > 1, 1), else_=0).label("multi"),
        )
        .where(Signature.letter_id.in_(letter_ids), Signature.withdrawn_on.is_(None))
        .group_by(Signature.actor_id)
        .subquery("per_actor")
    )
    groups = grouped_rows(session, per_actor, sums=("multi",)) if letter_ids else []
    result = breakdowns(groups)
    result.by_body = with_shares(session, result.by_body, seats_day)
    return Reach(
        campaign=campaign.slug,
        letters=len(letter_ids),
        distinct=sum(g.n for g in groups),
        signed_more_than_one=sum(int(g.multi) for g in groups),
        seats_on=seats_day,
        **result.model_dump(),
    )
