"""Change records: every write keeps who (API key name), when, what and the previous values."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from app.models import Base, ChangeRecord
from app.webhooks import outbox

# `merge`: actors folded into one; `move`: a signature moved to another actor; `retract`: a
# signature removed as a mistake (not a withdrawal).
Action = Literal["create", "update", "withdraw", "delete", "import", "load", "merge", "move", "retract"]


def snapshot(obj: Base) -> dict[str, Any]:
    """The column values of an ORM object, JSON-ready (dates as ISO strings)."""
    out: dict[str, Any] = {}
    for attr in inspect(obj).mapper.column_attrs:
        value = getattr(obj, attr.key)
        out[attr.key] = value.isoformat() if isinstance(value, date | datetime) else value
    out.pop("search_text", None)
    out.pop("match_name", None)
    out.pop("variant_key", None)
    return out


def record_change(
    session: Session,
    key_name: str,
    action: Action,
    entity: str,
    entity_key: str | int,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> ChangeRecord:
    record = ChangeRecord(
        key_name=key_name,
        action=action,
        entity=entity,
        entity_key=str(entity_key),
        before=before,
        after=after,
    )
    session.add(record)
    outbox.add_event(session, record)
    return record
