"""`undersigned export DIR`: every table written to its CSV file, streamed in id order."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imports.dump.files import BATCH, COLUMNS, Progress
from app.imports.parsing import format_identifiers
from app.models import (
    Actor,
    ActorAlias,
    Body,
    Campaign,
    Claim,
    Event,
    Identifier,
    Letter,
    Membership,
    Party,
    Recipient,
    Signature,
    Source,
)


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return value


def stream(session: Session, stmt: Any) -> Iterator[Any]:
    yield from session.execute(stmt.execution_options(yield_per=BATCH))


def _of_letter(model: type[Claim | Source | Signature | Recipient], *columns: Any) -> Any:
    """The rows of a table that hangs off a letter, the letter named by its slug first."""
    return select(Letter.slug, *columns).join(Letter, Letter.id == model.letter_id).order_by(model.id)


def _statement(name: str) -> Any:
    """The query of one dump file (all but actors.csv), its columns in COLUMNS order."""
    if name in ("bodies.csv", "parties.csv"):
        model: type[Body] | type[Party] = Body if name == "bodies.csv" else Party
        return select(model.slug, model.name, model.country).order_by(model.id)
    if name == "campaigns.csv":
        return select(Campaign.slug, Campaign.name, Campaign.description).order_by(Campaign.id)
    if name == "aliases.csv":
        return select(ActorAlias.actor_id, ActorAlias.name).order_by(ActorAlias.id)
    if name == "memberships.csv":
        return (
            select(
                Membership.actor_id,
                Body.slug,
                Party.slug,
                Membership.constituency,
                Membership.start_date,
                Membership.end_date,
            )
            .join(Body, Body.id == Membership.body_id)
            .outerjoin(Party, Party.id == Membership.party_id)
            .order_by(Membership.id)
        )
    if name == "letters.csv":
        return (
            select(
                Letter.slug,
                Letter.title,
                Letter.summary,
                Letter.language,
                Letter.published_on,
                Letter.status,
                Letter.claimed_signatory_count,
                Campaign.slug,
                Letter.body,
            )
            .outerjoin(Campaign, Campaign.id == Letter.campaign_id)
            .order_by(Letter.id)
        )
    if name == "claims.csv":
        return _of_letter(Claim, Claim.count, Claim.wording, Claim.url)
    if name == "sources.csv":
        return _of_letter(Source, Source.label, Source.url)
    if name == "signatures.csv":
        return _of_letter(
            Signature,
            Signature.actor_id,
            Signature.signed_on,
            Signature.capacity,
            Signature.affiliation,
            Signature.position,
            Signature.status,
            Signature.withdrawn_on,
            Signature.source,
        )
    if name == "recipients.csv":
        return _of_letter(Recipient, Recipient.actor_id, Recipient.role, Recipient.capacity)
    if name == "events.csv":
        return (
            select(Letter.slug, Event.date, Event.kind, Event.note, Event.url, Campaign.slug)
            .outerjoin(Letter, Letter.id == Event.letter_id)
            .outerjoin(Campaign, Campaign.id == Event.campaign_id)
            .order_by(Event.id)
        )
    raise KeyError(name)


def table_rows(session: Session, name: str) -> Iterator[Any]:
    """The rows of one dump file, as tuples in COLUMNS order."""
    if name == "actors.csv":
        yield from actor_rows(session)
    else:
        yield from stream(session, _statement(name))


def actor_rows(session: Session, kind: str | None = None) -> Iterator[tuple[Any, ...]]:
    stmt = select(Actor.id, Actor.kind, Actor.name, Actor.sort_name, Actor.country, Actor.org_type).order_by(
        Actor.id
    )
    if kind is not None:
        stmt = stmt.where(Actor.kind == kind)
    batch: list[Any] = []

    def flush() -> Iterator[tuple[Any, ...]]:
        held: dict[int, list[tuple[str, str]]] = {}
        ids = [r[0] for r in batch]
        for actor_id, scheme, value in session.execute(
            select(Identifier.actor_id, Identifier.scheme, Identifier.value)
            .where(Identifier.actor_id.in_(ids))
            .order_by(Identifier.id)
        ):
            held.setdefault(actor_id, []).append((scheme, value))
        for r in batch:
            yield (*r, format_identifiers(held.get(r[0], [])))

    for row in stream(session, stmt):
        batch.append(row)
        if len(batch) >= 1000:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def export_registry(session: Session, directory: Path, *, progress: Progress | None = None) -> dict[str, int]:
    """Write every table to `directory` (created if needed); the row count of each file."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for name, columns in COLUMNS.items():
        count = 0
        with (directory / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in table_rows(session, name):
                writer.writerow([_cell(v) for v in row])
                count += 1
                if progress and count % BATCH == 0:
                    progress(name, count, None)
        written[name] = count
        if progress:
            progress(name, count, count)
    return written
