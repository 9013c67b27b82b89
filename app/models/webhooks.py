"""The outbox of events (written in the transaction of the change they tell of), the webhooks
that subscribe to them, every delivery attempt, and the milestones each letter has passed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.audit import ChangeRecord
from app.models.base import Base, Timestamped, UTCDateTime, utcnow


class OutboxEvent(Base):
    """One event: a change record as a typed event, a milestone, or a webhook's test.

    `txid` is the writing transaction's id on PostgreSQL (0 on SQLite, which commits one writer
    at a time in id order). Readers walk events in (`txid`, `id`) order and stop short of any
    transaction still in progress, so a reader's position never passes an event that will
    commit later."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index(None, "txid", "id"), Index(None, "letter", "txid", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    type: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(50))
    action: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(300))
    letter: Mapped[str | None] = mapped_column(String(200))
    change_record_id: Mapped[int | None] = mapped_column(Integer)
    change_record: Mapped[ChangeRecord | None] = relationship(
        primaryjoin="foreign(OutboxEvent.change_record_id) == ChangeRecord.id", lazy="raise"
    )
    # For events that are not a change record (milestones, tests): their state.
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Set for an event meant for one webhook alone (its test); never in the public feed.
    webhook_id: Mapped[int | None] = mapped_column(Integer)


class Webhook(Timestamped, Base):
    """A subscriber: where to post, what to post, and where its delivery stands.

    (`cursor_txid`, `cursor_id`) is the last event dealt with (delivered or not subscribed to);
    the next matching event after it is delivered next, so one webhook's events go in order.
    A worker takes a webhook for a while (`leased_until`) and posts outside any transaction."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(JSON)
    letter: Mapped[str | None] = mapped_column(String(200))
    milestones: Mapped[list[int]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    cursor_txid: Mapped[int] = mapped_column(BigInteger, default=0)
    cursor_id: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retrying_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_token: Mapped[str | None] = mapped_column(String(40))


class WebhookDelivery(Base):
    """One attempt to post one event to one webhook, kept for the admin to read."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index(None, "webhook_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(100))
    attempt: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LetterMilestone(Base):
    """A signature count a letter has passed: its `letter.milestone` event is written once."""

    __tablename__ = "letter_milestones"

    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"), primary_key=True)
    threshold: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reached_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
