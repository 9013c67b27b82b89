"""HTTP for the embeds: the SVG badge, the widget page, oEmbed, the counts stream.

The badge, the widget and oEmbed read the letter's validator first (one SELECT; for the badge and
the widget on the event loop, through `app.http.hot_reads.letter_read`), answer 304 when the
client's `ETag` is current, and only then count."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from app.config import app_settings
from app.db.database import ReadSession
from app.embeds import oembed, service
from app.embeds.badge import COUNT_MODES, STYLES, CountMode, Style, badge_value, render_badge
from app.embeds.stream import CountsStream
from app.embeds.widget import CONTENT_SECURITY_POLICY, THEMES, Theme, render_widget
from app.errors import AppError, Invalid, NotFound, responses
from app.http.conditional import not_modified, set_validators
from app.http.hot_reads import letter_read
from app.live.hub import LiveCounts
from app.models import Letter

router = APIRouter(tags=["embeds"])

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified (If-None-Match)"}}


class FormatNotImplemented(AppError):
    status, title, slug = 501, "Not implemented", "not-implemented"


def _cache_control(request: Request) -> str:
    return app_settings(request).embed_cache_control()


@router.get(
    "/v1/letters/{slug}/badge.svg",
    operation_id="letter_badge",
    summary="An SVG badge of a letter's recorded or claimed count",
    description=(
        'A shields.io-style badge, "signatures | 1,234": by default the signatures recorded and not '
        'withdrawn as of today. `count` picks the value: `recorded` (default, "6"), `claimed` '
        '("130 claimed") or `both` ("6 of 130 claimed"); a letter without a claimed count says '
        '"no claim". `label` replaces the left-hand text; `style` is `flat` (default), '
        "`flat-square` or `plastic`. Accessible (`role=img`, `aria-label`, `<title>`)."
    ),
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}, "description": "The badge"},
        **NOT_MODIFIED,
        **responses(404, 422),
    },
)
async def letter_badge(
    slug: str,
    request: Request,
    label: Annotated[str, Query(min_length=1, max_length=40, description="Left-hand text.")] = "signatures",
    style: Annotated[Style, Query(description=" ".join(STYLES))] = "flat",
    count: Annotated[CountMode, Query(description=" ".join(COUNT_MODES))] = "recorded",
) -> Response:
    def render(session: Session, letter: Letter) -> bytes:
        recorded = service.counts_of(session, letter).recorded
        value = badge_value(count, recorded, letter.claimed_signatory_count)
        return render_badge(label, value, style).encode()

    return await letter_read(
        request,
        slug,
        ("badge", date.today(), label, style, count),
        render,
        media_type="image/svg+xml",
        cache_control=_cache_control(request),
    )


@router.get(
    "/embed/letters/{slug}",
    operation_id="letter_widget",
    summary="A self-contained HTML widget of a letter's count, for an <iframe>",
    description=(
        "Title, recorded count (and the claimed count when it differs), a bar of the biggest "
        "parties (or kinds), the day it was counted and the sources. No external assets; it "
        "updates itself from the counts stream. `theme`: `auto` (the reader's preference), "
        "`light` or `dark`."
    ),
    response_class=Response,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "The widget"},
        **NOT_MODIFIED,
        **responses(404, 422),
    },
)
async def letter_widget(
    slug: str,
    request: Request,
    theme: Annotated[Theme, Query(description=" ".join(THEMES))] = "auto",
) -> Response:
    today = date.today()

    def render(session: Session, letter: Letter) -> bytes:
        return render_widget(
            slug=letter.slug,
            title=letter.title,
            counts=service.counts_of(session, letter),
            sources=service.source_links(session, letter),
            counted_on=today,
            theme=theme,
        ).encode()

    return await letter_read(
        request,
        slug,
        ("widget", today, theme),
        render,
        media_type="text/html",
        cache_control=_cache_control(request),
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/oembed",
    operation_id="oembed",
    summary="oEmbed for the widget of a letter",
    description=(
        "oEmbed 1.0 `rich` JSON for a widget URL (`/embed/letters/{slug}`) or letter page "
        "(`/letters/{slug}`) of this server: same scheme, host and port as the request or as the "
        "`PUBLIC_URL` setting. Any other URL, or an unknown letter, is a 404; `format=xml` is a 501."
    ),
    response_model=oembed.OEmbed,
    responses={**NOT_MODIFIED, **responses(404, 422, 501)},
)
def get_oembed(
    request: Request,
    response: Response,
    session: ReadSession,
    url: Annotated[str, Query(max_length=2000, description="The URL to embed.")],
    format: Annotated[
        str,
        Query(
            max_length=20,
            description="Only `json` is served; `xml` is answered 501, as the oEmbed spec asks.",
            json_schema_extra={"enum": ["json"]},
        ),
    ] = "json",
    maxwidth: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    maxheight: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> oembed.OEmbed | Response:
    if format == "xml":
        raise FormatNotImplemented("only format=json is served")
    if format != "json":
        raise Invalid("must be json", field="query.format")
    settings = app_settings(request)
    bases = [str(request.base_url)] + ([settings.public_url] if settings.public_url else [])
    target = oembed.our_letter(url, bases)
    if target is None:
        raise NotFound("not a widget or letter URL of this server")
    slug, theme = target
    found = service.letter_state(session, slug)
    etag = found.etag("oembed", url, maxwidth, maxheight)
    cache_control = _cache_control(request)
    if (hit := not_modified(request.headers.get("if-none-match"), etag, cache_control)) is not None:
        return hit
    set_validators(response, etag, cache_control)
    return oembed.document(
        base=oembed.base_of(url),
        slug=found.letter.slug,
        title=found.letter.title,
        theme=theme,
        maxwidth=maxwidth,
        maxheight=maxheight,
        cache_age=settings.embed_max_age,
    )


@router.get(
    "/v1/letters/{slug}/counts/stream",
    operation_id="letter_counts_stream",
    summary="Server-Sent Events: a letter's counts now, then whenever they change",
    description=(
        "`text/event-stream`. A `counts` event at once (with `retry`), then one whenever the counts "
        "change (a write through any worker process is seen within about a second); each event's "
        "`data` is one line, the JSON document `GET /v1/letters/{slug}/counts` returns. A "
        "`: heartbeat` comment keeps idle connections open through proxies; a `gone` event ends the "
        "stream of a deleted letter. A stream ends after `SSE_MAX_SECONDS` (browsers reconnect "
        "after `retry`), and so does one whose reader falls too far behind. 503 with `Retry-After` "
        "when this process has its maximum of streams open. Try `curl -N`."
    ),
    response_class=Response,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "Events"},
        **responses(404, 422, 503),
    },
)
async def letter_counts_stream(slug: str, request: Request) -> Response:
    hub: LiveCounts = request.app.state.live
    subscriber, first = await hub.subscribe(slug)  # a 404 or a 503 before the stream starts
    return CountsStream(hub, subscriber, first)
