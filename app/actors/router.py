"""HTTP for actors, their memberships, what they signed and received; bodies and parties:
parse, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.actors import identity_router, service
from app.actors.schemas import (
    ActorCreate,
    ActorKind,
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
    OrgType,
    PartyCreate,
    PartyOut,
    PartyUpdate,
)
from app.auth import AdminAccess, WriteAccess
from app.db.database import ReadSession
from app.errors import responses
from app.idempotency import IdempotencyKey
from app.models import Body, Membership, Party
from app.pagination import Page, PageParams, page_params, set_link_header
from app.schemas import Id, IsoDate

actors = APIRouter(prefix="/v1/actors", tags=["actors"])
bodies = APIRouter(prefix="/v1/bodies", tags=["bodies"])
parties = APIRouter(prefix="/v1/parties", tags=["parties"])

Paging = Annotated[PageParams, Depends(page_params)]
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


# --- actors -------------------------------------------------------------------------------------


@actors.get(
    "",
    operation_id="list_actors",
    summary="List actors, filtered",
    response_model=Page[ActorOut],
    responses=responses(422),
)
def list_actors(
    request: Request,
    response: Response,
    session: ReadSession,
    page: Paging,
    kind: ActorKind | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=500, description="Words that must all occur in the name (any case, accents, script)."
        ),
    ] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2.")] = None,
    org_type: OrgType | None = None,
    party: Annotated[FilterSlug, Query(description="Party slug: actors with a membership for it.")] = None,
    body: Annotated[FilterSlug, Query(description="Body slug: actors with a membership in it.")] = None,
    on: Annotated[
        IsoDate | None,
        Query(description="The day `party` and `body` memberships are valid on (default today)."),
    ] = None,
    identifier: Annotated[
        str | None,
        Query(max_length=600, description="`scheme:value`, matched exactly.", examples=["wikidata:Q42"]),
    ] = None,
) -> Page[ActorOut]:
    filters = service.ActorFilters(
        kind=kind,
        q=q,
        country=country,
        org_type=org_type,
        party=party,
        body=body,
        on=on,
        identifier=identifier,
    )
    items, cursor = service.list_actors(session, filters, page)
    set_link_header(request, response, cursor)
    return Page[ActorOut](items=[ActorOut.model_validate(a) for a in items], next_cursor=cursor)


@actors.post(
    "",
    operation_id="create_actor",
    summary="Create an actor",
    status_code=status.HTTP_201_CREATED,
    response_model=ActorOut,
    responses=responses(401, 403, 409, 422),
)
def create_actor(data: ActorCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    actor = service.create_actor(writer, data)
    return idem.created(writer, ActorOut.model_validate(actor), f"/v1/actors/{actor.id}")


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
def list_actor_signatures(
    actor_id: Id, request: Request, response: Response, session: ReadSession, page: Paging
) -> Page[ActorSignatureOut]:
    rows, cursor = service.actor_signatures(session, actor_id, page)
    set_link_header(request, response, cursor)
    items = [
        ActorSignatureOut(
            letter=LetterBrief.model_validate(letter),
            signed_on=signature.signed_on,
            capacity=signature.capacity,
            affiliation=signature.affiliation,
            position=signature.position,
            status=signature.status,
            withdrawn_on=signature.withdrawn_on,
        )
        for signature, letter in rows
    ]
    return Page[ActorSignatureOut](items=items, next_cursor=cursor)


@actors.get(
    "/{actor_id}/letters-received",
    operation_id="list_actor_letters_received",
    summary="Letters addressed to an actor",
    response_model=Page[ActorLetterReceivedOut],
    responses=responses(404, 422),
)
def list_actor_letters_received(
    actor_id: Id, request: Request, response: Response, session: ReadSession, page: Paging
) -> Page[ActorLetterReceivedOut]:
    rows, cursor = service.actor_letters_received(session, actor_id, page)
    set_link_header(request, response, cursor)
    items = [
        ActorLetterReceivedOut(
            letter=LetterBrief.model_validate(letter), role=recipient.role, capacity=recipient.capacity
        )
        for recipient, letter in rows
    ]
    return Page[ActorLetterReceivedOut](items=items, next_cursor=cursor)


# --- memberships --------------------------------------------------------------------------------


@actors.get(
    "/{actor_id}/memberships",
    operation_id="list_memberships",
    summary="An actor's memberships, by start date",
    response_model=Page[MembershipOut],
    responses=responses(404, 422),
)
def list_memberships(
    actor_id: Id, request: Request, response: Response, session: ReadSession, page: Paging
) -> Page[MembershipOut]:
    items, cursor = service.list_memberships(session, actor_id, page)
    set_link_header(request, response, cursor)
    return Page[MembershipOut](items=[membership_out(m) for m in items], next_cursor=cursor)


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
    if (replay := idem.replay(writer)) is not None:
        return replay
    membership = service.create_membership(writer, actor_id, data)
    location = f"/v1/actors/{actor_id}/memberships/{membership.id}"
    return idem.created(writer, membership_out(membership), location)


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


@bodies.get(
    "",
    operation_id="list_bodies",
    summary="List bodies (legislatures, chambers)",
    response_model=Page[BodyOut],
    responses=responses(422),
)
def list_bodies(request: Request, response: Response, session: ReadSession, page: Paging) -> Page[BodyOut]:
    items, cursor = service.list_references(session, Body, page)
    set_link_header(request, response, cursor)
    seats = service.seats_today(session, [b.id for b in items])
    return Page[BodyOut](items=bodies_out(items, seats), next_cursor=cursor)


@bodies.post(
    "",
    operation_id="create_body",
    summary="Create a body",
    status_code=status.HTTP_201_CREATED,
    response_model=BodyOut,
    responses=responses(401, 403, 409, 422),
)
def create_body(data: BodyCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    row = service.create_reference(writer, Body, data)
    return idem.created(writer, bodies_out([row], {})[0], f"/v1/bodies/{row.slug}")


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
def list_parties(request: Request, response: Response, session: ReadSession, page: Paging) -> Page[PartyOut]:
    items, cursor = service.list_references(session, Party, page)
    set_link_header(request, response, cursor)
    return Page[PartyOut](items=[PartyOut.model_validate(p) for p in items], next_cursor=cursor)


@parties.post(
    "",
    operation_id="create_party",
    summary="Create a party",
    status_code=status.HTTP_201_CREATED,
    response_model=PartyOut,
    responses=responses(401, 403, 409, 422),
)
def create_party(data: PartyCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    row = service.create_reference(writer, Party, data)
    return idem.created(writer, PartyOut.model_validate(row), f"/v1/parties/{row.slug}")


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
