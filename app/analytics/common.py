"""What every analytic shares: lookups, breakdowns of a set of (actor, day) rows computed by
one GROUP BY (by the seat held that day: `app.seats`), and date buckets that agree on SQLite
and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import Date, DateTime, cast, func, literal_column, select, type_coerce
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from app.analytics.results import BodyEntry, Breakdowns, Entry
from app.breakdowns import BREAKDOWNS
from app.config import get_settings
from app.countries import country_name
from app.db.engine import is_sqlite
from app.errors import Invalid, NotFound
from app.models import Actor, Body, Campaign, Letter, Membership, Party
from app.seats import held_on, seats_in
from app.vocabulary import ACTOR_KIND_LABELS, ORG_TYPE_LABELS

Interval = Literal["day", "week", "month"]
E = TypeVar("E", bound=Entry)

UNKNOWN = "Unknown"


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


# --- breakdowns ------------------------------------------------------------------------------


def sort_entries(entries: Iterable[E]) -> list[E]:
    """Count descending, then key ascending, a null key after the others with the same count."""
    return sorted(entries, key=lambda e: (-e.count, e.key is None, e.key or ""))


def grouped_rows(session: Session, rows: Subquery, sums: tuple[str, ...] = ()) -> list[Any]:
    """One GROUP BY over `rows` (columns `actor_id`, `day`, and the integer columns named in
    `sums`, summed per group): counts per combination of the breakdowns' keys
    (`app.breakdowns`: the actor's kind, country and org type, the body and party of the seat
    held on `day`). One row per combination present (a handful), never one per signature."""
    seat = aliased(Membership)
    stmt = (
        select(
            *(b.attribute.label(b.key) for b in BREAKDOWNS),
            Body.name.label("body_name"),
            Party.name.label("party_name"),
            func.count().label("n"),
            *(func.sum(rows.c[name]).label(name) for name in sums),
        )
        .select_from(rows)
        .join(Actor, Actor.id == rows.c.actor_id)
        .outerjoin(seat, held_on(seat, rows.c.actor_id, rows.c.day))
        .outerjoin(Body, Body.id == seat.body_id)
        .outerjoin(Party, Party.id == seat.party_id)
        .group_by(*(b.attribute for b in BREAKDOWNS), Body.name, Party.name)
    )
    return list(session.execute(stmt).all())


# The labels of the breakdowns of the actor's attributes (the seat's are its body's and party's
# names); a kind or org type outside its vocabulary cannot be stored (the CHECK constraints).
LABELS: dict[str, Any] = {
    "kind": ACTOR_KIND_LABELS.__getitem__,
    "country": country_name,
    "org_type": ORG_TYPE_LABELS.__getitem__,
}


def breakdowns(groups: list[Any]) -> Breakdowns:
    """Fold the grouped rows (a column per breakdown key, and `body_name`, `party_name`) into
    the breakdowns (labels, Unknown for nulls, sorted)."""
    tallies: dict[str, dict[str | None, int]] = {b.key: defaultdict(int) for b in BREAKDOWNS}
    names: dict[str, dict[str, str]] = {"body": {}, "party": {}}  # (the seat's: slug -> name)
    for g in groups:
        for b in BREAKDOWNS:
            tallies[b.key][getattr(g, b.key) or None] += g.n
        for key, seen in names.items():
            if (slug := getattr(g, key)) is not None:
                seen[slug] = getattr(g, f"{key}_name")

    def entries(key: str) -> list[Entry]:
        label = LABELS.get(key) or names[key].__getitem__
        return sort_entries(
            Entry(key=k, label=UNKNOWN if k is None else label(k), count=n)
            for k, n in tallies[key].items()
            if n > 0
        )

    by_key: dict[str, list[Any]] = {f"by_{b.key}": entries(b.key) for b in BREAKDOWNS}
    by_key["by_body"] = [BodyEntry(**e.model_dump(), share_of_body=None) for e in by_key["by_body"]]
    return Breakdowns(**by_key)


def seats_on(session: Session, body_slugs: list[str], day: date) -> dict[str, int]:
    """Seats of each body on `day`, by slug (`app.seats.seats_in`)."""
    return {str(slug): n for slug, n in seats_in(session, Body.slug, body_slugs, day).items()}


def with_shares(session: Session, by_body: list[BodyEntry], day: date) -> list[BodyEntry]:
    """`by_body` with `share_of_body`: each count over the seats held in its body on `day`
    (null for the Unknown line and for a body with no seat that day). One query."""
    seats = seats_on(session, [e.key for e in by_body if e.key is not None], day)
    return [
        e.model_copy(
            update={
                "share_of_body": e.count / seats[e.key] if e.key is not None and seats.get(e.key) else None
            }
        )
        for e in by_body
    ]


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
