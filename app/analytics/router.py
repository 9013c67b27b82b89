"""HTTP for the analytics: parse, call the compute functions, render JSON, or their rows as CSV
or NDJSON (`app.formats`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.actors.schemas import ActorOut
from app.analytics import (
    Interval,
    Match,
    campaign_reach,
    campaign_timeline,
    co_signatories,
    get_campaign,
    letter_counts,
    letter_timeline,
    overlap_signatories,
    overlaps,
    resolve_letters,
)
from app.analytics.overlaps import wanted_slugs
from app.analytics.results import (
    BreakdownRow,
    CampaignPoint,
    CampaignTimeline,
    Counts,
    Overlaps,
    Pair,
    Point,
    Reach,
    Timeline,
)
from app.analytics.schemas import CampaignQuery, CoSignatoryOut, LettersQuery
from app.analytics.validators import Validator, actor_validator, campaign_validator, letters_validator
from app.breakdowns import BREAKDOWNS
from app.config import app_settings
from app.db.database import ReadSession
from app.errors import responses
from app.formats import CONTENT_TYPES, Format, Wanted, attachment, rows_bytes
from app.http.hot_reads import keyed_read, letter_read
from app.http.renderings import Rendered
from app.models import Actor, Letter
from app.pagination import VARY, Page, Paged, PageParams, Pager
from app.schemas import Id, IsoDate

router = APIRouter(tags=["analytics"])

IntervalQuery = Annotated[
    Interval, Query(description="`day`, `week` (ISO weeks, from Monday) or `month` (from the 1st).")
]


def _cache_control(request: Request) -> str:
    """Public caching for the time the settings give counts, badges and embeds."""
    settings = app_settings(request)
    return settings.embed_cache_control()


def _headers(name: str, fmt: Format) -> dict[str, str]:
    """Rows are saved as a file; every answer is chosen by `Accept` too."""
    return {**VARY, **(attachment(name, fmt) if fmt != "json" else {})}


def _breakdown_rows(result: Counts | Reach) -> Iterator[BreakdownRow]:
    for b in BREAKDOWNS:
        for e in b.entries(result):
            yield BreakdownRow(
                breakdown=b.key,
                key=e.key,
                label=e.label,
                count=e.count,
                share_of_body=getattr(e, "share_of_body", None),
            )


@router.get(
    "/v1/letters/{slug}/counts",
    operation_id="letter_counts",
    summary="How many signed a letter, by kind, body, party, country and org type",
    description=(
        "`recorded` counts signatures made on or before `as_of` (default: today) and not withdrawn "
        "on or before it; `withdrawn` those withdrawn by then. Breakdowns are over the recorded "
        "signatures, by body and party of the seat held on each signature's day (of the memberships "
        "valid that day, the latest-starting, then the first recorded; body and party from that one); "
        "each is sorted by count, then key (null last), "
        "and sums to `recorded`. `share_of_body` = count / seats held in the body on the letter's "
        "publication date (or `as_of` when it has none). CSV/NDJSON rows: "
        "breakdown,key,label,count,share_of_body."
    ),
    response_model=Counts,
    responses=responses(404, 422, 406),
)
async def get_letter_counts(
    slug: str,
    request: Request,
    fmt: Wanted,
    as_of: Annotated[IsoDate | None, Query(description="Count as of this day (default: today).")] = None,
) -> Response:
    def render(session: Session, letter: Letter) -> bytes:
        result = letter_counts(session, letter, as_of)
        if fmt == "json":
            return result.model_dump_json().encode()
        return rows_bytes(fmt, BreakdownRow, _breakdown_rows(result))

    return await letter_read(
        request,
        slug,
        ("counts", as_of, date.today(), fmt),
        render,
        media_type=CONTENT_TYPES[fmt],
        cache_control=_cache_control(request),
        headers=_headers(f"{slug}-counts", fmt),
    )


@router.get(
    "/v1/letters/{slug}/timeline",
    operation_id="letter_timeline",
    summary="New signatures, withdrawals and the running total per day, week or month",
    description=(
        "Points run without gaps from the interval of the first signature to the last interval "
        "holding a signature, a withdrawal or an event of the letter. `new` counts signatures made "
        "in the interval (even if withdrawn later), `withdrawn` the withdrawals in it, "
        "`cumulative` the running sum of new − withdrawn. A point's `date` is the first day of "
        "its interval. CSV/NDJSON rows (the points): date,new,withdrawn,cumulative."
    ),
    response_model=Timeline,
    responses=responses(404, 422, 406),
)
async def get_letter_timeline(
    slug: str,
    request: Request,
    fmt: Wanted,
    interval: IntervalQuery = "day",
) -> Response:
    def render(session: Session, letter: Letter) -> bytes:
        result = letter_timeline(session, letter, interval)
        if fmt == "json":
            return result.model_dump_json().encode()
        return rows_bytes(fmt, Point, result.points)

    return await letter_read(
        request,
        slug,
        ("timeline", interval, fmt),
        render,
        media_type=CONTENT_TYPES[fmt],
        cache_control=_cache_control(request),
        headers=_headers(f"{slug}-timeline", fmt),
    )


@router.get(
    "/v1/campaigns/{slug}/timeline",
    operation_id="campaign_timeline",
    summary="A timeline per letter of a campaign, and of its distinct signatories",
    description=(
        "`series` holds each letter's timeline points (as `GET /v1/letters/{slug}/timeline`), "
        "letters in id order. `distinct` counts each actor once, in the interval of its FIRST "
        "signature on any of the campaign's letters that still counts (not withdrawn); its last "
        "`cumulative` is the campaign's distinct reach. `events` are the campaign's and its "
        "letters' events. CSV/NDJSON rows: letter,date,new,withdrawn,cumulative (the distinct "
        "series has an empty letter and withdrawn)."
    ),
    response_model=CampaignTimeline,
    responses=responses(404, 422, 406),
)
def get_campaign_timeline(
    slug: str,
    request: Request,
    fmt: Wanted,
    response: Response,
    session: ReadSession,
    interval: IntervalQuery = "day",
) -> CampaignTimeline | Response:
    result = campaign_timeline(session, get_campaign(session, slug), interval)
    headers = {**_headers(f"{slug}-timeline", fmt), "Cache-Control": _cache_control(request)}
    if fmt == "json":
        response.headers.update(headers)
        return result
    rows = [CampaignPoint(letter=s.letter, **p.model_dump()) for s in result.series for p in s.points]
    rows += [CampaignPoint(letter=None, withdrawn=None, **p.model_dump()) for p in result.distinct]
    return Response(rows_bytes(fmt, CampaignPoint, rows), media_type=CONTENT_TYPES[fmt], headers=headers)


def _overlap_validator(
    request: Request, letters: str | None, campaign: str | None
) -> tuple[Validator, tuple[Any, ...]]:
    """The validator of an overlap read (the versions of its letters, or of the campaign and
    its letters) and what names the letters in the key; a 422 for a bad `letters`/`campaign`
    before anything is read."""
    dialect = request.app.state.database.engine.dialect.name
    wanted = wanted_slugs(letters, campaign)
    if wanted is None:
        assert campaign is not None
        return campaign_validator(dialect, campaign), ("campaign", campaign)
    return letters_validator(dialect, wanted), ("letters", *wanted)


def _page_parts(pager: Pager) -> tuple[Any, ...]:
    # The URL makes the `Link` header, so it is part of the key; the page's own values too.
    return (str(pager.request.url), pager.params.limit, pager.params.cursor)


@router.get(
    "/v1/campaigns/{slug}/reach",
    operation_id="campaign_reach",
    summary="Distinct signatories across a campaign's letters, with breakdowns",
    description=(
        "Actors with at least one signature on the campaign's letters that still counts (not "
        "withdrawn), each counted once; by body and party as of the day of its latest such "
        "signature. `share_of_body` is each body's count over its seats on `seats_on`, the date of "
        "the campaign's newest letter (today when none is dated), as a letter's counts use the "
        "letter's date. "
        "CSV/NDJSON rows (the breakdowns): breakdown,key,label,count,share_of_body. "
        "Kept by the versions of the campaign's letters: `ETag` and `If-None-Match` (304)."
    ),
    response_model=Reach,
    responses=responses(404, 422, 406),
)
async def get_campaign_reach(slug: str, request: Request, fmt: Wanted) -> Response:
    def render(session: Session) -> Rendered:
        result = campaign_reach(session, get_campaign(session, slug))
        if fmt == "json":
            return Rendered(result.model_dump_json().encode())
        return Rendered(rows_bytes(fmt, BreakdownRow, _breakdown_rows(result)))

    dialect = request.app.state.database.engine.dialect.name
    return await keyed_read(
        request,
        campaign_validator(dialect, slug),
        ("reach", slug, date.today(), fmt),
        render,
        media_type=CONTENT_TYPES[fmt],
        cache_control=_cache_control(request),
        headers=_headers(f"{slug}-reach", fmt),
    )


@router.get(
    "/v1/overlaps",
    operation_id="overlaps",
    summary="Overlaps between 2 to 50 letters: sizes, pairs and exact intersections",
    description=(
        "Only signatures that still count (not withdrawn). `pairs` lists every unordered pair in "
        "the order the letters were given, with `jaccard` = common / size of their union. "
        "`intersections` are exact (UpSet): the actors who signed exactly that set of the given "
        "letters; non-empty ones only, by count descending, then by the letters' positions; they "
        "sum to `union`. CSV/NDJSON rows (the pairs): a,b,common,jaccard. Sizes and pairs are read from "
        "counts maintained with every write; the answer's `ETag` follows the versions of the "
        "letters it covers (a write to another letter leaves it current: `If-None-Match` gets 304)."
    ),
    response_model=Overlaps,
    responses=responses(404, 422, 406),
)
async def get_overlaps(
    request: Request,
    fmt: Wanted,
    letters: LettersQuery = None,
    campaign: CampaignQuery = None,
) -> Response:
    validator, named = _overlap_validator(request, letters, campaign)

    def render(session: Session) -> Rendered:
        result = overlaps(session, resolve_letters(session, letters, campaign))
        if fmt == "json":
            return Rendered(result.model_dump_json().encode())
        return Rendered(rows_bytes(fmt, Pair, result.pairs))

    return await keyed_read(
        request,
        validator,
        ("overlaps", *named, fmt),
        render,
        media_type=CONTENT_TYPES[fmt],
        cache_control=_cache_control(request),
        headers=_headers("overlaps", fmt),
    )


@router.get(
    "/v1/overlaps/signatories",
    operation_id="overlap_signatories",
    summary="The actors in an overlap: all, any, or only the first letter",
    description=(
        "`all`: signed every listed letter; `any`: at least one; `only`: the first listed and none "
        "of the others. Withdrawn signatures never count. Ordered by actor id. Kept by the "
        "versions of the letters: `ETag` and `If-None-Match` (304)."
    ),
    response_model=Page[ActorOut],
    responses=responses(404, 422),
)
async def get_overlap_signatories(
    request: Request,
    pager: Paged,
    letters: LettersQuery = None,
    campaign: CampaignQuery = None,
    match: Annotated[Match, Query(description="`all`, `any` or `only`.")] = "all",
) -> Response:
    validator, named = _overlap_validator(request, letters, campaign)

    def fetch(session: Session, page: PageParams) -> tuple[list[Actor], str | None]:
        return overlap_signatories(session, resolve_letters(session, letters, campaign), match, page)

    if pager.format != "json":
        return await run_in_threadpool(pager.export, ActorOut, fetch)

    def render(session: Session) -> Rendered:
        return Rendered(*pager.render(session, ActorOut, fetch))

    return await keyed_read(
        request,
        validator,
        ("overlap-signatories", *named, match, *_page_parts(pager)),
        render,
        media_type="application/json",
        cache_control=None,
        headers=VARY,
    )


def _co_signatory_out(row: tuple[Actor, int]) -> CoSignatoryOut:
    actor, shared_letters = row
    return CoSignatoryOut(actor=ActorOut.model_validate(actor), shared_letters=shared_letters)


@router.get(
    "/v1/actors/{actor_id}/co-signatories",
    operation_id="actor_co_signatories",
    summary="The actors who most often signed the same letters as this one",
    description=(
        "By `shared_letters` descending, then actor id. Only signatures that still count (not "
        "withdrawn), of both actors. Kept by the versions of the letters the actor signed: "
        "`ETag` and `If-None-Match` (304)."
    ),
    response_model=Page[CoSignatoryOut],
    responses=responses(404, 422),
)
async def get_co_signatories(actor_id: Id, request: Request, pager: Paged) -> Response:
    def fetch(session: Session, page: PageParams) -> tuple[list[tuple[Actor, int]], str | None]:
        return co_signatories(session, actor_id, page)

    if pager.format != "json":
        return await run_in_threadpool(pager.export, CoSignatoryOut, fetch, _co_signatory_out)

    def render(session: Session) -> Rendered:
        return Rendered(*pager.render(session, CoSignatoryOut, fetch, _co_signatory_out))

    dialect = request.app.state.database.engine.dialect.name
    return await keyed_read(
        request,
        actor_validator(dialect, actor_id),
        ("co-signatories", actor_id, *_page_parts(pager)),
        render,
        media_type="application/json",
        cache_control=None,
        headers=VARY,
    )
