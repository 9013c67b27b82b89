"""Actor use cases. The caller's transaction is open; we only flush."""

from __future__ import annotations

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.actors.schemas import ActorCreate
from app.auth import Writer
from app.changes import record_change, snapshot
from app.errors import Conflict, Invalid, NotFound
from app.models import Actor, Identifier
from app.text import match_name, search_text


def actor_snapshot(actor: Actor) -> dict[str, object]:
    data = snapshot(actor)
    data["identifiers"] = [f"{i.scheme}:{i.value}" for i in actor.identifiers]
    return data


def get_actor(session: Session, actor_id: int) -> Actor:
    actor = session.scalar(select(Actor).where(Actor.id == actor_id).options(selectinload(Actor.identifiers)))
    if actor is None:
        raise NotFound(f"no actor with id {actor_id}")
    return actor


def _check_identifiers_free(session: Session, pairs: list[tuple[str, str]], *, field: str) -> None:
    if len(set(pairs)) != len(pairs):
        raise Invalid("the same identifier is given twice", field=field)
    if not pairs:
        return
    taken = session.execute(
        select(Identifier.scheme, Identifier.value, Identifier.actor_id).where(
            tuple_(Identifier.scheme, Identifier.value).in_(pairs)
        )
    ).first()
    if taken is not None:
        raise Conflict(
            f"identifier {taken.scheme}:{taken.value} belongs to actor {taken.actor_id} already",
            extra={"actor_id": taken.actor_id},
        )


def create_actor(writer: Writer, data: ActorCreate, *, field: str = "body") -> Actor:
    """Create an actor with its identifiers; a taken `(scheme, value)` is a 409."""
    session = writer.session
    if data.kind == "person" and data.org_type is not None:
        raise Invalid("only organisations have an org_type", field=f"{field}.org_type")
    pairs = [(i.scheme, i.value) for i in data.identifiers]
    _check_identifiers_free(session, pairs, field=f"{field}.identifiers")
    actor = Actor(
        kind=data.kind,
        name=data.name,
        sort_name=data.sort_name,
        country=data.country,
        org_type=data.org_type,
        match_name=match_name(data.name),
        search_text=search_text(data.name, data.sort_name),
        identifiers=[Identifier(scheme=s, value=v) for s, v in pairs],
    )
    session.add(actor)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict("an identifier of this actor belongs to another actor already") from exc
    record_change(session, writer.key_name, "create", "actor", actor.id, after=actor_snapshot(actor))
    return actor
