"""Timelines: new signatures and withdrawals per day, week or month, with the running total,
for a letter and for a campaign (one series per letter plus the distinct actors)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app import rollups
from app.analytics.common import Interval, bucket_of, bucket_range, bucket_sql, campaign_letters
from app.analytics.results import (
    CampaignEvent,
    CampaignTimeline,
    DistinctPoint,
    Point,
    Series,
    Timeline,
    TimelineEvent,
)
from app.models import Campaign, Event, Letter, LetterRollup, Signature


def _per_bucket(
    session: Session, letter_ids: list[int], interval: Interval
) -> tuple[dict[int, dict[date, int]], dict[int, dict[date, int]]]:
    """({letter id: {bucket: new}}, {letter id: {bucket: withdrawn}}), summed in SQL over the
    letters' rollups (days, not signatures); buckets with nothing in them are left out."""
    new: dict[int, dict[date, int]] = defaultdict(dict)
    gone: dict[int, dict[date, int]] = defaultdict(dict)
    for letter_id, bucket, made, withdrawn in rollups.per_day(
        session, letter_ids, bucket_sql(session, LetterRollup.day, interval)
    ):
        if made:
            new[letter_id][_as_date(bucket)] = int(made)
        if withdrawn:
            gone[letter_id][_as_date(bucket)] = int(withdrawn)
    return new, gone


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def build_points(
    new: dict[date, int], withdrawn: dict[date, int], event_buckets: list[date], interval: Interval
) -> list[Point]:
    """Consecutive points from the first signature's interval (or, with none, the first
    event's) to the last interval holding a signature, a withdrawal or an event; empty
    intervals are zero-filled; `cumulative` is the running sum of new − withdrawn."""
    if new:
        first = min(new)
    elif withdrawn or event_buckets:
        first = min([*withdrawn, *event_buckets])
    else:
        return []
    last = max([*new, *withdrawn, *event_buckets])
    points, total = [], 0
    for day in bucket_range(first, last, interval):
        total += new.get(day, 0) - withdrawn.get(day, 0)
        points.append(Point(date=day, new=new.get(day, 0), withdrawn=withdrawn.get(day, 0), cumulative=total))
    return points


def _events(session: Session, *conditions: Any) -> list[Event]:
    return list(session.scalars(select(Event).where(or_(*conditions)).order_by(Event.date, Event.id)))


def letter_timeline(session: Session, letter: Letter, interval: Interval) -> Timeline:
    news, gones = _per_bucket(session, [letter.id], interval)
    new, gone = news.get(letter.id, {}), gones.get(letter.id, {})
    events = _events(session, Event.letter_id == letter.id)
    return Timeline(
        letter=letter.slug,
        interval=interval,
        points=build_points(new, gone, [bucket_of(e.date, interval) for e in events], interval),
        events=[TimelineEvent(date=e.date, kind=e.kind, note=e.note) for e in events],
    )


def campaign_timeline(session: Session, campaign: Campaign, interval: Interval) -> CampaignTimeline:
    """One series per letter (each exactly the letter's own timeline points), and `distinct`:
    each actor counted once, in the interval of its first signature on the campaign's letters
    that still counts (not withdrawn); its last `cumulative` is the campaign's distinct reach."""
    letters = campaign_letters(session, campaign)
    ids = [letter.id for letter in letters]
    slug_of = {letter.id: letter.slug for letter in letters}
    new, gone = _per_bucket(session, ids, interval) if ids else ({}, {})
    conditions = [Event.campaign_id == campaign.id]
    if ids:
        conditions.append(Event.letter_id.in_(ids))
    events = _events(session, *conditions)
    event_buckets: dict[int, list[date]] = defaultdict(list)
    for e in events:
        if e.letter_id is not None:
            event_buckets[e.letter_id].append(bucket_of(e.date, interval))
    series = [
        Series(
            letter=letter.slug,
            points=build_points(
                new.get(letter.id, {}), gone.get(letter.id, {}), event_buckets[letter.id], interval
            ),
        )
        for letter in letters
    ]

    distinct: list[DistinctPoint] = []
    if ids:
        firsts = (
            select(Signature.actor_id, func.min(Signature.signed_on).label("first"))
            .where(Signature.letter_id.in_(ids), Signature.withdrawn_on.is_(None))
            .group_by(Signature.actor_id)
            .subquery("firsts")
        )
        bucketed = select(bucket_sql(session, firsts.c.first, interval).label("bucket")).subquery("b")
        rows = session.execute(select(bucketed.c.bucket, func.count()).group_by(bucketed.c.bucket)).all()
        per_bucket = {_as_date(b): int(n) for b, n in rows}
        if per_bucket:
            total = 0
            for day in bucket_range(min(per_bucket), max(per_bucket), interval):
                total += per_bucket.get(day, 0)
                distinct.append(DistinctPoint(date=day, new=per_bucket.get(day, 0), cumulative=total))

    return CampaignTimeline(
        campaign=campaign.slug,
        interval=interval,
        series=series,
        distinct=distinct,
        events=[
            CampaignEvent(
                date=e.date,
                kind=e.kind,
                note=e.note,
                letter=slug_of.get(e.letter_id) if e.letter_id is not None else None,
            )
            for e in events
        ],
    )
