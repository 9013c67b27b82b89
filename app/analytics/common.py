"""What every analytic shares: lookups, the "membership valid on a day" rule, breakdowns of a
set of (actor, day) rows computed by one GROUP BY, and date buckets that agree on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import Date, DateTime, and_, cast, func, literal_column, or_, select, type_coerce
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from app.analytics.countries import country_name
from app.analytics.results import BodyEntry, Breakdowns, Entry
from app.config import get_settings
from app.db.engine import is_sqlite
from app.errors import Invalid, NotFound
from app.models import Actor, Body, Campaign, Letter, Membership, Party

Interval = Literal["day", "week", "month"]
E = TypeVar("E", bound=Entry)

UNKNOWN = "Unknown"
KIND_LABELS = {"person": "Person", "organisation": "Organisation"}
ORG_TYPE_LABELS = {
    "ngo": "NGO",
    "union": "Union",
    "faith": "Faith",
    "academic": "Academic",
    "business": "Business",
    "government": "Government",
    "intergovernmental": "Intergovernmental",
    "other": "Other",
}


# --- lookups ---------------------------------------------------------------------------------


def get_letter(session: Session, slug: str) -> Letter:
    letter = session.scalar(select(Letter).where(Letter.slug == slug))
    if letter is None:
        raise NotFound(f"no letter with slug '{slug}'")
    return letter


def get_campaign(session: Session, slug: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        raise NotFound(f"no campaign with slug '{slug}'")
    return campaign


def campaign_letters(session: Session, campaign: Campaign) -> list[Letter]:
    """The campaign's letters in a stable order (by id, as `GET /v1/campaigns/{slug}` lists them)."""
    return list(session.scalars(select(Letter).where(Letter.campaign_id == campaign.id).order_by(Letter.id)))


def valid_on(membership: Any, day: Any) -> ColumnElement[bool]:
    """A membership is valid on a day when it started on or before it and has not ended before it."""
    return and_(membership.start_date <= day, or_(membership.end_date.is_(None), membership.end_date >= day))


def chosen_membership(actor_id: Any, day: Any) -> ColumnElement[Any]:
    """The id of the one membership an actor is counted under on `day` (correlated scalar subquery).

    Memberships are dated: the one valid that day counts. If several are valid on the same day
    (overlapping seats, or a switch recorded with the old seat ending on the day the new one
    starts), the latest-starting one wins, then the lowest id — so each signature is counted
    once in each breakdown and every breakdown sums to the total."""
    m = aliased(Membership)
    return (
        select(m.id)
        .where(m.actor_id == actor_id, valid_on(m, day))
        .order_by(m.start_date.desc(), m.id.asc())
        .limit(1)
        .correlate_except(m)
        .scalar_subquery()
    )


# --- breakdowns ------------------------------------------------------------------------------


def sort_entries(entries: Iterable[E]) -> list[E]:
    """Count descending, then key ascending, a null key after the others with the same count."""
    return sorted(entries, key=lambda e: (-e.count, e.key is None, e.key or ""))


def grouped_rows(session: Session, rows: Subquery, sums: tuple[str, ...] = ()) -> list[Any]:
    """One GROUP BY over `rows` (columns `actor_id`, `day`, and the integer columns named in
    `sums`, summed per group): counts per combination of kind, country, org_type and the body
    and party of the membership valid on `day`. The result has one row per combination present
    (a handful), never one per signature."""
    picked = select(
        rows.c.actor_id,
        chosen_membership(rows.c.actor_id, rows.c.day).label("membership_id"),
        *(rows.c[name] for name in sums),
    ).subquery("picked")
    stmt = (
        select(
            Actor.kind,
            Actor.country,
            Actor.org_type,
            Body.slug.label("body_slug"),
            Body.name.label("body_name"),
            Party.slug.label("party_slug"),
            Party.name.label("party_name"),
            func.count().label("n"),
            *(func.sum(picked.c[name]).label(name) for name in sums),
        )
        .select_from(picked)
        .join(Actor, Actor.id == picked.c.actor_id)
        .outerjoin(Membership, Membership.id == picked.c.membership_id)
        .outerjoin(Body, Body.id == Membership.body_id)
        .outerjoin(Party, Party.id == Membership.party_id)
        .group_by(Actor.kind, Actor.country, Actor.org_type, Body.slug, Body.name, Party.slug, Party.name)
    )
    return list(session.execute(stmt).all())


def breakdowns(groups: list[Any]) -> Breakdowns:
    """Fold the grouped rows into the five breakdowns (labels, Unknown for nulls, sorted)."""
    tallies: dict[str, dict[str | None, int]] = {
        name: defaultdict(int) for name in ("kind", "body", "party", "country", "org_type")
    }
    body_names: dict[str, str] = {}
    party_names: dict[str, str] = {}
    for g in groups:
        tallies["kind"][g.kind] += g.n
        tallies["country"][g.country or None] += g.n
        tallies["org_type"][g.org_type or None] += g.n
        tallies["body"][g.body_slug] += g.n
        tallies["party"][g.party_slug] += g.n
        if g.body_slug is not None:
            body_names[g.body_slug] = g.body_name
        if g.party_slug is not None:
            party_names[g.party_slug] = g.party_name

    def entries(name: str, label: Any) -> list[Entry]:
        return sort_entries(
            Entry(key=k, label=UNKNOWN if k is None else label(k), count=n)
            for k, n in tallies[name].items()
            if n > 0
        )

    return Breakdowns(
        by_kind=entries("kind", lambda k: KIND_LABELS.get(k, k.capitalize())),
        by_body=[
            BodyEntry(key=e.key, label=e.label, count=e.count, share_of_body=None)
            for e in entries("body", body_names.__getitem__)
        ],
        by_party=entries("party", party_names.__getitem__),
        by_country=entries("country", country_name),
        by_org_type=entries("org_type", lambda k: ORG_TYPE_LABELS.get(k, k.capitalize())),
    )


def seats_on(session: Session, body_slugs: list[str], day: date) -> dict[str, int]:
    """Seats held in each body on `day`: distinct actors with a membership valid that day."""
    if not body_slugs:
        return {}
    stmt = (
        select(Body.slug, func.count(func.distinct(Membership.actor_id)))
        .join(Membership, Membership.body_id == Body.id)
        .where(Body.slug.in_(body_slugs), valid_on(Membership, day))
        .group_by(Body.slug)
    )
    return {str(slug): int(n) for slug, n in session.execute(stmt).all()}


# --- date buckets ----------------------------------------------------------------------------


def bucket_sql(session: Session, column: Any, interval: Interval) -> ColumnElement[date]:
    """The first day of the interval holding `column`, in SQL: ISO weeks start on Monday,
    months on the 1st. PostgreSQL truncates a timestamp without time zone (no session time
    zone involved); SQLite moves to the next Sunday (or stays on one), then back six days."""
    if interval == "day":
        return type_coerce(column, Date)
    if is_sqlite(session):
        modifiers = ("weekday 0", "-6 days") if interval == "week" else ("start of month",)
        return type_coerce(func.date(column, *(literal_column(f"'{m}'") for m in modifiers)), Date)
    return cast(func.date_trunc(literal_column(f"'{interval}'"), cast(column, DateTime)), Date)


def bucket_of(day: date, interval: Interval) -> date:
    """The same bucket, in Python (for the few dates that are not signatures: events)."""
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def next_bucket(day: date, interval: Interval) -> date:
    """The next bucket's first day; the last day there is (9999-12-31) when there is none, so
    a date at the end of the calendar draws as any other."""
    if day.year == date.max.year and (interval == "month" or day > date.max - timedelta(days=7)):
        return date.max if day.month == 12 or interval != "month" else date(day.year, day.month + 1, 1)
    if interval == "day":
        return day + timedelta(days=1)
    if interval == "week":
        return day + timedelta(days=7)
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


class TimelineTooLong(Invalid):
    """A timeline would hold more points than `MAX_TIMELINE_POINTS`: a 422 that says the limit
    (a coarser interval answers it)."""


def bucket_count(first: date, last: date, interval: Interval) -> int:
    if interval == "day":
        return (last - first).days + 1
    if interval == "week":
        return (last - first).days // 7 + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1


def bucket_range(first: date, last: date, interval: Interval, limit: int | None = None) -> list[date]:
    """Every bucket from `first` to `last` (both already bucketed), without gaps; more than
    `limit` (default `MAX_TIMELINE_POINTS`) is a `TimelineTooLong`, found before any is made."""
    limit = limit or get_settings().max_timeline_points
    if (count := bucket_count(first, last, interval)) > limit:
        raise TimelineTooLong(
            f"the {interval} timeline would have {count} points, over the limit of {limit} "
            "(MAX_TIMELINE_POINTS); ask for a coarser interval",
            field="query.interval",
        )
    out = [first]
    day = first
    while day < last:  # (never a bucket past `last`: after 9999-12 there is no month)
        day = next_bucket(day, interval)
        out.append(day)
    return out
