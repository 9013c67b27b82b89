"""The reach of a campaign: distinct actors across its letters, with breakdowns."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.analytics.common import breakdowns, campaign_letters, grouped_rows
from app.analytics.results import Reach
from app.models import Campaign, Signature


def campaign_reach(session: Session, campaign: Campaign) -> Reach:
    """Distinct actors with at least one signature on the campaign's letters that still counts
    (not withdrawn). Each actor is counted once in every breakdown, by body and party as of the
    day of its latest such signature (any tie is on the same day, so it picks the same
    membership). `share_of_body` is null here: a campaign has no one date to count seats on."""
    letter_ids = [letter.id for letter in campaign_letters(session, campaign)]
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
    return Reach(
        campaign=campaign.slug,
        letters=len(letter_ids),
        distinct=sum(g.n for g in groups),
        signed_more_than_one=sum(int(g.multi) for g in groups),
        **result.model_dump(),
    )
