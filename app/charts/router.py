"""The charts served alone, for embedding: SVG made from the same analytics as the JSON."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from app.analytics import Interval, get_letter, letter_counts, letter_timeline, overlaps, resolve_letters
from app.analytics.overlaps import wanted_slugs
from app.analytics.schemas import CampaignQuery, LettersQuery
from app.analytics.validators import campaign_validator, letters_validator
from app.breakdowns import Key
from app.charts.svg import SVG_MEDIA_TYPE
from app.charts.views import breakdown_svg, heatmap_svg, letter_timeline_svg, upset_svg
from app.db.database import ReadSession
from app.errors import responses
from app.http.hot_reads import keyed_read
from app.http.renderings import Rendered
from app.schemas import IsoDate

router = APIRouter(tags=["charts"])

CACHE_CONTROL = "public, max-age=60"
SVG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An SVG image with <title> and <desc>.",
        "content": {SVG_MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}


def _svg(document: str) -> Response:
    return Response(document, media_type=SVG_MEDIA_TYPE, headers={"Cache-Control": CACHE_CONTROL})


@router.get(
    "/v1/letters/{slug}/charts/{breakdown}.svg",
    operation_id="letter_breakdown_chart",
    summary="A letter's signatures by kind, body, party, country or org type, as an SVG bar chart",
    description="The bars of `GET /v1/letters/{slug}/counts` for one breakdown, labelled with their counts "
    "(and, by body, the share of the body's seats).",
    response_class=Response,
    responses={**responses(404, 422), **SVG_RESPONSE},
)
def get_letter_breakdown_chart(
    slug: str,
    breakdown: Key,
    session: ReadSession,
    as_of: Annotated[IsoDate | None, Query(description="Count as of this day (default: today).")] = None,
) -> Response:
    letter = get_letter(session, slug)
    return _svg(breakdown_svg(letter_counts(session, letter, as_of), breakdown, letter.title))


@router.get(
    "/v1/letters/{slug}/timeline.svg",
    operation_id="letter_timeline_chart",
    summary="A letter's running total of signatures, with its events, as an SVG step chart",
    description="The points of `GET /v1/letters/{slug}/timeline`: the running total as a step line, new "
    "signatures per interval as bars, events as numbered markers listed under the chart.",
    response_class=Response,
    responses={**responses(404, 422), **SVG_RESPONSE},
)
def get_letter_timeline_chart(
    slug: str,
    session: ReadSession,
    interval: Annotated[Interval, Query(description="`day`, `week` or `month`.")] = "day",
) -> Response:
    letter = get_letter(session, slug)
    return _svg(letter_timeline_svg(letter_timeline(session, letter, interval), letter.title))


@router.get(
    "/v1/overlaps.svg",
    operation_id="overlaps_chart",
    summary="Overlaps between 2 to 50 letters, as an SVG heat map or UpSet chart",
    description="`chart=heatmap` (default): the pairwise matrix of `GET /v1/overlaps`, each cell the number of "
    "signatories in common, shaded by the Jaccard index. `chart=upset`: the exact intersections as bars over "
    "a matrix of the letters in each. Kept by the versions of the letters, as `GET /v1/overlaps` is.",
    response_class=Response,
    responses={**responses(404, 422), **SVG_RESPONSE},
)
async def get_overlaps_chart(
    request: Request,
    letters: LettersQuery = None,
    campaign: CampaignQuery = None,
    chart: Annotated[Literal["heatmap", "upset"], Query(description="`heatmap` or `upset`.")] = "heatmap",
) -> Response:
    dialect = request.app.state.database.engine.dialect.name
    wanted = wanted_slugs(letters, campaign)
    validator = (
        letters_validator(dialect, wanted)
        if wanted is not None
        else campaign_validator(dialect, campaign or "")
    )

    def render(session: Session) -> Rendered:
        chosen = resolve_letters(session, letters, campaign)
        result = overlaps(session, chosen)
        labels = {letter.slug: letter.title for letter in chosen}
        return Rendered(
            (heatmap_svg(result, labels) if chart == "heatmap" else upset_svg(result, labels)).encode()
        )

    return await keyed_read(
        request,
        validator,
        ("overlaps.svg", letters, campaign, chart),
        render,
        media_type=SVG_MEDIA_TYPE,
        cache_control=CACHE_CONTROL,
    )
