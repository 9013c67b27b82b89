"""Actor use cases. The caller's transaction is open; we only flush."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Select, exists, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app import fulltext, rollups, seats
from app.actors.identity import (
    first_free_actor_id,
    identifier_owner,
    missing_actor,
    name_lock,
    refresh_names,
    refuse_duplicate,
    same_actors,
    set_aliases,
)
from app.actors.schemas import (
    ActorCreate,
    ActorUpdate,
    MembershipCreate,
    MembershipUpdate,
    ReferenceCreate,
    ReferenceUpdate,
)
from app.auth import Writer
from app.changes import record_change, snapshot
from app.errors import Conflict, Invalid, NotFound
from app.models import (
    ACTOR_LOADS,
    Actor,
    Body,
    ChangeRecord,
    Identifier,
    Letter,
    Membership,
    Party,
    Recipient,
    Signature,
)
from app.models.base import utcnow
from app.pagination import PageParams, SortKey, keyset_page
from app.text import match_name


def actor_snapshot(actor: Actor) -> dict[str, object]:
    data = snapshot(actor)
    data.pop("variant_key", None)
    data["identifiers"] = [f"{i.scheme}:{i.value}" for i in actor.identifiers]
    data["aliases"] = [a.name for a in actor.aliases]
    return data


def get_actor(session: Session, actor_id: int) -> Actor:
    """The actor; a merged id raises `Moved` (301 to the kept actor), an unknown one 404."""
    actor = session.scalar(select(Actor).where(Actor.id == actor_id).options(*ACTOR_LOADS))
    if actor is None:
        raise missing_actor(session, actor_id)
    return actor


def _check_identifiers_free(
    session: Session, pairs: list[tuple[str, str]], *, field: str, actor_id: int | None = None
) -> None:
    if len(set(pairs)) != len(pairs):
        raise Invalid("the same identifier is given twice", field=field)
    if not pairs:
        return
    stmt = select(Identifier.scheme, Identifier.value, Identifier.actor_id).where(
        tuple_(Identifier.scheme, Identifier.value).in_(pairs)
    )
    if actor_id is not None:
        stmt = stmt.where(Identifier.actor_id != actor_id)
    taken = session.execute(stmt).first()
    if taken is not None:
        raise Conflict(
            f"identifier {taken.scheme}:{taken.value} belongs to actor {taken.actor_id} already",
            extra={"actor_id": taken.actor_id},
        )


def _checked_pairs(session: Session, data: ActorCreate, field: str) -> list[tuple[str, str]]:
    """The `(scheme, value)` pairs of a new actor, once its fields agree with each other; takes
    the lock on its name that `create_actor` and `resolve_inline_actor` both search under."""
    if data.kind == "person" and data.org_type is not None:
        raise Invalid("only organisations have an org_type", field=f"{field}.org_type")
    pairs = [(i.scheme, i.value) for i in data.identifiers]
    if len(set(pairs)) != len(pairs):
        raise Invalid("the same identifier is given twice", field=f"{field}.identifiers")
    name_lock(session, [(data.kind, match_name(data.name))])
    return pairs


def create_actor(writer: Writer, data: ActorCreate, *, field: str = "body") -> Actor:
    """Create an actor with its identifiers and aliases. A taken `(scheme, value)` is a 409; so
    is an actor that is this one by name (`identity.same_actors`), unless `data.new`."""
    session = writer.session
    pairs = _checked_pairs(session, data, field)
    owner = identifier_owner(session, pairs)
    if owner is not None:
        refuse_duplicate([get_actor(session, owner)], data.name)
    if not data.new:
        refuse_duplicate(same_actors(session, data.kind, data.name, data.country, pairs), data.name)
    return _insert_actor(writer, data, pairs)


def resolve_inline_actor(writer: Writer, data: ActorCreate, *, field: str) -> tuple[Actor, bool]:
    """The actor an inline actor of a signature or recipient names: the existing one that is it
    (by identifier, else by name as `create_actor` refuses), or a new one. Several existing
    actors by that name: 409 listing them. Returns the actor and whether it existed."""
    session = writer.session
    pairs = _checked_pairs(session, data, field)
    owner = identifier_owner(session, pairs)
    if owner is not None:
        return get_actor(session, owner), True
    if not data.new:
        found = same_actors(session, data.kind, data.name, data.country, pairs)
        if len(found) == 1:
            return get_actor(session, found[0].id), True
        refuse_duplicate(found, data.name)
    return _insert_actor(writer, data, pairs), False


def _insert_actor(writer: Writer, data: ActorCreate, pairs: list[tuple[str, str]]) -> Actor:
    session = writer.session
    actor = Actor(
        kind=data.kind,
        name=data.name,
        sort_name=data.sort_name,
        country=data.country,
        org_type=data.org_type,
        identifiers=[Identifier(scheme=s, value=v) for s, v in pairs],
        aliases=[],
    )
    set_aliases(actor, data.aliases)
    if session.get_bind().dialect.name == "sqlite":
        actor.id = first_free_actor_id(session)
    session.add(actor)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict("an identifier of this actor belongs to another actor already") from exc
    record_change(session, writer.key_name, "create", "actor", actor.id, after=actor_snapshot(actor))
    return actor


# --- actors: list, update, delete -------------------------------------------------------------


@dataclass(frozen=True)
class ActorFilters:
    kind: str | None = None
    q: str | None = None
    country: str | None = None
    org_type: str | None = None
    party: str | None = None
    body: str | None = None
    on: date | None = None
    identifier: str | None = None


def parse_identifier(raw: str, *, field: str = "query.identifier") -> tuple[str, str]:
    """`scheme:value` -> (scheme, value); the value may itself hold colons (URLs)."""
    scheme, colon, value = raw.partition(":")
    scheme, value = scheme.strip(), value.strip()
    if not colon or not scheme or not value:
        raise Invalid("must be scheme:value, e.g. wikidata:Q42", field=field)
    return scheme, value


def _slug_id(session: Session, model: type[Body] | type[Party], slug: str, *, field: str) -> int:
    found = session.scalar(select(model.id).where(model.slug == slug))
    if found is None:
        raise Invalid(f"no {model.__name__.lower()} with slug '{slug}'", field=field)
    return found


def list_actors(
    session: Session, filters: ActorFilters, params: PageParams
) -> tuple[list[Actor], str | None]:
    stmt = select(Actor).options(*ACTOR_LOADS)
    if filters.kind:
        stmt = stmt.where(Actor.kind == filters.kind)
    if filters.country:
        stmt = stmt.where(Actor.country == filters.country)
    if filters.org_type:
        stmt = stmt.where(Actor.org_type == filters.org_type)
    keys: list[SortKey] = []
    if filters.q is not None:
        stmt, relevance = fulltext.apply(session, stmt, Actor, filters.q)
        keys.append(SortKey(relevance, descending=True))
    if filters.identifier is not None:
        scheme, value = parse_identifier(filters.identifier)
        stmt = stmt.where(
            exists().where(
                Identifier.actor_id == Actor.id, Identifier.scheme == scheme, Identifier.value == value
            )
        )
    if filters.party or filters.body:
        stmt = stmt.where(
            seats.seated(
                Actor.id,
                filters.on or date.today(),
                body_id=_slug_id(session, Body, filters.body, field="query.body") if filters.body else None,
                party_id=_slug_id(session, Party, filters.party, field="query.party")
                if filters.party
                else None,
            )
        )
    rows, cursor = keyset_page(session, stmt, [*keys, SortKey(Actor.id)], params)
    return [row[0] for row in rows], cursor


def _replace_identifiers(actor: Actor, pairs: list[tuple[str, str]]) -> None:
    # Keep the rows of identifiers that stay, so the unique (scheme, value) never sees a
    # new row inserted before the old one is deleted.
    kept = {(i.scheme, i.value): i for i in actor.identifiers}
    actor.identifiers = [kept.get(pair) or Identifier(scheme=pair[0], value=pair[1]) for pair in pairs]


def update_actor(writer: Writer, actor_id: int, data: ActorUpdate) -> Actor:
    session = writer.session
    actor = get_actor(session, actor_id)
    before = actor_snapshot(actor)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        raise Invalid("an actor needs a name", field="body.name")
    if changes.get("org_type") is not None and actor.kind == "person":
        raise Invalid("only organisations have an org_type", field="body.org_type")
    pairs = [(i.scheme, i.value) for i in data.identifiers] if data.identifiers is not None else None
    if pairs is not None:
        _check_identifiers_free(session, pairs, field="body.identifiers", actor_id=actor.id)
    if "name" in changes or "country" in changes:
        name, country = changes.get("name", actor.name), changes.get("country", actor.country)
        held = pairs if pairs is not None else [(i.scheme, i.value) for i in actor.identifiers]
        name_lock(session, [(actor.kind, match_name(name))])
        twins = same_actors(session, actor.kind, name, country, held, exclude=actor.id)
        if twins:
            raise Conflict(
                f"actor {twins[0].id} ('{twins[0].name}') is already this {actor.kind}; "
                f"merge the two (POST /v1/actors/{twins[0].id}/merge) instead of renaming",
                extra={"actor_id": twins[0].id, "candidates": [t.id for t in twins]},
            )
    # Country and org type are breakdown keys: the counts of what the actor signed move with them.
    with rollups.rewriting(session, Signature.actor_id == actor.id):
        for field in ("name", "sort_name", "country", "org_type"):
            if field in changes:
                setattr(actor, field, changes[field])
        if pairs is not None:
            _replace_identifiers(actor, pairs)
        if data.aliases is not None:
            set_aliases(actor, data.aliases)
        else:
            refresh_names(actor)
        actor.updated_at = utcnow()  # also when only the identifiers changed
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError as exc:
            raise Conflict("an identifier of this actor belongs to another actor already") from exc
    record_change(
        session, writer.key_name, "update", "actor", actor.id, before=before, after=actor_snapshot(actor)
    )
    return actor


def delete_actor(writer: Writer, actor_id: int) -> None:
    """Hard delete (admin), refused while the actor signed or received a letter: those rows
    are the registry's record and a deletion must not lose them."""
    session = writer.session
    actor = session.scalar(
        select(Actor)
        .where(Actor.id == actor_id)
        .options(
            *ACTOR_LOADS,
            selectinload(Actor.memberships).selectinload(Membership.body),
            selectinload(Actor.memberships).selectinload(Membership.party),
        )
    )
    if actor is None:
        raise missing_actor(session, actor_id)
    signed = session.scalar(select(func.count()).select_from(Signature).where(Signature.actor_id == actor_id))
    received = session.scalar(
        select(func.count()).select_from(Recipient).where(Recipient.actor_id == actor_id)
    )
    if signed or received:
        raise Conflict(
            f"actor {actor_id} has {signed} signature(s) and is a recipient of {received} letter(s); "
            "move or retract them first (a withdrawal keeps the signature)",
            extra={"signatures": signed, "letters_received": received},
        )
    before = actor_snapshot(actor)
    before["memberships"] = [membership_snapshot(m) for m in actor.memberships]
    session.delete(actor)
    session.flush()
    if actor.memberships:  # (seats gone from their bodies)
        rollups.touch_all(session)
    record_change(session, writer.key_name, "delete", "actor", actor_id, before=before)


# --- what an actor signed and received ----------------------------------------------------------


def _require_actor(session: Session, actor_id: int) -> None:
    if session.scalar(select(Actor.id).where(Actor.id == actor_id)) is None:
        raise missing_actor(session, actor_id)


def actor_history(
    session: Session, actor_id: int, params: PageParams
) -> tuple[list[ChangeRecord], str | None]:
    """The change records of an actor (made, edited, merged), oldest first."""
    _require_actor(session, actor_id)
    stmt = select(ChangeRecord).where(
        ChangeRecord.entity == "actor", ChangeRecord.entity_key == str(actor_id)
    )
    rows, cursor = keyset_page(session, stmt, [SortKey(ChangeRecord.id)], params)
    return [row[0] for row in rows], cursor


def actor_signatures(
    session: Session, actor_id: int, params: PageParams
) -> tuple[list[tuple[Signature, Letter]], str | None]:
    """The actor's signatures with their letters, newest first."""
    _require_actor(session, actor_id)
    stmt = select(Signature).add_columns(Letter).join(Letter, Letter.id == Signature.letter_id)
    stmt = stmt.where(Signature.actor_id == actor_id)
    keys = [SortKey(Signature.signed_on, descending=True), SortKey(Signature.id, descending=True)]
    rows, cursor = keyset_page(session, stmt, keys, params)
    return [(row[0], row[1]) for row in rows], cursor


def actor_letters_received(
    session: Session, actor_id: int, params: PageParams
) -> tuple[list[tuple[Recipient, Letter]], str | None]:
    """The letters addressed to the actor, in the order they were recorded."""
    _require_actor(session, actor_id)
    stmt = select(Recipient).add_columns(Letter).join(Letter, Letter.id == Recipient.letter_id)
    stmt = stmt.where(Recipient.actor_id == actor_id)
    rows, cursor = keyset_page(session, stmt, [SortKey(Recipient.id)], params)
    return [(row[0], row[1]) for row in rows], cursor


# --- memberships --------------------------------------------------------------------------------


def membership_snapshot(membership: Membership) -> dict[str, Any]:
    data = snapshot(membership)
    data["body"] = membership.body.slug
    data["party"] = membership.party.slug if membership.party else None
    return data


def _membership_query() -> Select[Membership]:
    return select(Membership).options(selectinload(Membership.body), selectinload(Membership.party))


def list_memberships(
    session: Session, actor_id: int, params: PageParams
) -> tuple[list[Membership], str | None]:
    _require_actor(session, actor_id)
    stmt = _membership_query().where(Membership.actor_id == actor_id)
    rows, cursor = keyset_page(
        session, stmt, [SortKey(Membership.start_date), SortKey(Membership.id)], params
    )
    return [row[0] for row in rows], cursor


def get_membership(session: Session, actor_id: int, membership_id: int) -> Membership:
    found = session.scalar(
        _membership_query().where(Membership.id == membership_id, Membership.actor_id == actor_id)
    )
    if found is None:
        _require_actor(session, actor_id)
        raise NotFound(f"actor {actor_id} has no membership {membership_id}")
    return found


def _check_dates(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise Invalid(f"ends before it starts ({start.isoformat()})", field="body.end_date")


def create_membership(writer: Writer, actor_id: int, data: MembershipCreate) -> Membership:
    session = writer.session
    actor = session.scalar(select(Actor).where(Actor.id == actor_id))
    if actor is None:
        raise missing_actor(session, actor_id)
    if actor.kind != "person":
        raise Invalid("only persons have memberships; this actor is an organisation", field="body")
    _check_dates(data.start_date, data.end_date)
    membership = Membership(
        actor_id=actor_id,
        body_id=_slug_id(session, Body, data.body, field="body.body"),
        party_id=_slug_id(session, Party, data.party, field="body.party") if data.party else None,
        constituency=data.constituency,
        start_date=data.start_date,
        end_date=data.end_date,
    )
    # A seat decides the body and party its holder's signatures are counted under, and counts
    # in its body's seats (every letter's share of that body).
    with rollups.rewriting(session, Signature.actor_id == actor_id):
        session.add(membership)
    rollups.touch_all(session)
    membership = get_membership(session, actor_id, membership.id)
    record_change(
        session,
        writer.key_name,
        "create",
        "membership",
        membership.id,
        after=membership_snapshot(membership),
    )
    return membership


def update_membership(
    writer: Writer, actor_id: int, membership_id: int, data: MembershipUpdate
) -> Membership:
    session = writer.session
    membership = get_membership(session, actor_id, membership_id)
    before = membership_snapshot(membership)
    changes = data.model_dump(exclude_unset=True)
    for required in ("body", "start_date"):
        if required in changes and changes[required] is None:
            raise Invalid("cannot be null", field=f"body.{required}")
    body_id = _slug_id(session, Body, changes["body"], field="body.body") if "body" in changes else None
    party = changes.get("party")
    party_id = _slug_id(session, Party, party, field="body.party") if party else None
    _check_dates(
        changes.get("start_date", membership.start_date), changes.get("end_date", membership.end_date)
    )
    with rollups.rewriting(session, Signature.actor_id == actor_id):
        if body_id is not None:
            membership.body_id = body_id
        if "party" in changes:
            membership.party_id = party_id
        for field in ("constituency", "start_date", "end_date"):
            if field in changes:
                setattr(membership, field, changes[field])
    rollups.touch_all(session)
    session.expire(membership, ["body", "party"])
    membership = get_membership(session, actor_id, membership_id)
    record_change(
        session,
        writer.key_name,
        "update",
        "membership",
        membership_id,
        before=before,
        after=membership_snapshot(membership),
    )
    return membership


def delete_membership(writer: Writer, actor_id: int, membership_id: int) -> None:
    """A correction (a seat recorded by mistake); a seat that ended gets an `end_date` instead."""
    session = writer.session
    membership = get_membership(session, actor_id, membership_id)
    before = membership_snapshot(membership)
    with rollups.rewriting(session, Signature.actor_id == actor_id):
        session.delete(membership)
    rollups.touch_all(session)
    record_change(session, writer.key_name, "delete", "membership", membership_id, before=before)


# --- bodies and parties -------------------------------------------------------------------------

Reference = TypeVar("Reference", Body, Party)


def _entity(model: type[Body] | type[Party]) -> str:
    return model.__name__.lower()


def get_reference(session: Session, model: type[Reference], slug: str) -> Reference:
    found = session.scalar(select(model).where(model.slug == slug))
    if found is None:
        raise NotFound(f"no {_entity(model)} with slug '{slug}'")
    return found


def list_references(
    session: Session, model: type[Reference], params: PageParams
) -> tuple[list[Reference], str | None]:
    rows, cursor = keyset_page(session, select(model), [SortKey(model.id)], params)
    return [row[0] for row in rows], cursor


def create_reference(writer: Writer, model: type[Reference], data: ReferenceCreate) -> Reference:
    session = writer.session
    duplicate = Conflict(f"a {_entity(model)} with slug '{data.slug}' already exists")
    if session.scalar(select(model.id).where(model.slug == data.slug)) is not None:
        raise duplicate
    row = model(slug=data.slug, name=data.name, country=data.country)
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise duplicate from exc
    record_change(session, writer.key_name, "create", _entity(model), row.slug, after=snapshot(row))
    return row


def update_reference(writer: Writer, model: type[Reference], slug: str, data: ReferenceUpdate) -> Reference:
    session = writer.session
    row = get_reference(session, model, slug)
    before = snapshot(row)
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise Invalid("cannot be null", field="body.name")
    for field, value in changes.items():
        setattr(row, field, value)
    rollups.touch_all(session)  # (a label of the letters' breakdowns)
    record_change(
        session, writer.key_name, "update", _entity(model), slug, before=before, after=snapshot(row)
    )
    return row


def seats_today(session: Session, body_ids: list[int]) -> dict[int, int]:
    """Seats of each body today: the actors whose seat today is in it (`app.seats`)."""
    return {int(i): n for i, n in seats.seats_in(session, Body.id, body_ids, date.today()).items()}
