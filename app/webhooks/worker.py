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
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, exists, insert, or_, select, true, tuple_, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.database import Database, session_scope
from app.models import ChangeRecord, OutboxEvent, Webhook, WebhookDelivery
from app.models.base import utcnow
from app.webhooks import events, signing
from app.webhooks.events import Position
from app.webhooks.targets import TargetRefused, check_target

log = logging.getLogger("undersigned.webhooks")
BATCH = 100
# Successful deliveries are written down this many at a time, or after this long.
SAVE_EVERY = 50
SAVE_SECONDS = 0.5
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


@dataclass
class Attempt:
    event_id: int
    event_type: str
    number: int
    outcome: Outcome
    at: datetime
    next_attempt_at: datetime | None = None


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
        self._work = asyncio.Event()
        self._none_active = False  # no webhook is on: look for work less often

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Deliver until `stop()`: `webhook_concurrency` webhooks at a time."""
        timeout = httpx.Timeout(self.settings.webhook_timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            lanes = [self._lane(client, n) for n in range(self.settings.webhook_concurrency)]
            await asyncio.gather(*lanes)

    async def _lane(self, client: httpx.AsyncClient, number: int) -> None:
        """Lane 0 looks for work every `webhook_poll_seconds` (every 20 of them while no webhook
        is on, so that a registry without webhooks costs the database almost nothing); the
        others sleep until a lane that found some wakes them (there may be more), so an idle
        worker costs one read a poll, whatever its concurrency."""
        failures = 0
        while not self._stopping.is_set():
            try:
                claim = await asyncio.to_thread(self._claim)
                failures = 0
                if claim is not None:
                    self._work.set()
                    await self._serve(client, claim)
                    continue
            except Exception:  # the database is away (or not migrated yet): try again later
                failures += 1
                if failures == 1:
                    log.exception("webhook delivery lane %d failed; retrying", number)
                await self._sleep(min(self.settings.webhook_poll_seconds * 2 ** min(failures, 10), 30.0))
                continue
            if number == 0:
                idle = 20 if self._none_active else 1
                await self._sleep(self.settings.webhook_poll_seconds * idle)
            else:  # (lane 0 wakes them when it finds work)
                self._work.clear()
                await self._sleep(self.settings.webhook_poll_seconds * 240, self._work)

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if wake is not None:
            waits.append(asyncio.ensure_future(wake.wait()))
        _done, pending = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    # --- taking a webhook --------------------------------------------------------------------

    def _claim(self) -> Claim | None:
        with session_scope(self.database.read_sessions) as session:
            if session.scalar(self._due(session, utcnow()).with_only_columns(Webhook.id).limit(1)) is None:
                on = session.scalar(select(Webhook.id).where(Webhook.active.is_(True)).limit(1))
                self._none_active = on is None
                return None
        self._none_active = False
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
        """Post the claim's next events one after the other. Successes are written down a few
        at a time (a crash posts again at most those not yet written: at least once); a
        failure is written at once, with its retry, and ends the turn."""
        batch, reach = await asyncio.to_thread(self._batch, claim)
        try:
            await asyncio.to_thread(check_target, claim.url, self.settings.webhook_allow_private_targets)
            refused = None
        except TargetRefused as exc:
            refused = str(exc)
        done: list[Attempt] = []
        position = claim.position
        written = time.monotonic()
        for event, record in batch:
            if self._stopping.is_set():
                break
            here = Position(event.txid, event.id)
            if event.type == events.MILESTONE and (event.data or {}).get("milestone") not in claim.milestones:
                position = here
                continue
            outcome = await self._post(client, claim, event, record, refused)
            attempt = Attempt(event.id, event.type, claim.attempts + 1, outcome, utcnow())
            if not outcome.succeeded:
                await asyncio.to_thread(self._save, claim, done, position, attempt)
                return
            done.append(attempt)
            position = here
            claim.attempts, claim.retrying_since, claim.consecutive_failures = 0, None, 0
            if len(done) >= SAVE_EVERY or time.monotonic() - written > SAVE_SECONDS:
                if not await asyncio.to_thread(self._save, claim, done, position, None, keep=True):
                    return  # the lease ran out: another worker has this webhook now
                done, written = [], time.monotonic()
        else:
            position = reach
        await asyncio.to_thread(self._save, claim, done, position, None)

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

    def _save(
        self,
        claim: Claim,
        done: list[Attempt],
        position: Position,
        failed: Attempt | None,
        *,
        keep: bool = False,
    ) -> bool:
        """In one transaction: the attempts, the webhook's new position, and either its lease
        renewed (`keep`), or given back — with the retry of `failed`, if one failed. False when
        the lease was lost."""
        now = utcnow()
        values: dict[str, Any] = {"cursor_txid": position.txid, "cursor_id": position.id}
        if done:
            values |= {"attempts": 0, "retrying_since": None, "next_attempt_at": None}
            values |= {"consecutive_failures": 0, "last_success_at": done[-1].at}
        if failed is not None:
            failed.next_attempt_at = self._failure(claim, failed, values)
        values |= {"leased_until": now + self.lease} if keep else {"leased_until": None, "lease_token": None}
        attempts = [*done, *([failed] if failed else [])]
        with session_scope(self.database.write_sessions) as session:
            moved = session.execute(
                update(Webhook)
                .where(Webhook.id == claim.id, Webhook.lease_token == claim.token)
                .values(**values)
            ).rowcount  # type: ignore[attr-defined]
            if attempts and moved:  # (not when the webhook was deleted meanwhile)
                session.execute(
                    insert(WebhookDelivery),
                    [
                        {
                            "webhook_id": claim.id,
                            "event_id": a.event_id,
                            "event_type": a.event_type,
                            "attempt": a.number,
                            "succeeded": a.outcome.succeeded,
                            "status_code": a.outcome.status_code,
                            "error": a.outcome.error,
                            "duration_ms": a.outcome.duration_ms,
                            "attempted_at": a.at,
                            "next_attempt_at": a.next_attempt_at,
                        }
                        for a in attempts
                    ],
                )
        return bool(moved)

    def _failure(self, claim: Claim, failed: Attempt, values: dict[str, Any]) -> datetime | None:
        """The webhook's state after a failed attempt (into `values`): its retry, or, once the
        event has failed for the whole retry window, the webhook switched off at that event."""
        now = failed.at
        since = claim.retrying_since or now
        failures = claim.consecutive_failures + 1
        values |= {"attempts": failed.number, "retrying_since": since, "consecutive_failures": failures}
        values |= {"last_failure_at": now, "last_error": failed.outcome.error}
        if (now - since).total_seconds() >= self.settings.webhook_retry_max_seconds:
            reason = (
                f"event {failed.event_id} ({failed.event_type}) failed {failed.number} times over "
                f"{self.settings.webhook_retry_max_seconds:g} s; set active to resume with it"
            )
            values |= {"active": False, "next_attempt_at": None, "disabled_reason": reason}
            log.error("webhook %d disabled: %s", claim.id, reason)
            return None
        retry = now + timedelta(seconds=backoff(failed.number, self.settings.webhook_retry_base_seconds))
        values["next_attempt_at"] = retry
        if failures == self.settings.webhook_failing_after:
            log.error("webhook %d is failing: %d deliveries in a row failed", claim.id, failures)
        return retry


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
