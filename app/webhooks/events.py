"""Events: what a change record is called when it is told (`signature.withdrawn`), which letter
it belongs to, the URL of its resource, and reading events in order without passing a
transaction still in progress (shared by the changes feed and the delivery worker).

Types are `<entity>.<action in the past tense>`, made from the change record's entity and
action by one rule, so a new kind of write (an actor `merge`, a signature `move`) is a new type
(`actor.merged`, `signature.moved`) without more work here. An import of signatures into a
letter is one event, `signatures.imported`, with its counts and the list's URL: an import
writes its rows set-based and one event per row would cost the bulk path its speed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Text,
    and_,
    cast,
    false,
    func,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.orm import Session

from app.models import ChangeRecord, OutboxEvent

PAST = {
    "create": "created",
    "update": "updated",
    "withdraw": "withdrawn",
    "delete": "deleted",
    "import": "imported",
    "load": "loaded",
    "merge": "merged",
    "move": "moved",
    "retract": "retracted",
    "milestone": "milestone",
    "test": "test",
}
SPECIAL = {("letter", "import"): "signatures.imported", ("registry", "load"): "registry.loaded"}
# Changes to these are nobody's business but the admins': they never become events.
PRIVATE_ENTITIES = frozenset({"webhook", "api_key"})
# Entities keyed `<letter slug>/<id>`: the letter's parts.
LETTER_PARTS = {"signature": "signatures", "recipient": "recipients", "event": "events"}
LETTER_PARTS |= {"claim": "claims", "source": "sources"}
ENTITIES: tuple[str, ...] = (
    "letter",
    "signature",
    "recipient",
    "event",
    "claim",
    "source",
    "campaign",
    "actor",
)
ENTITIES += ("membership", "body", "party")
MILESTONE = "letter.milestone"
TEST = "webhook.test"
DEFAULT_MILESTONES = (10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000)


def past(action: str) -> str:
    if action in PAST:
        return PAST[action]
    return action + ("d" if action.endswith("e") else "ed")


def event_type(entity: str, action: str) -> str:
    return SPECIAL.get((entity, action)) or f"{entity}.{past(action)}"


def known_types() -> list[str]:
    """Every type a write makes today (the entities' own, the special ones, milestones, tests)."""
    actions = ("create", "update", "withdraw", "delete", "merge", "move", "retract")
    made = {event_type(entity, action) for entity in ENTITIES for action in actions}
    return sorted(made | set(SPECIAL.values()) | {"demo.loaded", MILESTONE, TEST})


TYPE_PATTERN = re.compile(r"^(\*|[a-z_]+\.(\*|[a-z_]+))$")


def check_type_patterns(patterns: Iterable[str]) -> str | None:
    """The first pattern that is neither a known type, `entity.*` nor `*`; None if all are."""
    known = set(known_types())
    entities = {t.split(".")[0] for t in known}
    for pattern in patterns:
        if not TYPE_PATTERN.match(pattern):
            return pattern
        head, _, tail = pattern.partition(".")
        if pattern != "*" and (
            (tail == "*" and head not in entities) or (tail != "*" and pattern not in known)
        ):
            return pattern
    return None


def type_matches(patterns: Sequence[str], etype: str) -> bool:
    return any(p == "*" or p == etype or (p.endswith(".*") and etype.startswith(p[:-1])) for p in patterns)


def type_filter(patterns: Sequence[str]) -> ColumnElement[bool]:
    """The SQL of `type_matches`."""
    if not patterns or "*" in patterns:
        return true()
    exact = [p for p in patterns if not p.endswith(".*")]
    clauses: list[ColumnElement[bool]] = [OutboxEvent.type.in_(exact)] if exact else []
    clauses += [OutboxEvent.type.startswith(p[:-1], autoescape=True) for p in patterns if p.endswith(".*")]
    return or_(false(), *clauses)


def letter_of(entity: str, key: str) -> str | None:
    """The slug of the letter a change belongs to, if it belongs to one."""
    if entity == "letter":
        return key
    if entity in LETTER_PARTS and "/" in key:
        return key.split("/", 1)[0]
    return None


def resource_path(entity: str, action: str, key: str, state: dict[str, Any] | None) -> str | None:
    """The API path of the resource an event is about (it may be gone: a deletion)."""
    if (entity, action) == ("letter", "import"):
        return f"/v1/letters/{key}/signatures"
    if entity in LETTER_PARTS and "/" in key:
        slug, _, rest = key.partition("/")
        return f"/v1/letters/{slug}/{LETTER_PARTS[entity]}/{rest}"
    plain = {"letter": "letters", "campaign": "campaigns", "actor": "actors", "body": "bodies"}
    plain |= {"party": "parties", "demo": "campaigns"}
    if entity in plain:
        return f"/v1/{plain[entity]}/{key}"
    if entity == "membership" and state and state.get("actor_id") is not None:
        return f"/v1/actors/{state['actor_id']}/memberships/{key}"
    return None


@dataclass(frozen=True)
class Position:
    """Where a reader stands in the events: the last (`txid`, `id`) it has seen."""

    txid: int = 0
    id: int = 0


def visible_now(session: Session) -> ColumnElement[bool]:
    """Events every one below which is committed (or never will be), plus the reader's own.

    PostgreSQL: below the horizon — the oldest transaction still in progress, other than the
    reader's own and those known to be of another database or of no client (autovacuum),
    which write no events of ours; when none is listed, the snapshot's `xmax` (every
    transaction at or above it had not ended when the snapshot was taken). SQLite: all of them;
    one writer at a time commits its events in id order."""
    if session.get_bind().dialect.name != "postgresql":
        return true()
    sql = text(
        "SELECT coalesce(min(x::text::bigint), pg_snapshot_xmax(pg_current_snapshot())::text::bigint),"
        " pg_current_xact_id_if_assigned()::text::bigint"
        " FROM pg_snapshot_xip(pg_current_snapshot()) AS x"
        " WHERE x IS DISTINCT FROM pg_current_xact_id_if_assigned()"
        " AND NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.backend_xid = x::xid"
        " AND (a.datname IS DISTINCT FROM current_database() OR a.backend_type <> 'client backend'))"
    )
    limit, own = session.execute(sql).one()
    below = OutboxEvent.txid < int(limit)
    return below if own is None else or_(below, OutboxEvent.txid == int(own))


def current_txid(session: Session) -> int:
    """The writing transaction's id (PostgreSQL; it takes one now if it had none), else 0."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    return int(session.scalar(text("SELECT pg_current_xact_id()::text::bigint")) or 0)


def txid_expression(session: Session) -> Any:
    """The writing transaction's id as a column value: evaluated by the INSERT itself, so it
    costs no round trip. 0 on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return 0
    return cast(cast(func.pg_current_xact_id(), Text), BigInteger)


def after(position: Position) -> ColumnElement[bool]:
    return tuple_(OutboxEvent.txid, OutboxEvent.id) > tuple_(position.txid, position.id)


def events_query(where: Sequence[ColumnElement[bool]]) -> Select[OutboxEvent, ChangeRecord | None]:
    """Events (with their change record, if any) in order."""
    return (
        select(OutboxEvent, ChangeRecord)
        .outerjoin(ChangeRecord, ChangeRecord.id == OutboxEvent.change_record_id)
        .where(and_(true(), *where))
        .order_by(OutboxEvent.txid, OutboxEvent.id)
    )


def event_data(event: OutboxEvent, record: ChangeRecord | None, base_url: str | None) -> dict[str, Any]:
    """An event as the feed lists it and a webhook receives it as `data`."""
    state = record.after if record is not None else event.data
    previous = record.before if record is not None else None
    path = resource_path(event.entity, event.action, event.key, state or previous)
    return {
        "id": event.id,
        "type": event.type,
        "at": _iso(event.at),
        "resource": event.entity,
        "action": event.action,
        "key": event.key,
        "letter": event.letter,
        "path": path,
        "url": f"{base_url.rstrip('/')}{path}" if base_url and path else None,
        "state": state,
        "previous": previous,
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Feed:
    """What the feed lists: events of these types (patterns), of this letter."""

    types: Sequence[str] = ()
    letter: str | None = None


def feed_filters(feed: Feed, start: Position) -> list[ColumnElement[bool]]:
    where = [after(start), OutboxEvent.webhook_id.is_(None), type_filter(feed.types)]
    if feed.letter:
        where.append(OutboxEvent.letter == feed.letter)
    return where


def read_feed(
    session: Session, feed: Feed, start: Position, limit: int
) -> tuple[list[tuple[OutboxEvent, ChangeRecord | None]], Position, bool]:
    """One page of the feed after `start`: its events, where to ask next, and whether more are
    ready now. Stops short of events a transaction still in progress may yet commit."""
    where = [*feed_filters(feed, start), visible_now(session)]
    rows = session.execute(events_query(where).limit(limit + 1)).all()
    page = [(row[0], row[1]) for row in rows[:limit]]
    last = page[-1][0] if page else None
    return page, Position(last.txid, last.id) if last else start, len(rows) > limit


def latest(session: Session) -> Position:
    """The position after every event committed now (where a reader who wants only what
    happens next starts)."""
    newest = session.execute(
        select(OutboxEvent.txid, OutboxEvent.id)
        .where(visible_now(session))
        .order_by(OutboxEvent.txid.desc(), OutboxEvent.id.desc())
        .limit(1)
    ).first()
    return Position(int(newest[0]), int(newest[1])) if newest else Position()
