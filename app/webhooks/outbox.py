"""The outbox: every change record becomes an event in the same transaction, just before it
commits, and so do the milestones the transaction's signatures made a letter pass.

`record_change` adds its record's event beside it, so an event exists exactly when its change
committed. Milestones are looked for by a `before_commit` hook on `Session` itself, once per
letter and transaction, after the transaction's last write: every path that writes (requests,
the CLI, the bulk loaders, writes added later) goes through `record_change` and a commit."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import BigInteger, event, func, insert, literal, select
from sqlalchemy.orm import Session

from app.db.engine import insert_for
from app.models import ChangeRecord, Letter, LetterMilestone, LetterPair, LetterRollup, OutboxEvent, Webhook
from app.webhooks import events

MILESTONE_LETTERS = "undersigned_milestone_letters"
THRESHOLDS = "undersigned_milestone_thresholds"
# Writes that change how many signatures a letter has.
COUNTING = {"signature", "import"}


def add_event(session: Session, record: ChangeRecord) -> None:
    """The event of a change record, inserted with it (at the same flush, in its transaction);
    the letters whose signatures it counts are looked at for milestones when it commits."""
    if record.entity in events.PRIVATE_ENTITIES:
        return
    letter = events.letter_of(record.entity, record.entity_key)
    session.add(
        OutboxEvent(
            txid=events.txid_expression(session),
            type=events.event_type(record.entity, record.action),
            entity=record.entity,
            action=record.action,
            key=record.entity_key,
            letter=letter,
            change_record=record,
        )
    )
    if letter and (record.entity in COUNTING or record.action in COUNTING):
        chosen: dict[str, None] = session.info.setdefault(MILESTONE_LETTERS, {})
        chosen[letter] = None
        if THRESHOLDS not in session.info:  # now, before the write takes the letter's locks
            session.info[THRESHOLDS] = thresholds(session)


@event.listens_for(Session, "before_commit")
def _write_milestones(session: Session) -> None:
    letters: dict[str, None] | None = session.info.pop(MILESTONE_LETTERS, None)
    for slug in letters or ():
        _milestones(session, slug)
    session.info.pop(THRESHOLDS, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, _previous: Any) -> None:
    if not session.in_transaction():
        session.info.pop(MILESTONE_LETTERS, None)
        session.info.pop(THRESHOLDS, None)


def thresholds(session: Session) -> set[int]:
    """The counts that are milestones: the default ladder and every webhook's own."""
    found = set(events.DEFAULT_MILESTONES)
    for (chosen,) in session.execute(select(Webhook.milestones).where(Webhook.active.is_(True))):
        found.update(int(t) for t in chosen or [])
    return found


def _milestones(session: Session, slug: str) -> None:
    """Write a `letter.milestone` event for each milestone the letter passed now, once: a
    letter that falls back under one and passes it again has passed it already. It runs after
    the transaction's writes, while the letter's row is locked by them, so it is one read when
    no milestone was passed: the count, and how many of the milestones under it were passed.
    The count is the letter's signatures that still count, the diagonal row of its pair counts
    (one row by its key, which this transaction's writes hold already): summing its rollups
    instead cost a letter of 180,000 signatures tens of milliseconds, and every writer of the
    letter waited for it."""
    chosen: set[int] = session.info.get(THRESHOLDS) or thresholds(session)
    count = (
        select(func.coalesce(func.max(LetterPair.common), 0))
        .where(LetterPair.letter_a == Letter.id, LetterPair.letter_b == Letter.id)
        .correlate(Letter)  # (also inside `passed`: else it joins every letter's diagonal)
        .scalar_subquery()
    )
    passed = (
        select(func.count())
        .where(
            LetterMilestone.letter_id == Letter.id,
            LetterMilestone.threshold <= count,
            LetterMilestone.threshold.in_(sorted(chosen)),
        )
        .scalar_subquery()
    )
    row = session.execute(select(Letter.id, count, passed).where(Letter.slug == slug)).first()
    if row is None:  # deleted in this transaction
        return
    letter_id, recorded_now = int(row[0]), int(row[1] or 0)
    candidates = {t for t in chosen if t <= recorded_now}
    if len(candidates) == int(row[2] or 0):
        return
    reached = set(
        session.scalars(
            select(LetterMilestone.threshold).where(
                LetterMilestone.letter_id == letter_id, LetterMilestone.threshold.in_(candidates)
            )
        )
    )
    new = sorted(candidates - reached)
    dialect = session.get_bind().dialect.name
    txid = events.current_txid(session)
    session.execute(
        insert_for(dialect, LetterMilestone).on_conflict_do_nothing(),
        [{"letter_id": letter_id, "threshold": t} for t in new],
    )
    session.execute(
        insert(OutboxEvent),
        [
            {
                "txid": txid,
                "type": events.MILESTONE,
                "entity": "letter",
                "action": "milestone",
                "key": slug,
                "letter": slug,
                "data": {"letter": slug, "milestone": t, "recorded": recorded_now},
            }
            for t in new
        ],
    )


def mark_passed(session: Session, chosen: list[int]) -> None:
    """Count as passed already the milestones in `chosen` that letters are past today, so a
    webhook that adds a milestone hears of letters that pass it from now on, not of the past.
    One INSERT … SELECT over the rollups."""
    if not chosen:
        return
    today = date.today()
    totals = (
        select(
            LetterRollup.letter_id.label("letter_id"),
            (func.sum(LetterRollup.new) - func.sum(LetterRollup.withdrawn)).label("n"),
        )
        .where(LetterRollup.day <= today)
        .group_by(LetterRollup.letter_id)
        .subquery()
    )
    dialect = session.get_bind().dialect.name
    for threshold in sorted(set(chosen)):
        rows = select(totals.c.letter_id, literal(threshold, BigInteger)).where(totals.c.n >= threshold)
        session.execute(
            insert_for(dialect, LetterMilestone)
            .from_select(["letter_id", "threshold"], rows)
            .on_conflict_do_nothing()
        )
