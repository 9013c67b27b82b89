"""HTTP for imports: `POST /v1/letters/{slug}/signatures/import` (CSV or a JSON array)."""

from __future__ import annotations

from email.message import Message
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from app.auth import WriteAccess
from app.config import app_settings
from app.errors import UnsupportedMediaType, responses
from app.idempotency import IdempotencyKey
from app.imports import service
from app.imports.parsing import IDENTIFIER_COLUMNS, Shape, parse_renames, read_csv, read_json
from app.vocabulary import ACTOR_KINDS, ORG_TYPES, SIGNATURE_STATUSES, ActorKind, json_enum

router = APIRouter(prefix="/v1/letters", tags=["imports"])

_ROW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "kind": json_enum(ACTOR_KINDS),
        "capacity": {"type": "string"},
        "affiliation": {"type": "string"},
        "country": {"type": "string", "description": "ISO 3166-1 alpha-2, or XK (Kosovo); any case"},
        "org_type": json_enum(ORG_TYPES),
        "sort_name": {"type": "string"},
        "body": {"type": "string", "description": "body slug"},
        "party": {"type": "string", "description": "party slug"},
        "signed_on": {"type": "string", "format": "date"},
        "withdrawn_on": {"type": "string", "format": "date"},
        "position": {"type": "integer"},
        "source": {"type": "string"},
        "status": json_enum(SIGNATURE_STATUSES),
        **{scheme: {"type": "string"} for scheme in IDENTIFIER_COLUMNS},
        "identifiers": {"type": "string", "description": "scheme:value;scheme:value"},
    },
}
_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "text/tab-separated-values": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": _ROW_SCHEMA}},
        },
    }
}


class ImportedActor(BaseModel):
    id: int | None = Field(description="`null` for the new actor of a dry run, which is not made.")
    name: str


class ImportCandidate(BaseModel):
    id: int
    name: str
    score: float = Field(description="0..1, the fuzzy scorer's over 100.")


class ImportSummary(BaseModel):
    """Every row counted, whether or not `rows` lists it."""

    rows: int
    created: int
    matched: int
    duplicate: int
    ambiguous: int
    error: int


class ImportRowReport(BaseModel):
    """One row's outcome; a field that does not apply to it is absent."""

    row: int = Field(description="Which row of the body; error messages use the same number.")
    line: int | SkipJsonSchema[None] = Field(
        None,
        description=(
            "The physical line of the CSV file the row starts on (the header is line 1, blank lines "
            "and each line of a multi-line cell count), on the rows that need attention."
        ),
    )
    status: service.Status
    actor: ImportedActor | SkipJsonSchema[None] = Field(
        None, description="The actor signed (created or matched)."
    )
    method: str | SkipJsonSchema[None] = Field(
        None,
        description=(
            "How the actor was found: `identifier`, `actor_id`, `exact`, `alias`, `seat`, `fuzzy`, "
            "or `row` (a `duplicate` of an earlier row's new actor). See docs/identity.md."
        ),
    )
    score: float | SkipJsonSchema[None] = Field(
        None, description="1 for all but `fuzzy` (and `seat` among fuzzy candidates)."
    )
    candidates: list[ImportCandidate] | SkipJsonSchema[None] = Field(
        None, description="An `ambiguous` row's candidates."
    )
    possible_matches: list[ImportCandidate] | SkipJsonSchema[None] = Field(
        None, description="Close candidates the row passed over; check them, then merge in the review queue."
    )
    error: str | SkipJsonSchema[None] = Field(None, description="An `error` row's problems, `; `-separated.")
    warning: str | SkipJsonSchema[None] = Field(
        None, description="What was done but should be checked, `; `-separated."
    )


class ImportReport(BaseModel):
    """What an import did (or, with `dry_run`, would do), row by row. The 422 problem of an import
    with error rows carries the same fields."""

    dry_run: bool
    summary: ImportSummary
    rows: list[ImportRowReport] = Field(
        description="The rows, in order (with `?rows=flagged`, only those not a plain created or matched)."
    )
    warnings: list[str] | SkipJsonSchema[None] = Field(
        None,
        description=(
            "What the import as a whole did that should be checked (say, dates in the file that "
            "were ignored without `keep_dates=true`); absent if none."
        ),
    )
    rows_left_out: dict[str, int] | SkipJsonSchema[None] = Field(
        None,
        description="Per status, the rows not listed past `IMPORT_REPORT_ROWS` of that status (absent if none).",
    )


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/{slug}/signatures/import",
    operation_id="import_signatures",
    summary="Bulk add signatures from CSV or a JSON array, matching actors",
    description=(
        "Each row is matched to an existing actor by identifier, exact normalised name, then fuzzily, "
        "or a new actor is created. Any error row makes the answer a 422 problem carrying the whole report "
        "(`dry_run`, `summary`, `rows`) and nothing is written. Accepts `Idempotency-Key`. The body is "
        "UTF-8 unless its Content-Type names a charset (`text/csv; charset=windows-1252`, `utf-16`). "
        "`?rows=flagged` leaves the plain `created` and `matched` rows out of `rows`. A CSV's separator "
        "(`,` `;` tab `|`) is sniffed; each CSV row of the report carries the physical `line` it starts on."
    ),
    # The report is built as a dict and sent as is; the model documents it.
    response_model=ImportReport,
    response_model_exclude_none=True,
    responses=responses(401, 403, 404, 409, 413, 415, 422),
    openapi_extra=_REQUEST_BODY,
)
def import_signatures(
    slug: str,
    request: Request,
    writer: WriteAccess,
    idem: IdempotencyKey,
    body: Annotated[bytes, Depends(_raw_body)],
    kind: Annotated[ActorKind, Query(description="Kind of rows without a `kind` column.")] = "organisation",
    dry_run: Annotated[bool, Query(description="Answer the same report, write nothing.")] = False,
    on_ambiguous: Annotated[
        Literal["report", "create"], Query(description="`create` makes new actors of ambiguous rows.")
    ] = "report",
    rows: Annotated[
        Literal["all", "flagged"],
        Query(
            description=(
                "`all` (the default): the report lists every row. `flagged`: only the rows that are "
                "not a plain `created` or `matched` — errors, ambiguous rows, duplicates and rows with a "
                "`warning` — for a large list, where the full report is ~100 bytes a row; "
                "`summary` still counts every row."
            )
        ),
    ] = "all",
    column: Annotated[
        list[str] | None,
        Query(
            description=(
                "Rename a column: `OLD:NEW` (`?column=Organisation:name`; repeatable; OLD compared "
                "without case or accents). Common headers need none: `Organisation`, `Nom`, `Pays`, "
                "`Land`, … are read as their columns (docs/api.md)."
            )
        ),
    ] = None,
    keep_dates: Annotated[
        bool,
        Query(
            description=(
                "Take `signed_on` and `withdrawn_on` from the rows. Without it they are ignored (the "
                "report's `warnings` counts the rows that gave one): signatures are dated the "
                "letter's default and none is withdrawn, so an export of another letter read back "
                "does not copy its dates and withdrawals."
            )
        ),
    ] = False,
) -> Response:
    header = Message()
    header["content-type"] = request.headers.get("content-type", "")
    content_type = header["content-type"].partition(";")[0].strip().lower()
    charset = header.get_content_charset()
    settings = app_settings(request)
    shape = Shape(settings.max_csv_columns, settings.max_line_bytes, settings.max_json_depth)
    renames = parse_renames(column or [], "query.column")
    if content_type in ("text/csv", "application/csv", "text/tab-separated-values"):
        _header, records = read_csv(body, renames, charset=charset, shape=shape)
    elif content_type == "application/json" or content_type.endswith("+json"):
        records = read_json(body, renames, charset=charset, shape=shape)
    else:
        raise UnsupportedMediaType(
            f"send the rows as text/csv or application/json, not {content_type or 'no content type'!r}"
        )
    options = service.ImportOptions(
        default_kind=kind,
        dry_run=dry_run,
        on_ambiguous=on_ambiguous,
        scorer=settings.match_scorer,
        threshold=settings.match_threshold,
        possible_threshold=settings.match_possible_threshold,
        rows=rows,
        rows_per_status=settings.import_report_rows,
        keep_dates=keep_dates,
    )
    report = service.import_for_writer(writer, slug, records, options)
    if dry_run:  # nothing was written, so there is nothing to replay either
        return JSONResponse(report)
    return idem.store(JSONResponse(report))
