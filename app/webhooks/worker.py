"""The delivery worker: posts the outbox's events to their webhooks, in order per webhook,
at least once.

A lane takes one webhook that has events waiting (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
several workers in several processes never take the same one) and leases it for a while, in a
short transaction; it posts outside any transaction, then records each attempt and moves the
webhook's position in another. A failure schedules a retry (exponential backoff with jitter)
and stops that webhook's queue until then, so its events stay in order. A worker killed
mid-delivery leaves its lease to run out; whoever takes the webhook next posts the event
again (receivers de-duplicate by `webhook-id`, as the Standard Webhooks specification says).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, exists, insert, or_, select, true, tuple_, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database, session_scope
from app.models import ChangeRecord, OutboxEvent, Webhook, WebhookDelivery
from app.models.base import utcnow
from app.webhooks import events, signing
from app.webhooks.events import Position
from app.webhooks.targets import TargetRefused, check_target

log = logging.getLogger("undersigned.webhooks")
BATCH = 100
MAX_DELAY_SECONDS = 6 * 3600


@dataclass
class Claim:
    """A webhook this lane holds, as it stood when taken."""

    id: int
    url: str
    secret: str
    events: list[str]
    letter: str | None
    milestones: list[int]
    position: Position
    attempts: int
    retrying_since: datetime | None
    consecutive_failures: int
    token: str


@dataclass
class Outcome:
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int


def backoff(attempt: int, base: float) -> float:
    """Seconds before retry number `attempt` (1, 2, …): `base` doubling each time, up to six
    hours, each drawn between half and all of it so failed receivers are not all hit at once."""
    delay = min(base * 2.0 ** max(attempt - 1, 0), MAX_DELAY_SECONDS)
    return delay * (0.5 + random.random() / 2)


class DeliveryWorker:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.lease = timedelta(seconds=settings.webhook_timeout_seconds + 5)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Deliver until `stop()`: `webhook_concurrency` webhooks at a time."""
        timeout = httpx.Timeout(self.settings.webhook_timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            lanes = [self._lane(client, n) for n in range(self.settings.webhook_concurrency)]
            await asyncio.gather(*lanes)

    async def _lane(self, client: httpx.AsyncClient, number: int) -> None:
        while not self._stopping.is_set():
            try:
                claim = await asyncio.to_thread(self._claim)
                if claim is not None:
                    await self._serve(client, claim)
                    continue
            except Exception:  # the database went away for a moment: try again later
                log.exception("webhook delivery lane %d failed; retrying", number)
            await self._sleep(self.settings.webhook_poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- taking a webhook --------------------------------------------------------------------

    def _claim(self) -> Claim | None:
        with session_scope(self.database.read_sessions) as session:
            if session.scalar(self._due(session, utcnow()).with_only_columns(Webhook.id).limit(1)) is None:
                return None
        with session_scope(self.database.write_sessions) as session:
            now = utcnow()
            webhook_id = session.scalar(
                self._due(session, now)
                .with_only_columns(Webhook.id)
                .order_by(Webhook.claimed_at.asc().nulls_first(), Webhook.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if webhook_id is None:
                return None
            token = secrets.token_hex(16)
            session.execute(
                update(Webhook)
                .where(Webhook.id == webhook_id)
                .values(leased_until=now + self.lease, lease_token=token, claimed_at=now)
            )
            w = session.get_one(Webhook, webhook_id)
            return Claim(
                id=w.id,
                url=w.url,
                secret=w.secret,
                events=list(w.events),
                letter=w.letter,
                milestones=[int(t) for t in w.milestones],
                position=Position(w.cursor_txid, w.cursor_id),
                attempts=w.attempts,
                retrying_since=w.retrying_since,
                consecutive_failures=w.consecutive_failures,
                token=token,
            )

    def _due(self, session: Session, now: datetime) -> Any:
        """Webhooks that are on, not waiting for a retry, not held, with an event after theirs."""
        waiting = exists().where(
            tuple_(OutboxEvent.txid, OutboxEvent.id) > tuple_(Webhook.cursor_txid, Webhook.cursor_id),
            events.visible_now(session),
        )
        return select(Webhook).where(
            Webhook.active.is_(True),
            or_(Webhook.next_attempt_at.is_(None), Webhook.next_attempt_at <= now),
            or_(Webhook.leased_until.is_(None), Webhook.leased_until < now),
            waiting,
        )

    # --- posting its events ------------------------------------------------------------------

    def _batch(self, claim: Claim) -> tuple[list[tuple[OutboxEvent, ChangeRecord | None]], Position]:
        """The claim's next events (its filters applied), and how far they reach: the newest
        visible event, when the batch holds everything up to it."""
        with session_scope(self.database.read_sessions) as session:
            visible = events.visible_now(session)
            newest = session.execute(
                select(OutboxEvent.txid, OutboxEvent.id)
                .where(visible)
                .order_by(OutboxEvent.txid.desc(), OutboxEvent.id.desc())
                .limit(1)
            ).first()
            reach = Position(int(newest[0]), int(newest[1])) if newest else claim.position
            mine = OutboxEvent.webhook_id == claim.id
            wanted = and_(
                OutboxEvent.webhook_id.is_(None),
                events.type_filter(claim.events),
                OutboxEvent.letter == claim.letter if claim.letter else true(),
            )
            rows = session.execute(
                events.events_query(
                    [
                        events.after(claim.position),
                        tuple_(OutboxEvent.txid, OutboxEvent.id) <= tuple_(reach.txid, reach.id),
                        or_(mine, wanted),
                    ]
                ).limit(BATCH)
            ).all()
            batch = [(row[0], row[1]) for row in rows]
            if len(batch) == BATCH:
                last = batch[-1][0]
                reach = Position(last.txid, last.id)
            return batch, reach

    async def _serve(self, client: httpx.AsyncClient, claim: Claim) -> None:
        batch, reach = await asyncio.to_thread(self._batch, claim)
        try:
            await asyncio.to_thread(check_target, claim.url, self.settings.webhook_allow_private_targets)
            refused = None
        except TargetRefused as exc:
            refused = str(exc)
        position = claim.position
        for event, record in batch:
            if self._stopping.is_set():
                break
            here = Position(event.txid, event.id)
            if event.type == events.MILESTONE and (event.data or {}).get("milestone") not in claim.milestones:
                position = here
                continue
            outcome = await self._post(client, claim, event, record, refused)
            if not await asyncio.to_thread(self._record, claim, event, here, outcome):
                return
            if not outcome.succeeded:
                return
            position = here
            claim.attempts, claim.retrying_since, claim.consecutive_failures = 0, None, 0
        else:
            position = reach
        await asyncio.to_thread(self._release, claim, position)

    async def _post(
        self,
        client: httpx.AsyncClient,
        claim: Claim,
        event: OutboxEvent,
        record: ChangeRecord | None,
        refused: str | None,
    ) -> Outcome:
        if refused is not None:
            return Outcome(False, None, f"target refused: {refused}", 0)
        data = events.event_data(event, record, self.settings.public_url)
        body = json.dumps(
            {"type": event.type, "timestamp": data["at"], "data": data},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        headers = signing.headers(claim.secret, f"evt_{event.id}", int(time.time()), body)
        started = time.perf_counter()
        try:
            response = await client.post(claim.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            took = int((time.perf_counter() - started) * 1000)
            return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500], took)
        took = int((time.perf_counter() - started) * 1000)
        ok = 200 <= response.status_code < 300
        error = None if ok else f"the receiver answered {response.status_code}"
        return Outcome(ok, response.status_code, error, took)

    # --- recording ---------------------------------------------------------------------------

    def _record(self, claim: Claim, event: OutboxEvent, here: Position, outcome: Outcome) -> bool:
        """Keep the attempt and move the webhook on (or schedule its retry). False when the
        lease was lost (another worker has the webhook now)."""
        now = utcnow()
        attempt = claim.attempts + 1
        ours = and_(Webhook.id == claim.id, Webhook.lease_token == claim.token)
        values: dict[str, Any]
        next_at = None
        if outcome.succeeded:
            values = {
                "cursor_txid": here.txid,
                "cursor_id": here.id,
                "attempts": 0,
                "retrying_since": None,
                "next_attempt_at": None,
                "consecutive_failures": 0,
                "last_success_at": now,
                "leased_until": now + self.lease,
            }
        else:
            since = claim.retrying_since or now
            failures = claim.consecutive_failures + 1
            values = {
                "attempts": attempt,
                "retrying_since": since,
                "consecutive_failures": failures,
                "last_failure_at": now,
                "last_error": outcome.error,
                "leased_until": None,
                "lease_token": None,
            }
            if (now - since).total_seconds() >= self.settings.webhook_retry_max_seconds:
                values |= {"active": False, "next_attempt_at": None}
                values["disabled_reason"] = (
                    f"event {event.id} ({event.type}) failed {attempt} times over "
                    f"{self.settings.webhook_retry_max_seconds:g} s; set active to resume with it"
                )
                log.error("webhook %d disabled: %s", claim.id, values["disabled_reason"])
            else:
                next_at = now + timedelta(seconds=backoff(attempt, self.settings.webhook_retry_base_seconds))
                values["next_attempt_at"] = next_at
                if failures == self.settings.webhook_failing_after:
                    log.error("webhook %d is failing: %d deliveries in a row failed", claim.id, failures)
        with session_scope(self.database.write_sessions) as session:
            moved = session.execute(update(Webhook).where(ours).values(**values)).rowcount  # type: ignore[attr-defined]
            session.execute(
                insert(WebhookDelivery).values(
                    webhook_id=claim.id,
                    event_id=event.id,
                    event_type=event.type,
                    attempt=attempt,
                    succeeded=outcome.succeeded,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                    attempted_at=now,
                    next_attempt_at=next_at,
                )
            )
        return bool(moved)

    def _release(self, claim: Claim, position: Position) -> None:
        with session_scope(self.database.write_sessions) as session:
            session.execute(
                update(Webhook)
                .where(Webhook.id == claim.id, Webhook.lease_token == claim.token)
                .where(tuple_(Webhook.cursor_txid, Webhook.cursor_id) <= tuple_(position.txid, position.id))
                .values(cursor_txid=position.txid, cursor_id=position.id, leased_until=None, lease_token=None)
            )


@asynccontextmanager
async def running_worker(database: Database, settings: Settings) -> AsyncIterator[DeliveryWorker | None]:
    """A delivery worker running beside the app while the block runs (when
    `WEBHOOK_WORKER` is on); stopped at its end, its posts in flight given a moment to end."""
    if not settings.webhook_worker:
        yield None
        return
    worker = DeliveryWorker(database, settings)
    task = asyncio.create_task(worker.run(), name="webhook-delivery")
    try:
        yield worker
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, settings.webhook_timeout_seconds + 1)
        except TimeoutError:
            log.warning("webhook deliveries in flight were cut short; they will be delivered again")
