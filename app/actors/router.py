"""HTTP for actors, their memberships, what they signed and received; bodies and parties:
parse, call the service, shape the response."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from app.actors import identity_router, service
from app.actors.schemas import (
    ActorCreate,
    ActorLetterReceivedOut,
    ActorOut,
    ActorSignatureOut,
    ActorUpdate,
    BodyCreate,
    BodyOut,
    BodyUpdate,
    LetterBrief,
    MembershipCreate,
    MembershipOut,
    MembershipUpdate,
    PartyCreate,
    PartyOut,
    PartyUpdate,
)
from app.auth import AdminAccess, WriteAccess
from app.db.database import ReadSession
from app.errors import responses
from app.idempotency import IdempotencyKey
from app.models import Body, Letter, Membership, Party, Recipient, Signature
from app.pagination import Page, Paged, PageParams
from app.schemas import Country, Id, IsoDate
from app.vocabulary import ActorKind, OrgType

actors = APIRouter(prefix="/v1/actors", tags=["actors"])
bodies = APIRouter(prefix="/v1/bodies", tags=["bodies"])
parties = APIRouter(prefix="/v1/parties", tags=["parties"])

FilterSlug = Annotated[str | None, Query(max_length=200, pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")]


def membership_out(membership: Membership) -> MembershipOut:
    return MembershipOut(
        id=membership.id,
        actor_id=membership.actor_id,
        body=membership.body.slug,
        body_name=membership.body.name,
        party=membership.party.slug if membership.party else None,
        party_name=membership.party.name if membership.party else None,
        constituency=membership.constituency,
        start_date=membership.start_date,
        end_date=membership.end_date,
    )


def _actor_signature_out(row: tuple[Signature, Letter]) -> ActorSignatureOut:
    signature, letter = row
    return ActorSignatureOut(
        letter=LetterBrief.model_validate(letter),
        signed_on=signature.signed_on,
        capacity=signature.capacity,
        affiliation=signature.affiliation,
        position=signature.position,
        status=signature.status,
        withdrawn_on=signature.withdrawn_on,
    )


def _letter_received_out(row: tuple[Recipient, Letter]) -> ActorLetterReceivedOut:
    recipient, letter = row
    return ActorLetterReceivedOut(
        letter=LetterBrief.model_validate(letter), role=recipient.role, capacity=recipient.capacity
    )


# --- actors -------------------------------------------------------------------------------------


SEATS_ON = "Seats-On"


@actors.get(
    "",
    operation_id="list_actors",
    summary="List actors, filtered",
    description=(
        "`party` and `body` select the actors by the seat they held on `on`; without `on` that "
        f"day is today (the server's date). Whenever `party` or `body` is given, the `{SEATS_ON}` "
        "response header names the day used (`2020-09-09`), so a dashboard can show it and pass "
        "it as `on` to keep further pages on the same day."
    ),
    response_model=Page[ActorOut],
    responses={
        200: {
            "headers": {
                SEATS_ON: {
                    "description": "With `party` or `body`: the day whose seats were used (ISO date).",
                    "schema": {"type": "string", "format": "date"},
                }
            }
        },
        **responses(422),
    },
)
def list_actors(
    session: ReadSession,
    pager: Paged,
    kind: ActorKind | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=500, description="Words that must all occur in the name (any case, accents, script)."
        ),
    ] = None,
    country: Annotated[Country | None, Query(description="ISO 3166-1 alpha-2 (or XK).")] = None,
    org_type: OrgType | None = None,
    party: Annotated[
        FilterSlug, Query(description="Party slug: actors whose seat on `on` is for it.")
    ] = None,
    body: Annotated[FilterSlug, Query(description="Body slug: actors whose seat on `on` is in it.")] = None,
    on: Annotated[
        IsoDate | None,
        Query(
            description="The day of the seat `party` and `body` select (default today): of several "
            "memberships valid that day, the latest-starting, then the first recorded."
        ),
    ] = None,
    identifier: Annotated[
        str | None,
        Query(max_length=600, description="`scheme:value`, matched exactly.", examples=["wikidata:Q42"]),
    ] = None,
) -> Response:
    seats_on = (on or date.today()) if (party or body) else None
    filters = service.ActorFilters(
        kind=kind,
        q=q,
        country=country,
        org_type=org_type,
        party=party,
        body=body,
        on=seats_on,
        identifier=identifier,
    )
    headers = {SEATS_ON: seats_on.isoformat()} if seats_on else None
    return pager.respond(
        session, ActorOut, lambda s, page: service.list_actors(s, filters, page), headers=headers
    )


@actors.post(
    "",
    operation_id="create_actor",
    summary="Create an actor",
    status_code=status.HTTP_201_CREATED,
    response_model=ActorOut,
    responses=responses(401, 403, 409, 422),
)
def create_actor(data: ActorCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    actor = service.create_actor(writer, data)
    return idem.created(ActorOut.model_validate(actor), f"/v1/actors/{actor.id}")


@actors.get(
    "/{actor_id}",
    operation_id="get_actor",
    summary="An actor with its identifiers",
    response_model=ActorOut,
    responses=responses(404, 422),
)
def get_actor(actor_id: Id, session: ReadSession) -> ActorOut:
    return ActorOut.model_validate(service.get_actor(session, actor_id))


@actors.patch(
    "/{actor_id}",
    operation_id="update_actor",
    summary="Update an actor (`identifiers` replaces the list)",
    response_model=ActorOut,
    responses=responses(401, 403, 404, 409, 422),
)
def update_actor(actor_id: Id, data: ActorUpdate, writer: WriteAccess) -> ActorOut:
    return ActorOut.model_validate(service.update_actor(writer, actor_id, data))


@actors.delete(
    "/{actor_id}",
    operation_id="delete_actor",
    summary="Delete an actor (admin); refused while it has signatures or received letters",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409, 422),
)
def delete_actor(actor_id: Id, writer: AdminAccess) -> Response:
    service.delete_actor(writer, actor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@actors.get(
    "/{actor_id}/signatures",
    operation_id="list_actor_signatures",
    summary="What an actor signed, newest first",
    response_model=Page[ActorSignatureOut],
    responses=responses(404, 422),
)
def list_actor_signatures(actor_id: Id, session: ReadSession, pager: Paged) -> Response:
    return pager.respond(
        session,
        ActorSignatureOut,
        lambda s, page: service.actor_signatures(s, actor_id, page),
        _actor_signature_out,
    )


@actors.get(
    "/{actor_id}/letters-received",
    operation_id="list_actor_letters_received",
    summary="Letters addressed to an actor",
    response_model=Page[ActorLetterReceivedOut],
    responses=responses(404, 422),
)
def list_actor_letters_received(actor_id: Id, session: ReadSession, pager: Paged) -> Response:
    return pager.respond(
        session,
        ActorLetterReceivedOut,
        lambda s, page: service.actor_letters_received(s, actor_id, page),
        _letter_received_out,
    )


# --- memberships --------------------------------------------------------------------------------


@actors.get(
    "/{actor_id}/memberships",
    operation_id="list_memberships",
    summary="An actor's memberships, by start date",
    response_model=Page[MembershipOut],
    responses=responses(404, 422),
)
def list_memberships(actor_id: Id, session: ReadSession, pager: Paged) -> Response:
    return pager.respond(
        session, MembershipOut, lambda s, page: service.list_memberships(s, actor_id, page), membership_out
    )


@actors.post(
    "/{actor_id}/memberships",
    operation_id="create_membership",
    summary="Add a membership (a person's dated seat in a body)",
    status_code=status.HTTP_201_CREATED,
    response_model=MembershipOut,
    responses=responses(401, 403, 404, 422),
)
def create_membership(
    actor_id: Id, data: MembershipCreate, writer: WriteAccess, idem: IdempotencyKey
) -> Response:
    membership = service.create_membership(writer, actor_id, data)
    location = f"/v1/actors/{actor_id}/memberships/{membership.id}"
    return idem.created(membership_out(membership), location)


@actors.get(
    "/{actor_id}/memberships/{membership_id}",
    operation_id="get_membership",
    summary="One membership",
    response_model=MembershipOut,
    responses=responses(404, 422),
)
def get_membership(actor_id: Id, membership_id: Id, session: ReadSession) -> MembershipOut:
    return membership_out(service.get_membership(session, actor_id, membership_id))


@actors.patch(
    "/{actor_id}/memberships/{membership_id}",
    operation_id="update_membership",
    summary="Update a membership (e.g. set its end_date)",
    response_model=MembershipOut,
    responses=responses(401, 403, 404, 422),
)
def update_membership(
    actor_id: Id, membership_id: Id, data: MembershipUpdate, writer: WriteAccess
) -> MembershipOut:
    return membership_out(service.update_membership(writer, actor_id, membership_id, data))


@actors.delete(
    "/{actor_id}/memberships/{membership_id}",
    operation_id="delete_membership",
    summary="Delete a membership recorded by mistake (admin; a correction, kept in the change records)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 422),
)
def delete_membership(actor_id: Id, membership_id: Id, writer: AdminAccess) -> Response:
    service.delete_membership(writer, actor_id, membership_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- bodies -------------------------------------------------------------------------------------


def bodies_out(rows: list[Body], seats: dict[int, int]) -> list[BodyOut]:
    return [
        BodyOut(
            id=b.id,
            slug=b.slug,
            name=b.name,
            country=b.country,
            created_at=b.created_at,
            updated_at=b.updated_at,
            seats_today=seats.get(b.id, 0),
        )
        for b in rows
    ]


def _bodies_page(session: Session, page: PageParams) -> tuple[list[BodyOut], str | None]:
    rows, cursor = service.list_references(session, Body, page)
    return bodies_out(rows, service.seats_today(session, [b.id for b in rows])), cursor


@bodies.get(
    "",
    operation_id="list_bodies",
    summary="List bodies (legislatures, chambers)",
    response_model=Page[BodyOut],
    responses=responses(422),
)
def list_bodies(session: ReadSession, pager: Paged) -> Response:
    return pager.respond(session, BodyOut, _bodies_page)


@bodies.post(
    "",
    operation_id="create_body",
    summary="Create a body",
    status_code=status.HTTP_201_CREATED,
    response_model=BodyOut,
    responses=responses(401, 403, 409, 422),
)
def create_body(data: BodyCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    row = service.create_reference(writer, Body, data)
    return idem.created(bodies_out([row], {})[0], f"/v1/bodies/{row.slug}")


@bodies.get(
    "/{slug}",
    operation_id="get_body",
    summary="A body",
    response_model=BodyOut,
    responses=responses(404),
)
def get_body(slug: str, session: ReadSession) -> BodyOut:
    row = service.get_reference(session, Body, slug)
    return bodies_out([row], service.seats_today(session, [row.id]))[0]


@bodies.patch(
    "/{slug}",
    operation_id="update_body",
    summary="Update a body",
    response_model=BodyOut,
    responses=responses(401, 403, 404, 422),
)
def update_body(slug: str, data: BodyUpdate, writer: WriteAccess) -> BodyOut:
    row = service.update_reference(writer, Body, slug, data)
    return bodies_out([row], service.seats_today(writer.session, [row.id]))[0]


# --- parties ------------------------------------------------------------------------------------


@parties.get(
    "",
    operation_id="list_parties",
    summary="List political parties",
    response_model=Page[PartyOut],
    responses=responses(422),
)
def list_parties(session: ReadSession, pager: Paged) -> Response:
    return pager.respond(session, PartyOut, lambda s, page: service.list_references(s, Party, page))


@parties.post(
    "",
    operation_id="create_party",
    summary="Create a party",
    status_code=status.HTTP_201_CREATED,
    response_model=PartyOut,
    responses=responses(401, 403, 409, 422),
)
def create_party(data: PartyCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    row = service.create_reference(writer, Party, data)
    return idem.created(PartyOut.model_validate(row), f"/v1/parties/{row.slug}")


@parties.get(
    "/{slug}",
    operation_id="get_party",
    summary="A party",
    response_model=PartyOut,
    responses=responses(404),
)
def get_party(slug: str, session: ReadSession) -> PartyOut:
    return PartyOut.model_validate(service.get_reference(session, Party, slug))


@parties.patch(
    "/{slug}",
    operation_id="update_party",
    summary="Update a party",
    response_model=PartyOut,
    responses=responses(401, 403, 404, 422),
)
def update_party(slug: str, data: PartyUpdate, writer: WriteAccess) -> PartyOut:
    return PartyOut.model_validate(service.update_reference(writer, Party, slug, data))


router = APIRouter()
router.include_router(identity_router.actors)
router.include_router(identity_router.review)
router.include_router(actors)
router.include_router(bodies)
router.include_router(parties)
