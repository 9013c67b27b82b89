"""HTTP for letters and their signatures, recipients, events, claims and sources:
parse, call the service, shape the response."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session

from app.actors.schemas import ActorKind, OrgType
from app.auth import AdminAccess, WriteAccess
from app.db.database import ReadSession, get_database
from app.errors import responses
from app.http.hot_reads import letters_read
from app.http.renderings import Rendered
from app.idempotency import IdempotencyKey
from app.letters import export, service
from app.letters.schemas import (
    ClaimCreate,
    ClaimOut,
    EventCreate,
    EventOut,
    LetterCreate,
    LetterOut,
    LetterStatus,
    LetterUpdate,
    RecipientCreate,
    RecipientOut,
    RetractIn,
    RetractionOut,
    SignatureCreate,
    SignatureOut,
    SignatureStatus,
    SignatureUpdate,
    SourceCreate,
    SourceOut,
)
from app.models import Claim, Event, Recipient, Signature, Source
from app.pagination import Cursor, Limit, Page, PageParams, link_header, page_params, set_link_header
from app.schemas import MAX_INT, Id, IsoDate, Slug

router = APIRouter(prefix="/v1/letters", tags=["letters"])

Paging = Annotated[PageParams, Depends(page_params)]
ExportFormat = Literal["json", "csv", "ndjson"]


def _letter_out(view: service.LetterView) -> LetterOut:
    letter = view.letter
    return LetterOut.model_validate(
        {
            **{name: getattr(letter, name) for name in LetterOut.model_fields if hasattr(letter, name)},
            "recorded_signatory_count": view.recorded_signatory_count,
            "campaign": view.campaign,
            "claims": [ClaimOut.model_validate(c) for c in letter.claims],
            "sources": [SourceOut.model_validate(s) for s in letter.sources],
        }
    )


def _with_letter(obj: Signature | Recipient | Event, slug: str) -> dict[str, object]:
    data = {name: getattr(obj, name) for name in type(obj).__mapper__.column_attrs.keys()}  # noqa: SIM118
    data["letter"] = slug
    if isinstance(obj, Signature | Recipient):
        data["actor"] = obj.actor
        data["actor_match"] = getattr(obj, "actor_match", None)
    return data


def _signature_out(signature: Signature, slug: str) -> SignatureOut:
    return SignatureOut.model_validate(_with_letter(signature, slug))


def _recipient_out(recipient: Recipient, slug: str) -> RecipientOut:
    return RecipientOut.model_validate(_with_letter(recipient, slug))


def _event_out(event: Event, slug: str) -> EventOut:
    return EventOut.model_validate(_with_letter(event, slug))


# --- letters --------------------------------------------------------------------------------


@router.get(
    "",
    operation_id="list_letters",
    summary="List letters, newest first",
    response_model=Page[LetterOut],
    responses=responses(422),
)
async def list_letters(
    request: Request,
    limit: Limit = 50,
    cursor: Cursor = None,
    campaign: Annotated[Slug | None, Query(description="A campaign's slug.")] = None,
    q: Annotated[
        str | None, Query(max_length=500, description="Words in the title, summary or body.")
    ] = None,
    signatory: Annotated[
        int | None, Query(ge=1, le=MAX_INT, description="Letters this actor signed (not withdrawn).")
    ] = None,
    recipient: Annotated[
        int | None, Query(ge=1, le=MAX_INT, description="Letters addressed to this actor.")
    ] = None,
    published_from: Annotated[IsoDate | None, Query(description="Published on or after.")] = None,
    published_to: Annotated[IsoDate | None, Query(description="Published on or before.")] = None,
    status_: Annotated[LetterStatus | None, Query(alias="status")] = None,
) -> Response:
    filters = service.LetterFilters(
        campaign=campaign,
        q=q,
        signatory=signatory,
        recipient=recipient,
        published_from=published_from,
        published_to=published_to,
        status=status_,
    )

    def render(session: Session) -> Rendered:
        views, next_cursor = service.list_letters(session, filters, PageParams(limit=limit, cursor=cursor))
        body = Page[LetterOut](items=[_letter_out(v) for v in views], next_cursor=next_cursor)
        return Rendered(body.model_dump_json().encode(), link_header(request, next_cursor))

    # The counts are as of today; the URL holds the filters and the page, and makes the `Link`.
    return await letters_read(
        request, ("list", str(request.url), date.today()), render, media_type="application/json"
    )


@router.post(
    "",
    operation_id="create_letter",
    summary="Create a letter",
    status_code=status.HTTP_201_CREATED,
    response_model=LetterOut,
    responses=responses(401, 403, 409, 422),
)
def create_letter(data: LetterCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    view = service.create_letter(writer, data)
    return idem.created(writer, _letter_out(view), f"/v1/letters/{view.letter.slug}")


@router.get(
    "/{slug}",
    operation_id="get_letter",
    summary="A letter with its claimed and recorded counts",
    response_model=LetterOut,
    responses=responses(404),
)
def get_letter(slug: str, session: ReadSession) -> LetterOut:
    return _letter_out(service.get_letter(session, slug))


@router.patch(
    "/{slug}",
    operation_id="update_letter",
    summary="Update a letter",
    response_model=LetterOut,
    responses=responses(401, 403, 404, 422),
)
def update_letter(slug: str, data: LetterUpdate, writer: WriteAccess) -> LetterOut:
    return _letter_out(service.update_letter(writer, slug, data))


@router.delete(
    "/{slug}",
    operation_id="delete_letter",
    summary="Delete a letter with everything recorded about it (admin)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
)
def delete_letter(slug: str, writer: AdminAccess) -> Response:
    service.delete_letter(writer, slug)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- signatures -----------------------------------------------------------------------------


def _wants(fmt: ExportFormat | None, accept: str) -> ExportFormat:
    if fmt is not None:
        return fmt
    if "text/csv" in accept:
        return "csv"
    if "application/x-ndjson" in accept:
        return "ndjson"
    return "json"


@router.get(
    "/{slug}/signatures",
    operation_id="list_signatures",
    summary="A letter's signatures (JSON pages, or the whole list streamed as CSV or NDJSON)",
    response_model=Page[SignatureOut],
    responses={
        **responses(404, 422),
        200: {
            "description": "A page of signatures, or with `format=csv|ndjson` all of them, streamed.",
            "content": {"text/csv": {}, "application/x-ndjson": {}},
        },
    },
)
def list_signatures(
    slug: str,
    request: Request,
    response: Response,
    session: ReadSession,
    page: Paging,
    kind: ActorKind | None = None,
    country: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
    org_type: OrgType | None = None,
    party: Annotated[Slug | None, Query(description="Party slug, on the signing day.")] = None,
    body: Annotated[Slug | None, Query(description="Body slug, on the signing day.")] = None,
    status_: Annotated[SignatureStatus | None, Query(alias="status")] = None,
    include_withdrawn: Annotated[bool, Query(description="List withdrawn signatures too.")] = True,
    fmt: Annotated[ExportFormat | None, Query(alias="format", description="json, csv or ndjson.")] = None,
) -> Page[SignatureOut] | StreamingResponse:
    filters = service.SignatureFilters(
        kind=kind,
        country=country.upper() if country else None,
        org_type=org_type,
        party=party,
        body=body,
        status=status_,
        include_withdrawn=include_withdrawn,
    )
    wanted = _wants(fmt, request.headers.get("accept", ""))
    if wanted != "json":
        letter = service.find_letter(session, slug)
        rows = service.export_signatures(get_database(request).read_sessions, letter.id, filters)
        if wanted == "csv":
            chunks, media, ext = export.csv_chunks(rows), "text/csv; charset=utf-8", "csv"
        else:
            chunks, media, ext = export.ndjson_chunks(rows), "application/x-ndjson; charset=utf-8", "ndjson"
        return StreamingResponse(
            chunks,
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="{slug}-signatures.{ext}"',
                "Vary": "Accept",
            },
        )
    signatures, cursor = service.list_signatures(session, slug, filters, page)
    set_link_header(request, response, cursor)
    response.headers["Vary"] = "Accept"
    return Page[SignatureOut](items=[_signature_out(s, slug) for s in signatures], next_cursor=cursor)


@router.post(
    "/{slug}/signatures",
    operation_id="add_signature",
    summary="Add a signature: an existing actor (actor_id) or a new one (actor)",
    status_code=status.HTTP_201_CREATED,
    response_model=SignatureOut,
    responses=responses(401, 403, 404, 409, 422),
)
def add_signature(slug: str, data: SignatureCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    signature = service.add_signature(writer, slug, data)
    location = f"/v1/letters/{slug}/signatures/{signature.actor_id}"
    return idem.created(writer, _signature_out(signature, slug), location)


@router.get(
    "/{slug}/signatures/{actor_id:int}",
    operation_id="get_signature",
    summary="One actor's signature of a letter",
    response_model=SignatureOut,
    responses=responses(404, 422),
)
def get_signature(slug: str, actor_id: Id, session: ReadSession) -> SignatureOut:
    return _signature_out(service.get_signature(session, slug, actor_id), slug)


@router.patch(
    "/{slug}/signatures/{actor_id:int}",
    operation_id="update_signature",
    summary='Correct a signature; {"withdrawn_on": null} reinstates it, {"actor_id": N} moves it',
    response_model=SignatureOut,
    responses=responses(401, 403, 404, 409, 422),
)
def update_signature(slug: str, actor_id: Id, data: SignatureUpdate, writer: WriteAccess) -> SignatureOut:
    return _signature_out(service.update_signature(writer, slug, actor_id, data), slug)


@router.post(
    "/{slug}/signatures/{actor_id:int}/retract",
    operation_id="retract_signature",
    summary="Retract a signature recorded by mistake (not a withdrawal)",
    description=(
        "For a signature that should never have been recorded (the wrong list, the wrong actor): it "
        "leaves every count and timeline as if it had never been recorded. A withdrawal, by "
        "contrast, is the signatory taking it back (`DELETE`). The change record keeps the "
        "signature as it was, who retracted it and the `reason`; "
        "`GET /v1/letters/{slug}/retractions` lists them."
    ),
    response_model=RetractionOut,
    responses=responses(401, 403, 404, 422),
)
def retract_signature(
    slug: str, actor_id: Id, data: RetractIn, writer: WriteAccess, idem: IdempotencyKey
) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    out = RetractionOut.model_validate(service.retract_signature(writer, slug, actor_id, data.reason))
    return idem.store(writer, JSONResponse(out.model_dump(mode="json")))


@router.get(
    "/{slug}/retractions",
    operation_id="list_retractions",
    summary="Signatures retracted as mistakes, with who and why",
    response_model=Page[RetractionOut],
    responses=responses(404, 422),
)
def list_retractions(
    slug: str, request: Request, response: Response, session: ReadSession, page: Paging
) -> Page[RetractionOut]:
    items, cursor = service.list_retractions(session, slug, page)
    set_link_header(request, response, cursor)
    return Page[RetractionOut](items=[RetractionOut.model_validate(i) for i in items], next_cursor=cursor)


@router.delete(
    "/{slug}/signatures/{actor_id:int}",
    operation_id="withdraw_signature",
    summary="Record a withdrawal (today, or ?on=DATE); the signature is kept with its date",
    response_model=SignatureOut,
    responses=responses(401, 403, 404, 409, 422),
)
def withdraw_signature(
    slug: str,
    actor_id: Id,
    writer: WriteAccess,
    on: Annotated[IsoDate | None, Query(description="The day of the withdrawal (default today).")] = None,
) -> SignatureOut:
    return _signature_out(service.withdraw_signature(writer, slug, actor_id, on), slug)


# --- recipients -----------------------------------------------------------------------------


@router.get(
    "/{slug}/recipients",
    operation_id="list_recipients",
    summary="Who a letter is addressed to",
    response_model=Page[RecipientOut],
    responses=responses(404, 422),
)
def list_recipients(
    slug: str, request: Request, response: Response, session: ReadSession, page: Paging
) -> Page[RecipientOut]:
    items, cursor = service.list_recipients(session, slug, page)
    set_link_header(request, response, cursor)
    return Page[RecipientOut](items=[_recipient_out(r, slug) for r in items], next_cursor=cursor)


@router.post(
    "/{slug}/recipients",
    operation_id="add_recipient",
    summary="Add a recipient: an existing actor (actor_id) or a new one (actor)",
    status_code=status.HTTP_201_CREATED,
    response_model=RecipientOut,
    responses=responses(401, 403, 404, 409, 422),
)
def add_recipient(slug: str, data: RecipientCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    recipient = service.add_recipient(writer, slug, data)
    location = f"/v1/letters/{slug}/recipients/{recipient.id}"
    return idem.created(writer, _recipient_out(recipient, slug), location)


@router.get(
    "/{slug}/recipients/{recipient_id}",
    operation_id="get_recipient",
    summary="One recipient of a letter",
    response_model=RecipientOut,
    responses=responses(404, 422),
)
def get_recipient(slug: str, recipient_id: Id, session: ReadSession) -> RecipientOut:
    return _recipient_out(service.get_recipient(session, slug, recipient_id), slug)


@router.delete(
    "/{slug}/recipients/{recipient_id}",
    operation_id="remove_recipient",
    summary="Remove a recipient recorded by mistake (admin; a correction, kept in the change records)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
)
def remove_recipient(slug: str, recipient_id: Id, writer: AdminAccess) -> Response:
    service.remove_recipient(writer, slug, recipient_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- events, claims, sources ----------------------------------------------------------------


@router.get(
    "/{slug}/events",
    operation_id="list_letter_events",
    summary="A letter's events, by date",
    response_model=Page[EventOut],
    responses=responses(404, 422),
)
def list_events(
    slug: str, request: Request, response: Response, session: ReadSession, page: Paging
) -> Page[EventOut]:
    items, cursor = service.list_parts(session, slug, Event, page)
    set_link_header(request, response, cursor)
    return Page[EventOut](items=[_event_out(e, slug) for e in items], next_cursor=cursor)


@router.post(
    "/{slug}/events",
    operation_id="add_letter_event",
    summary="Add an event: published, delivered, response, debated, other",
    status_code=status.HTTP_201_CREATED,
    response_model=EventOut,
    responses=responses(401, 403, 404, 422),
)
def add_event(slug: str, data: EventCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    event = service.add_part(writer, slug, Event, data)
    return idem.created(writer, _event_out(event, slug), f"/v1/letters/{slug}/events/{event.id}")


@router.get(
    "/{slug}/events/{event_id}",
    operation_id="get_letter_event",
    summary="One event of a letter",
    response_model=EventOut,
    responses=responses(404, 422),
)
def get_event(slug: str, event_id: int, session: ReadSession) -> EventOut:
    return _event_out(service.get_part(session, slug, Event, event_id), slug)


@router.get(
    "/{slug}/claims",
    operation_id="list_claims",
    summary="Every count reported for a letter, with its wording and source",
    response_model=Page[ClaimOut],
    responses=responses(404, 422),
)
def list_claims(
    slug: str, request: Request, response: Response, session: ReadSession, page: Paging
) -> Page[ClaimOut]:
    items, cursor = service.list_parts(session, slug, Claim, page)
    set_link_header(request, response, cursor)
    return Page[ClaimOut](items=[ClaimOut.model_validate(c) for c in items], next_cursor=cursor)


@router.post(
    "/{slug}/claims",
    operation_id="add_claim",
    summary="Add a reported count",
    status_code=status.HTTP_201_CREATED,
    response_model=ClaimOut,
    responses=responses(401, 403, 404, 422),
)
def add_claim(slug: str, data: ClaimCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    claim = service.add_part(writer, slug, Claim, data)
    return idem.created(writer, ClaimOut.model_validate(claim), f"/v1/letters/{slug}/claims/{claim.id}")


@router.get(
    "/{slug}/claims/{claim_id}",
    operation_id="get_claim",
    summary="One reported count",
    response_model=ClaimOut,
    responses=responses(404, 422),
)
def get_claim(slug: str, claim_id: int, session: ReadSession) -> ClaimOut:
    return ClaimOut.model_validate(service.get_part(session, slug, Claim, claim_id))


@router.get(
    "/{slug}/sources",
    operation_id="list_sources",
    summary="A letter's sources",
    response_model=Page[SourceOut],
    responses=responses(404, 422),
)
def list_sources(
    slug: str, request: Request, response: Response, session: ReadSession, page: Paging
) -> Page[SourceOut]:
    items, cursor = service.list_parts(session, slug, Source, page)
    set_link_header(request, response, cursor)
    return Page[SourceOut](items=[SourceOut.model_validate(s) for s in items], next_cursor=cursor)


@router.post(
    "/{slug}/sources",
    operation_id="add_source",
    summary="Add a source (a URL with a label)",
    status_code=status.HTTP_201_CREATED,
    response_model=SourceOut,
    responses=responses(401, 403, 404, 422),
)
def add_source(slug: str, data: SourceCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    if (replay := idem.replay(writer)) is not None:
        return replay
    source = service.add_part(writer, slug, Source, data)
    return idem.created(writer, SourceOut.model_validate(source), f"/v1/letters/{slug}/sources/{source.id}")


@router.get(
    "/{slug}/sources/{source_id}",
    operation_id="get_source",
    summary="One source of a letter",
    response_model=SourceOut,
    responses=responses(404, 422),
)
def get_source(slug: str, source_id: int, session: ReadSession) -> SourceOut:
    return SourceOut.model_validate(service.get_part(session, slug, Source, source_id))
