"""HTTP for letters and their signatures, recipients, events, claims and sources:
parse, call the service, shape the response."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Generic, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

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
    LetterUpdate,
    RecipientCreate,
    RecipientOut,
    RetractIn,
    RetractionOut,
    SignatureCreate,
    SignatureOut,
    SignatureUpdate,
    SourceCreate,
    SourceOut,
)
from app.letters.service import Part
from app.models import Claim, Event, Recipient, Signature, Source
from app.pagination import Page, Paged
from app.schemas import MAX_INT, Country, Id, IsoDate, Output, Slug
from app.vocabulary import ActorKind, LetterStatus, OrgType, SignatureStatus

router = APIRouter(prefix="/v1/letters", tags=["letters"])

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
    pager: Paged,
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
        return Rendered(
            *pager.render(
                session, LetterOut, lambda s, page: service.list_letters(s, filters, page), _letter_out
            )
        )

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
    view = service.create_letter(writer, data)
    return idem.created(_letter_out(view), f"/v1/letters/{view.letter.slug}")


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
    session: ReadSession,
    pager: Paged,
    kind: ActorKind | None = None,
    country: Annotated[Country | None, Query(description="ISO 3166-1 alpha-2 (or XK).")] = None,
    org_type: OrgType | None = None,
    party: Annotated[Slug | None, Query(description="Party slug, on the signing day.")] = None,
    body: Annotated[Slug | None, Query(description="Body slug, on the signing day.")] = None,
    status_: Annotated[SignatureStatus | None, Query(alias="status")] = None,
    include_withdrawn: Annotated[bool, Query(description="List withdrawn signatures too.")] = True,
    fmt: Annotated[ExportFormat | None, Query(alias="format", description="json, csv or ndjson.")] = None,
) -> Response:
    filters = service.SignatureFilters(
        kind=kind,
        country=country,
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
    return pager.respond(
        session,
        SignatureOut,
        lambda s, page: service.list_signatures(s, slug, filters, page),
        lambda signature: _signature_out(signature, slug),
        headers={"Vary": "Accept"},
    )


@router.post(
    "/{slug}/signatures",
    operation_id="add_signature",
    summary="Add a signature: an existing actor (actor_id) or a new one (actor)",
    status_code=status.HTTP_201_CREATED,
    response_model=SignatureOut,
    responses=responses(401, 403, 404, 409, 422),
)
def add_signature(slug: str, data: SignatureCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    signature = service.add_signature(writer, slug, data)
    location = f"/v1/letters/{slug}/signatures/{signature.actor_id}"
    return idem.created(_signature_out(signature, slug), location)


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
    out = RetractionOut.model_validate(service.retract_signature(writer, slug, actor_id, data.reason))
    return idem.answer(out)


@router.get(
    "/{slug}/retractions",
    operation_id="list_retractions",
    summary="Signatures retracted as mistakes, with who and why",
    response_model=Page[RetractionOut],
    responses=responses(404, 422),
)
def list_retractions(slug: str, session: ReadSession, pager: Paged) -> Response:
    return pager.respond(session, RetractionOut, lambda s, page: service.list_retractions(s, slug, page))


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
def list_recipients(slug: str, session: ReadSession, pager: Paged) -> Response:
    return pager.respond(
        session,
        RecipientOut,
        lambda s, page: service.list_recipients(s, slug, page),
        lambda recipient: _recipient_out(recipient, slug),
    )


@router.post(
    "/{slug}/recipients",
    operation_id="add_recipient",
    summary="Add a recipient: an existing actor (actor_id) or a new one (actor)",
    status_code=status.HTTP_201_CREATED,
    response_model=RecipientOut,
    responses=responses(401, 403, 404, 409, 422),
)
def add_recipient(slug: str, data: RecipientCreate, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    recipient = service.add_recipient(writer, slug, data)
    location = f"/v1/letters/{slug}/recipients/{recipient.id}"
    return idem.created(_recipient_out(recipient, slug), location)


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


@dataclass(frozen=True)
class _PartRoutes(Generic[Part]):
    """How one kind of a letter's parts is served: `/{slug}/{collection}` lists them (`GET`) and
    adds one (`POST`), `/{slug}/{collection}/{<id_name>}` reads one. The three kinds share the
    endpoints' code and differ only in these names, schemas and summaries."""

    model: type[Part]
    collection: str
    id_name: str
    create: type[EventCreate | ClaimCreate | SourceCreate]
    item: type[Output]
    operation_ids: tuple[str, str, str]  # list, add, get
    summaries: tuple[str, str, str]
    with_letter: Callable[[Part, str], Output] | None = None  # an item that names its letter

    def out(self, row: Part, slug: str) -> Output:
        return self.with_letter(row, slug) if self.with_letter else self.item.model_validate(row)

    def include(self, router: APIRouter) -> None:
        list_id, add_id, get_id = self.operation_ids
        list_summary, add_summary, get_summary = self.summaries

        def list_parts(slug: str, session: ReadSession, pager: Paged) -> Response:
            return pager.respond(
                session,
                self.item,
                lambda s, page: service.list_parts(s, slug, self.model, page),
                lambda row: self.out(row, slug),
            )

        def add_part(
            slug: str,
            data: EventCreate | ClaimCreate | SourceCreate,
            writer: WriteAccess,
            idem: IdempotencyKey,
        ) -> Response:
            row = service.add_part(writer, slug, self.model, data)
            return idem.created(self.out(row, slug), f"/v1/letters/{slug}/{self.collection}/{row.id}")

        def get_part(slug: str, part_id: int, session: ReadSession) -> Output:
            return self.out(service.get_part(session, slug, self.model, part_id), slug)

        # The body's schema and the id's name are this kind's: FastAPI reads them from the
        # annotations (strings resolved in this module, or the objects set here).
        add_part.__annotations__["data"] = self.create
        get_part.__annotations__["part_id"] = Annotated[int, Path(alias=self.id_name)]
        base = f"/{{slug}}/{self.collection}"
        router.add_api_route(
            base,
            list_parts,
            methods=["GET"],
            operation_id=list_id,
            summary=list_summary,
            response_model=Page[self.item],  # type: ignore[name-defined]
            responses=responses(404, 422),
        )
        router.add_api_route(
            base,
            add_part,
            methods=["POST"],
            operation_id=add_id,
            summary=add_summary,
            status_code=status.HTTP_201_CREATED,
            response_model=self.item,
            responses=responses(401, 403, 404, 422),
        )
        router.add_api_route(
            f"{base}/{{{self.id_name}}}",
            get_part,
            methods=["GET"],
            operation_id=get_id,
            summary=get_summary,
            response_model=self.item,
            responses=responses(404, 422),
        )


_PartRoutes(
    model=Event,
    collection="events",
    id_name="event_id",
    create=EventCreate,
    item=EventOut,
    with_letter=_event_out,
    operation_ids=("list_letter_events", "add_letter_event", "get_letter_event"),
    summaries=(
        "A letter's events, by date",
        "Add an event: published, delivered, response, debated, other",
        "One event of a letter",
    ),
).include(router)
_PartRoutes(
    model=Claim,
    collection="claims",
    id_name="claim_id",
    create=ClaimCreate,
    item=ClaimOut,
    operation_ids=("list_claims", "add_claim", "get_claim"),
    summaries=(
        "Every count reported for a letter, with its wording and source",
        "Add a reported count",
        "One reported count",
    ),
).include(router)
_PartRoutes(
    model=Source,
    collection="sources",
    id_name="source_id",
    create=SourceCreate,
    item=SourceOut,
    operation_ids=("list_sources", "add_source", "get_source"),
    summaries=("A letter's sources", "Add a source (a URL with a label)", "One source of a letter"),
).include(router)
