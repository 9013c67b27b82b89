"""Webhooks: create (the secret is answered once), list, read, update, delete, send a test
event, and read the delivery attempts. Every write keeps a change record (without the secret);
webhooks are private to admins, so their changes are never events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.auth import Writer
from app.changes import record_change
from app.errors import Invalid, NotFound
from app.models import Letter, OutboxEvent, Webhook, WebhookDelivery
from app.models.base import utcnow
from app.pagination import PageParams, SortKey, keyset_page
from app.webhooks import events, outbox
from app.webhooks.schemas import WebhookCreate, WebhookUpdate
from app.webhooks.signing import new_secret
from app.webhooks.targets import TargetRefused, check_target

PUBLIC_FIELDS = ("url", "events", "letter", "milestones", "description", "active", "disabled_reason")


def status(webhook: Webhook, failing_after: int) -> str:
    if not webhook.active:
        return "disabled"
    return "failing" if webhook.consecutive_failures >= failing_after else "active"


def _snapshot(webhook: Webhook) -> dict[str, Any]:
    return {"id": webhook.id, **{field: getattr(webhook, field) for field in PUBLIC_FIELDS}}


def _check(
    session: Session, url: str | None, letter: str | None, allow_private: bool, fields: set[str]
) -> None:
    if url is not None:
        try:
            check_target(url, allow_private, must_resolve=False)
        except TargetRefused as exc:
            raise Invalid(f"url: {exc}", field="body.url") from exc
    if (
        "letter" in fields
        and letter is not None
        and session.scalar(select(Letter.id).where(Letter.slug == letter)) is None
    ):
        raise Invalid(f"no letter '{letter}'", field="body.letter")


def _end(session: Session) -> tuple[int, int]:
    """Where a new webhook starts: after every event there is now, so it hears of what
    happens from here on. On PostgreSQL that is this transaction's id: every transaction that
    writes later takes a higher one."""
    txid = events.current_txid(session)
    if txid:
        return txid, 0
    return 0, int(session.scalar(select(OutboxEvent.id).order_by(OutboxEvent.id.desc()).limit(1)) or 0)


def create_webhook(writer: Writer, data: WebhookCreate, allow_private: bool) -> Webhook:
    session = writer.session
    _check(session, data.url, data.letter, allow_private, {"letter"})
    cursor_txid, cursor_id = _end(session)
    webhook = Webhook(
        **data.model_dump(),
        secret=new_secret(),
        cursor_txid=cursor_txid,
        cursor_id=cursor_id,
        attempts=0,
        consecutive_failures=0,
    )
    session.add(webhook)
    session.flush()
    outbox.mark_passed(session, data.milestones)
    record_change(session, writer.key_name, "create", "webhook", webhook.id, after=_snapshot(webhook))
    return webhook


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return webhook


def list_webhooks(session: Session, page: PageParams) -> tuple[list[Webhook], str | None]:
    rows, cursor = keyset_page(session, select(Webhook), [SortKey(Webhook.id)], page)
    return [row[0] for row in rows], cursor


def update_webhook(writer: Writer, webhook_id: int, data: WebhookUpdate, allow_private: bool) -> Webhook:
    session = writer.session
    webhook = get_webhook(session, webhook_id)
    before = _snapshot(webhook)
    changes = data.model_dump(exclude_unset=True)
    for required in ("url", "events", "milestones", "active"):
        if required in changes and changes[required] is None:
            raise Invalid("may not be null", field=f"body.{required}")
    _check(session, changes.get("url"), changes.get("letter"), allow_private, set(changes))
    added = sorted(set(changes.get("milestones") or []) - set(webhook.milestones))
    if changes.get("active") and not webhook.active:
        # Resume where it stopped: the event it gave up on is tried again at once.
        webhook.disabled_reason = None
        webhook.attempts = 0
        webhook.retrying_since = None
        webhook.next_attempt_at = None
        webhook.consecutive_failures = 0
    if changes.get("active") is False:
        webhook.disabled_reason = "switched off by an admin"
    for field, value in changes.items():
        setattr(webhook, field, value)
    webhook.updated_at = utcnow()
    session.flush()
    outbox.mark_passed(session, added)
    record_change(
        session, writer.key_name, "update", "webhook", webhook.id, before=before, after=_snapshot(webhook)
    )
    return webhook


def delete_webhook(writer: Writer, webhook_id: int) -> None:
    session = writer.session
    webhook = get_webhook(session, webhook_id)
    before = _snapshot(webhook)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    session.delete(webhook)
    session.flush()
    record_change(session, writer.key_name, "delete", "webhook", webhook_id, before=before)


def send_test(writer: Writer, webhook_id: int) -> int:
    """Queue a `webhook.test` event for this webhook alone: it is delivered in its turn, after
    the events before it, signed like every other."""
    session = writer.session
    webhook = get_webhook(session, webhook_id)
    event_id = session.scalar(
        insert(OutboxEvent)
        .values(
            txid=events.current_txid(session),
            at=utcnow(),
            type=events.TEST,
            entity="webhook",
            action="test",
            key=str(webhook.id),
            webhook_id=webhook.id,
            data={"webhook": webhook.id, "message": "A test event from Undersigned."},
        )
        .returning(OutboxEvent.id)
    )
    if webhook.active and webhook.next_attempt_at is not None and webhook.attempts == 0:
        webhook.next_attempt_at = None
    return int(event_id or 0)


def list_deliveries(
    session: Session, webhook_id: int, page: PageParams
) -> tuple[list[WebhookDelivery], str | None]:
    get_webhook(session, webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    rows, cursor = keyset_page(session, stmt, [SortKey(WebhookDelivery.id, descending=True)], page)
    return [row[0] for row in rows], cursor
