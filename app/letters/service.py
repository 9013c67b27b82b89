"""Letter use cases: letters, signatures, recipients, events, claims and sources.

Reads take a `Session`, writes a `Writer`; the caller's transaction is open and we only flush.
Every write records a change and bumps `Letter.version` (the letter's cheap validator).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Date, Select, delete, exists, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, selectinload, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from app import fulltext, pairs, rollups, seats
from app.actors.identity import redirect_of
from app.actors.service import get_actor, resolve_inline_actor
from app.auth import Writer
from app.breakdowns import BREAKDOWNS
from app.changes import record_change, snapshot
from app.dates import future_problem
from app.db.database import session_scope
from app.db.engine import insert_for
from app.errors import Conflict, Invalid, NotFound
from app.letters.schemas import (
    ClaimCreate,
    EventCreate,
    LetterCreate,
    LetterUpdate,
    RecipientCreate,
    SignatureCreate,
    SignatureUpdate,
    SourceCreate,
)
from app.live.notify import letters_changed
from app.models import (
    ACTOR_LOADS,
    Actor,
    Body,
    Campaign,
    ChangeRecord,
    Claim,
    Event,
    Letter,
    LetterRollup,
    Membership,
    Party,
    Recipient,
    Signature,
    Source,
)
from app.pagination import PageParams, SortKey, keyset_page
from app.text import search_text

EARLIEST = date(1, 1, 1)
EXPORT_BATCH = 1000


# --- letters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LetterView:
    """A letter with what its resource shows beyond its columns."""

    letter: Letter
    recorded_signatory_count: int
    campaign: str | None


@dataclass(frozen=True)
class LetterFilters:
    campaign: str | None = None
    q: str | None = None
    signatory: int | None = None
    recipient: int | None = None
    published_from: date | None = None
    published_to: date | None = None
    status: str | None = None


def _letter_query() -> Select[Letter]:
    return select(Letter).options(
        selectinload(Letter.campaign), selectinload(Letter.claims), selectinload(Letter.sources)
    )


def _views(session: Session, letters: Sequence[Letter]) -> list[LetterView]:
    """Recorded counts for a page of letters in one grouped query over their rollups (made by
    today less withdrawn by today: a withdrawal is never before its signature), a few rows a
    letter whatever its size."""
    counts: dict[int, int] = {}
    if letters:
        rows = session.execute(
            select(LetterRollup.letter_id, func.sum(LetterRollup.new) - func.sum(LetterRollup.withdrawn))
            .where(LetterRollup.letter_id.in_([lt.id for lt in letters]), LetterRollup.day <= date.today())
            .group_by(LetterRollup.letter_id)
        ).all()
        counts = {int(letter_id): int(n) for letter_id, n in rows}
    return [
        LetterView(lt, counts.get(lt.id, 0), lt.campaign.slug if lt.campaign is not None else None)
        for lt in letters
    ]


def find_letter(session: Session, slug: str) -> Letter:
    """The letter alone (no relationships loaded); 404 if unknown."""
    letter = session.scalar(select(Letter).where(Letter.slug == slug))
    if letter is None:
        raise NotFound(f"no letter with slug '{slug}'")
    return letter


Child = TypeVar("Child", Signature, Recipient, Event, Claim, Source)


def _of_letter(
    session: Session, slug: str, model: type[Child], stmt: Select[Child], *criteria: Any, missing: str
) -> Child:
    """The one `model` row of `stmt` that belongs to the letter `slug` and meets `criteria`; a
    404 that says `missing` and the letter's slug when there is none."""
    letter = find_letter(session, slug)
    found = session.scalar(stmt.where(model.letter_id == letter.id, *criteria))
    if found is None:
        raise NotFound(f"{missing} '{slug}'")
    return found


def get_letter(session: Session, slug: str) -> LetterView:
    letter = session.scalar(_letter_query().where(Letter.slug == slug))
    if letter is None:
        raise NotFound(f"no letter with slug '{slug}'")
    return _views(session, [letter])[0]


def list_letters(
    session: Session, filters: LetterFilters, params: PageParams
) -> tuple[list[LetterView], str | None]:
    stmt = _letter_query()
    if filters.campaign is not None:
        stmt = stmt.where(
            Letter.campaign_id.in_(select(Campaign.id).where(Campaign.slug == filters.campaign))
        )
    keys: list[SortKey] = []
    if filters.q:
        stmt, relevance = fulltext.apply(session, stmt, Letter, filters.q)
        keys.append(SortKey(relevance, descending=True))
    if filters.signatory is not None:
        today = date.today()
        stmt = stmt.where(
            exists().where(
                Signature.letter_id == Letter.id,
                Signature.actor_id == filters.signatory,
                or_(Signature.withdrawn_on.is_(None), Signature.withdrawn_on > today),
            )
        )
    if filters.recipient is not None:
        stmt = stmt.where(
            exists().where(Recipient.letter_id == Letter.id, Recipient.actor_id == filters.recipient)
        )
    if filters.published_from is not None:
        stmt = stmt.where(Letter.published_on >= filters.published_from)
    if filters.published_to is not None:
        stmt = stmt.where(Letter.published_on <= filters.published_to)
    if filters.status is not None:
        stmt = stmt.where(Letter.status == filters.status)
    day = func.coalesce(Letter.published_on, literal(EARLIEST, Date))
    keys += [SortKey(day, descending=True), SortKey(Letter.id, descending=True)]
    rows, cursor = keyset_page(session, stmt, keys, params)
    return _views(session, [row[0] for row in rows]), cursor


def _campaign_id(session: Session, slug: str | None) -> int | None:
    if slug is None:
        return None
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.slug == slug))
    if campaign_id is None:
        raise Invalid(f"no campaign with slug '{slug}'", field="body.campaign")
    return campaign_id


def _letter_snapshot(letter: Letter) -> dict[str, Any]:
    data = snapshot(letter)
    data.pop("body", None)  # can be long; kept out of every change record
    return data


def create_letter(writer: Writer, data: LetterCreate) -> LetterView:
    session = writer.session
    if session.scalar(select(Letter.id).where(Letter.slug == data.slug)) is not None:
        raise Conflict(f"a letter with slug '{data.slug}' already exists")
    fields = data.model_dump(exclude={"campaign"})
    letter = Letter(
        **fields,
        campaign_id=_campaign_id(session, data.campaign),
        search_text=search_text(data.title, data.summary, data.body),
        version=1,
        claims=[],
        sources=[],
    )
    try:
        # The row joins the session inside the savepoint: `begin_nested()` flushes what is
        # pending first, and a failure there would poison the whole transaction.
        with session.begin_nested():
            session.add(letter)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a letter with slug '{data.slug}' already exists") from exc
    record_change(session, writer.key_name, "create", "letter", letter.slug, after=_letter_snapshot(letter))
    return get_letter(session, letter.slug)


def update_letter(writer: Writer, slug: str, data: LetterUpdate) -> LetterView:
    session = writer.session
    letter = find_letter(session, slug)
    before = _letter_snapshot(letter)
    changes = data.model_dump(exclude_unset=True)
    for required in ("title", "status"):
        if required in changes and changes[required] is None:
            raise Invalid("may not be null", field=f"body.{required}")
    if "campaign" in changes:
        letter.campaign_id = _campaign_id(session, changes.pop("campaign"))
    for field, value in changes.items():
        setattr(letter, field, value)
    letter.search_text = search_text(letter.title, letter.summary, letter.body)
    session.flush()
    rollups.touch_letter(session, letter.id)
    record_change(
        session, writer.key_name, "update", "letter", slug, before=before, after=_letter_snapshot(letter)
    )
    session.expire(letter, ["campaign"])
    return get_letter(session, slug)


def delete_letter(writer: Writer, slug: str) -> None:
    """Hard delete (admin): the letter with its signatures, recipients, events, claims, sources."""
    session = writer.session
    letter = find_letter(session, slug)
    before = _letter_snapshot(letter)
    for model in (Signature, Recipient, Event, Claim, Source):
        session.execute(delete(model).where(model.letter_id == letter.id))
    session.execute(delete(Letter).where(Letter.id == letter.id))
    letters_changed(session, letter.id)  # (its live counts streams end, on commit)
    pairs.forget_letter(session, letter.id)
    session.expunge(letter)
    record_change(session, writer.key_name, "delete", "letter", slug, before=before)
    session.flush()


def _touch(letter: Letter) -> None:
    session = object_session(letter)
    assert session is not None
    rollups.touch_letter(session, letter.id)


# --- signatures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureFilters:
    kind: str | None = None
    country: str | None = None
    org_type: str | None = None
    party: str | None = None
    body: str | None = None
    status: str | None = None
    include_withdrawn: bool = True


def _filtered(stmt: Select[Any], filters: SignatureFilters) -> Select[Any]:
    # A breakdown's filter: on the actor's attribute, or on the seat held on the signing day
    # (the one it is counted under: `app.seats`), by the id of its body or party.
    seat: dict[str, Any] = {}
    for b in BREAKDOWNS:
        if (value := getattr(filters, b.key)) is None:
            continue
        if b.of_seat:
            seat[f"{b.key}_id"] = select(b.model.id).where(b.attribute == value).scalar_subquery()
        else:
            stmt = stmt.where(b.attribute == value)
    if seat:
        stmt = stmt.where(seats.seated(Signature.actor_id, Signature.signed_on, **seat))
    if filters.status is not None:
        stmt = stmt.where(Signature.status == filters.status)
    if not filters.include_withdrawn:
        stmt = stmt.where(Signature.withdrawn_on.is_(None))
    return stmt


def _signature_query() -> Select[Signature]:
    return select(Signature).options(selectinload(Signature.actor).options(*ACTOR_LOADS))


def list_signatures(
    session: Session, slug: str, filters: SignatureFilters, params: PageParams
) -> tuple[list[Signature], str | None]:
    letter = find_letter(session, slug)
    stmt = _filtered(
        _signature_query()
        .join(Actor, Actor.id == Signature.actor_id)
        .where(Signature.letter_id == letter.id),
        filters,
    )
    rows, cursor = keyset_page(session, stmt, [SortKey(Signature.id)], params)
    return [row[0] for row in rows], cursor


def get_signature(session: Session, slug: str, actor_id: int) -> Signature:
    return _of_letter(
        session,
        slug,
        Signature,
        _signature_query(),
        Signature.actor_id == actor_id,
        missing=f"actor {actor_id} has not signed",
    )


def _actor_for(
    writer: Writer, actor_id: int | None, data: RecipientCreate | SignatureCreate
) -> tuple[Actor, bool]:
    """The actor a signature or recipient names, and whether it existed: by `actor_id` (a
    merged id stands for the actor it was merged into), or inline (an existing actor that is
    this one is used: `resolve_inline_actor`)."""
    if data.actor is not None:
        return resolve_inline_actor(writer, data.actor, field="body.actor")
    assert actor_id is not None
    actor = writer.session.get(Actor, actor_id, options=list(ACTOR_LOADS))
    if actor is None:
        kept = redirect_of(writer.session, actor_id)
        if kept is None:
            raise Invalid(f"no actor with id {actor_id}", field="body.actor_id")
        return get_actor(writer.session, kept), True
    return actor, True


def _signature_key(slug: str, actor_id: int) -> str:
    return f"{slug}/{actor_id}"


def add_signature(writer: Writer, slug: str, data: SignatureCreate) -> Signature:
    session = writer.session
    letter = find_letter(session, slug)
    actor, existed = _actor_for(writer, data.actor_id, data)
    actor_id = actor.id
    # One statement: the new row, or none when this actor has signed already (a signer of the
    # same pair at the same moment waits for the other's transaction, then finds its row) —
    # no read before, no savepoint around it.
    signature: Signature | None = session.scalar(
        insert_for(session.get_bind().dialect.name, Signature)
        .values(
            letter_id=letter.id,
            actor_id=actor_id,
            signed_on=data.signed_on or letter.published_on or date.today(),
            capacity=data.capacity,
            affiliation=data.affiliation,
            position=data.position,
            source=data.source,
            status=data.status,
        )
        .on_conflict_do_nothing(index_elements=["letter_id", "actor_id"])
        .returning(Signature)
    )
    if signature is None:
        existing = get_signature(session, slug, actor_id)
        if existing.withdrawn_on is not None:
            raise Conflict(
                f"actor {actor_id} signed '{slug}' and withdrew on {existing.withdrawn_on.isoformat()}; "
                'PATCH the signature with {"withdrawn_on": null} to reinstate it',
                extra={"actor_id": actor_id},
            )
        raise Conflict(f"actor {actor_id} has signed '{slug}' already", extra={"actor_id": actor_id})
    set_committed_value(signature, "actor", actor)
    signature.actor_match = "existing" if existed else "created"  # type: ignore[attr-defined]
    record_change(
        session,
        writer.key_name,
        "create",
        "signature",
        _signature_key(slug, actor_id),
        after=snapshot(signature),
    )
    # Last, so that the rows every writer of the letter waits for are held for as little as
    # possible: its pairs, its day's rollup row, its version.
    rollups.signature_added(session, signature.id, letter.id)
    return signature


def update_signature(writer: Writer, slug: str, actor_id: int, data: SignatureUpdate) -> Signature:
    session = writer.session
    signature = get_signature(session, slug, actor_id)
    before = snapshot(signature)
    changes = data.model_dump(exclude_unset=True)
    for required in ("signed_on", "status", "actor_id"):
        if required in changes and changes[required] is None:
            raise Invalid("may not be null", field=f"body.{required}")
    signed_on = changes.get("signed_on", signature.signed_on)
    withdrawn_on = changes.get("withdrawn_on", signature.withdrawn_on)
    if withdrawn_on is not None and withdrawn_on < signed_on:
        field = "body.withdrawn_on" if "withdrawn_on" in changes else "body.signed_on"
        raise Invalid("a signature cannot be withdrawn before it was made", field=field)
    if changes.get("withdrawn_on") is not None and (problem := future_problem(changes["withdrawn_on"])):
        raise Invalid(problem, field="body.withdrawn_on")
    target = _move_target(session, signature, changes.pop("actor_id", None))
    with rollups.rewriting(session, Signature.id == signature.id):
        for field, value in changes.items():
            setattr(signature, field, value)
        if target is not None:
            signature.actor_id = target.id
    if target is not None:
        session.flush()
        set_committed_value(signature, "actor", target)
    record_change(
        session,
        writer.key_name,
        "move" if target is not None else "update",
        "signature",
        _signature_key(slug, actor_id),
        before=before,
        after={**snapshot(signature), **({"moved_to": target.id} if target is not None else {})},
    )
    return signature


def _move_target(session: Session, signature: Signature, actor_id: int | None) -> Actor | None:
    """The actor a signature moves to (`PATCH … {"actor_id": …}`), or None when it stays: the
    actor must exist (a merged id stands for its kept actor) and not have signed the letter."""
    if actor_id is None or actor_id == signature.actor_id:
        return None
    target = session.get(Actor, actor_id, options=list(ACTOR_LOADS))
    if target is None:
        kept = redirect_of(session, actor_id)
        if kept is None:
            raise Invalid(f"no actor with id {actor_id}", field="body.actor_id")
        if kept == signature.actor_id:
            return None
        target = get_actor(session, kept)
    taken = session.scalar(
        select(Signature.id).where(
            Signature.letter_id == signature.letter_id, Signature.actor_id == target.id
        )
    )
    if taken is not None:
        raise Conflict(
            f"actor {target.id} has signed this letter already; merge the two actors instead "
            f"(POST /v1/actors/{target.id}/merge)",
            extra={"actor_id": target.id},
        )
    return target


def retract_signature(writer: Writer, slug: str, actor_id: int, reason: str) -> dict[str, Any]:
    """Remove a signature recorded by mistake (not a withdrawal: the signatory never signed):
    every count and timeline is as if it had never been recorded. Its change record keeps the
    signature as it was, who retracted it and why."""
    session = writer.session
    signature = get_signature(session, slug, actor_id)
    before = snapshot(signature)
    with rollups.removing(session, Signature.id == signature.id, signature.letter_id):
        session.delete(signature)
    record = record_change(
        session,
        writer.key_name,
        "retract",
        "signature",
        _signature_key(slug, actor_id),
        before=before,
        after={"reason": reason},
    )
    session.flush()
    return _retraction(record, slug)


def _retraction(record: Any, slug: str) -> dict[str, Any]:
    before = dict(record.before or {})
    return {
        "letter": slug,
        "actor_id": before.get("actor_id"),
        "reason": (record.after or {}).get("reason"),
        "retracted_at": record.at,
        "retracted_by": record.key_name,
        "signature": before,
    }


def list_retractions(
    session: Session, slug: str, params: PageParams
) -> tuple[list[dict[str, Any]], str | None]:
    """The signatures retracted from a letter as mistakes, oldest first, with who and why."""
    find_letter(session, slug)
    stmt = select(ChangeRecord).where(
        ChangeRecord.entity == "signature",
        ChangeRecord.action == "retract",
        ChangeRecord.entity_key.like(f"{slug}/%"),
    )
    rows, cursor = keyset_page(session, stmt, [SortKey(ChangeRecord.id)], params)
    return [_retraction(row[0], slug) for row in rows], cursor


def withdraw_signature(writer: Writer, slug: str, actor_id: int, on: date | None) -> Signature:
    """Record a withdrawal (on `on`, default today); the signature itself stays."""
    session = writer.session
    signature = get_signature(session, slug, actor_id)
    if signature.withdrawn_on is not None:
        raise Conflict(
            f"actor {actor_id} withdrew from '{slug}' on {signature.withdrawn_on.isoformat()} already"
        )
    day = on or date.today()
    if (problem := future_problem(day)) is not None:
        raise Invalid(problem, field="query.on")
    if day < signature.signed_on:
        raise Invalid(
            f"the signature was made on {signature.signed_on.isoformat()}; it cannot be withdrawn before",
            field="query.on",
        )
    before = snapshot(signature)
    with rollups.rewriting(session, Signature.id == signature.id):
        signature.withdrawn_on = day
    record_change(
        session,
        writer.key_name,
        "withdraw",
        "signature",
        _signature_key(slug, actor_id),
        before=before,
        after=snapshot(signature),
    )
    return signature


class SignatureRow(NamedTuple):
    """One signature flattened: the actor's fields, body and party of the seat held on the
    signing day (`app.seats`: both from the one membership that counts), the signature's own.
    A tuple, so that the exports write it as it is."""

    actor_id: int
    name: str
    kind: str
    country: str | None
    org_type: str | None
    body: str | None
    party: str | None
    capacity: str | None
    affiliation: str | None
    signed_on: date
    withdrawn_on: date | None
    position: int | None
    status: str
    source: str | None


EXPORT_COLUMNS = SignatureRow._fields


def _signature_rows(letter_id: int, filters: SignatureFilters, *, seat_names: bool) -> Select[Any]:
    """The signatures of a letter matching `filters` as `SignatureRow` columns, in one query;
    body and party by slug (the exports) or, with `seat_names`, by name (the letter page)."""
    body, party = (Body.name, Party.name) if seat_names else (Body.slug, Party.slug)
    flattened: list[Any] = [
        Signature.actor_id,
        Actor.name,
        Actor.kind,
        Actor.country,
        Actor.org_type,
        body,
        party,
        Signature.capacity,
        Signature.affiliation,
        Signature.signed_on,
        Signature.withdrawn_on,
        Signature.position,
        Signature.status,
        Signature.source,
    ]
    columns = (
        select(*flattened)
        .join(Actor, Actor.id == Signature.actor_id)
        .outerjoin(Membership, seats.held_on(Membership, Signature.actor_id, Signature.signed_on))
        .outerjoin(Body, Body.id == Membership.body_id)
        .outerjoin(Party, Party.id == Membership.party_id)
        .where(Signature.letter_id == letter_id)
    )
    return _filtered(columns, filters)


def signature_rows(
    session: Session, slug: str, filters: SignatureFilters, params: PageParams
) -> tuple[list[SignatureRow], str | None]:
    """A page of a letter's signatures as its page shows them (`SignatureRow`, body and party by
    name), in the order and with the cursors of `list_signatures`."""
    letter = find_letter(session, slug)
    stmt = _signature_rows(letter.id, filters, seat_names=True)
    rows, cursor = keyset_page(session, stmt, [SortKey(Signature.id)], params)
    return [SignatureRow._make(row[:-1]) for row in rows], cursor


def export_signatures(
    sessions: sessionmaker[Session], letter_id: int, filters: SignatureFilters, *, batch: int = EXPORT_BATCH
) -> Iterator[SignatureRow]:
    """Every signature of a letter matching `filters`, in actor id order, fetched in keyset
    batches on a session of its own (a streamed response outlives the request's session):
    memory stays constant whatever the number of rows. Batches walk the unique
    (letter_id, actor_id) index, so each costs the same however deep into the list it is."""
    stmt = _signature_rows(letter_id, filters, seat_names=False).order_by(Signature.actor_id)
    last = 0
    with session_scope(sessions) as session:
        while True:
            rows = session.execute(stmt.where(Signature.actor_id > last).limit(batch)).all()
            for row in rows:
                yield SignatureRow(*row)
            if len(rows) < batch:
                return
            last = rows[-1][0]


# --- recipients -----------------------------------------------------------------------------


def _recipient_query() -> Select[Recipient]:
    return select(Recipient).options(selectinload(Recipient.actor).options(*ACTOR_LOADS))


def list_recipients(session: Session, slug: str, params: PageParams) -> tuple[list[Recipient], str | None]:
    letter = find_letter(session, slug)
    stmt = _recipient_query().where(Recipient.letter_id == letter.id)
    rows, cursor = keyset_page(session, stmt, [SortKey(Recipient.id)], params)
    return [row[0] for row in rows], cursor


def get_recipient(session: Session, slug: str, recipient_id: int) -> Recipient:
    return _of_letter(
        session,
        slug,
        Recipient,
        _recipient_query(),
        Recipient.id == recipient_id,
        missing=f"no recipient {recipient_id} of",
    )


def add_recipient(writer: Writer, slug: str, data: RecipientCreate) -> Recipient:
    session = writer.session
    letter = find_letter(session, slug)
    actor, existed = _actor_for(writer, data.actor_id, data)
    actor_id = actor.id
    duplicate = f"actor {actor_id} is a '{data.role}' recipient of '{slug}' already"
    taken = select(Recipient.id).where(
        Recipient.letter_id == letter.id, Recipient.actor_id == actor_id, Recipient.role == data.role
    )
    if session.scalar(taken) is not None:
        raise Conflict(duplicate, extra={"actor_id": actor_id})
    recipient = Recipient(letter_id=letter.id, actor_id=actor_id, role=data.role, capacity=data.capacity)
    try:
        # The row joins the session inside the savepoint: `begin_nested()` flushes what is
        # pending first, and a failure there would poison the whole transaction.
        with session.begin_nested():
            session.add(recipient)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(duplicate, extra={"actor_id": actor_id}) from exc
    _touch(letter)
    record_change(
        session, writer.key_name, "create", "recipient", f"{slug}/{recipient.id}", after=snapshot(recipient)
    )
    session.flush()
    out = get_recipient(session, slug, recipient.id)
    out.actor_match = "existing" if existed else "created"  # type: ignore[attr-defined]
    return out


def remove_recipient(writer: Writer, slug: str, recipient_id: int) -> None:
    """A correction: the recipient was recorded by mistake."""
    session = writer.session
    recipient = get_recipient(session, slug, recipient_id)
    before = snapshot(recipient)
    letter = find_letter(session, slug)
    session.execute(delete(Recipient).where(Recipient.id == recipient.id))
    session.expunge(recipient)
    _touch(letter)
    record_change(session, writer.key_name, "delete", "recipient", f"{slug}/{recipient_id}", before=before)
    session.flush()


# --- events, claims and sources -------------------------------------------------------------


Part = TypeVar("Part", Event, Claim, Source)


def _part_order(model: type[Part]) -> list[SortKey]:
    """Events by date; claims and sources as they were added."""
    return [SortKey(Event.date), SortKey(Event.id)] if model is Event else [SortKey(model.id)]


def _part_name(model: type[Part]) -> str:
    return model.__tablename__.removesuffix("s")


def list_parts(
    session: Session, slug: str, model: type[Part], params: PageParams
) -> tuple[list[Part], str | None]:
    """A letter's events, claims or sources, a page at a time."""
    letter = find_letter(session, slug)
    stmt = select(model).where(model.letter_id == letter.id)
    rows, cursor = keyset_page(session, stmt, _part_order(model), params)
    return [row[0] for row in rows], cursor


def get_part(session: Session, slug: str, model: type[Part], part_id: int) -> Part:
    return _of_letter(
        session,
        slug,
        model,
        select(model),
        model.id == part_id,
        missing=f"no {_part_name(model)} {part_id} of",
    )


def add_part(
    writer: Writer, slug: str, model: type[Part], data: EventCreate | ClaimCreate | SourceCreate
) -> Part:
    """Add an event, a claim or a source to a letter (a change record; the letter's version moves)."""
    session = writer.session
    letter = find_letter(session, slug)
    part = model(letter_id=letter.id, **data.model_dump())
    session.add(part)
    _touch(letter)
    session.flush()
    record_change(
        session, writer.key_name, "create", _part_name(model), f"{slug}/{part.id}", after=snapshot(part)
    )
    return part
