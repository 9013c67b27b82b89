"""The pages: HTML rendered on the server from the same services and analytics as the API.

Read-only, no front-end framework, no asset from anywhere else. Jinja2 escapes every text; the
charts are SVG from `app.charts` (drawn by templates of the same environment, `app.templating`)
and are inlined, each next to a table of the same numbers. An unknown slug or id is a 404 page, bad input a 4xx page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from html import escape
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from app.actors.service import (
    ActorFilters,
    actor_letters_received,
    actor_signatures,
    get_actor,
    list_actors,
    list_memberships,
)
from app.analytics import (
    Interval,
    campaign_reach,
    campaign_timeline,
    co_signatories,
    letter_counts,
    letter_timeline,
    overlaps,
    resolve_letters,
)
from app.analytics.common import TimelineTooLong
from app.analytics.overlaps import MAX_LETTERS, MIN_LETTERS
from app.analytics.results import CampaignTimeline, Timeline
from app.breakdowns import BREAKDOWNS
from app.campaigns.service import get_campaign, list_campaigns
from app.charts.bars import share_text
from app.charts.views import (
    WithBreakdowns,
    breakdown_svg,
    campaign_timeline_svg,
    heatmap_svg,
    letter_timeline_svg,
    upset_svg,
)
from app.config import app_settings
from app.db.database import ReadSession
from app.errors import AppError, Moved, NotFound
from app.http.hot_reads import letter_read
from app.identifiers import identifier_url
from app.letters.service import (
    LetterFilters,
    SignatureFilters,
    get_letter,
    list_letters,
    list_parts,
    list_recipients,
)
from app.models import Actor, Campaign, Event, Letter
from app.pages.card import render_card
from app.pages.service import recipient_choices, signatory_rows
from app.pagination import PageParams
from app.schemas import MAX_INT
from app.templating import templates
from app.urls import web_url
from app.vocabulary import ACTOR_KINDS

router = APIRouter(include_in_schema=False)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates.filters["share"] = share_text
templates.filters["web_url"] = web_url
templates.filters["host"] = lambda url: urlsplit(url).hostname or url
templates.globals["identifier_url"] = identifier_url
LETTERS_PER_PAGE = 20
ACTORS_ON_HOME = 10
INDEX_PER_PAGE = 50
SIGNATORIES_PER_PAGE = 50
LIST_LIMIT = 200
CO_SIGNATORIES = 10
TIMELINE_MAX_POINTS = 92

Text = Annotated[str | None, Query(max_length=500)]
Cursor = Annotated[str | None, Query(max_length=2000)]


def _clean(value: str | None) -> str | None:
    """Form fields arrive empty when not chosen."""
    value = (value or "").strip()
    return value or None


def _render(name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status)


def _page(build: Callable[[], HTMLResponse]) -> HTMLResponse:
    """Render, or render the error page for a domain error (404 for an unknown slug or id)."""
    try:
        return build()
    except Moved as exc:  # a merged actor's page: the kept actor's
        return HTMLResponse("", status_code=301, headers={"Location": f"/actors/{exc.new_id}"})
    except AppError as exc:
        return _render("error.html", status=exc.status, title=exc.title, detail=exc.detail)


def _base_url(request: Request) -> str:
    public = app_settings(request).public_url
    return (public or str(request.base_url)).rstrip("/")


def embed_snippet(base: str, letter: Letter) -> str:
    """The widget's `<iframe>`, as a journalist pastes it (the page escapes it once more)."""
    src = f"{base}/embed/letters/{letter.slug}"
    return (
        f'<iframe src="{escape(src)}" title="{escape(letter.title)}" width="100%" height="320" '
        'style="border:0" loading="lazy"></iframe>'
    )


def badge_snippet(base: str, letter: Letter) -> str:
    page, image = f"{base}/letters/{letter.slug}", f"{base}/v1/letters/{letter.slug}/badge.svg"
    return f'<a href="{escape(page)}"><img src="{escape(image)}" alt="{escape("Signatures: " + letter.title)}"></a>'


def letter_meta(base: str, letter: Letter, recorded: int) -> dict[str, str]:
    """What a CMS or a social site reads to unfurl the letter's URL: its canonical address,
    a description that carries the counts, the card image and the oEmbed document (absolute)."""
    page = f"{base}/letters/{letter.slug}"
    claimed = letter.claimed_signatory_count
    said = f"{recorded:,} signatures recorded" + (f", {claimed:,} claimed" if claimed is not None else "")
    summary = " ".join((letter.summary or "").split())
    description = f"{said}. {summary}" if summary else f"{said}."
    return {
        "url": page,
        "description": description if len(description) <= 300 else description[:299].rstrip() + "…",
        "image": f"{page}/card.svg",
        "image_alt": f"{letter.title}: {said}",
        "oembed": f"{base}/oembed?{urlencode({'url': page, 'format': 'json'})}",
    }


def _charts(result: WithBreakdowns, subject: str) -> list[dict[str, Any]]:
    return [
        {
            "key": breakdown.key,
            "name": breakdown.name,
            "entries": breakdown.entries(result),
            "svg": Markup(breakdown_svg(result, breakdown.key, subject, id_prefix=f"by-{breakdown.key}")),
        }
        for breakdown in BREAKDOWNS
    ]


def _letter_timeline(session: Session, letter: Letter) -> Timeline:
    """Days, unless there are too many of them for a chart: then weeks, then months."""
    intervals: tuple[Interval, ...] = ("day", "week", "month")
    for interval in intervals:
        try:
            timeline = letter_timeline(session, letter, interval)
        except TimelineTooLong:
            if interval == "month":
                raise
            continue
        if len(timeline.points) <= TIMELINE_MAX_POINTS or interval == "month":
            break
    return timeline


def _campaign_timeline(session: Session, campaign: Campaign) -> CampaignTimeline:
    """As `_letter_timeline`, for every letter of the campaign."""
    intervals: tuple[Interval, ...] = ("day", "week", "month")
    for interval in intervals:
        try:
            timeline = campaign_timeline(session, campaign, interval)
        except TimelineTooLong:
            if interval == "month":
                raise
            continue
        if max((len(s.points) for s in timeline.series), default=0) <= TIMELINE_MAX_POINTS:
            break
    return timeline


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """Browsers ask for it on every page and chart; answering spares them a 404."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


@router.get("/", response_class=HTMLResponse)
@router.get("/letters", response_class=HTMLResponse)
def letters_page(
    request: Request,
    session: ReadSession,
    q: Text = None,
    campaign: Text = None,
    recipient: Text = None,
    cursor: Cursor = None,
) -> HTMLResponse:
    def build() -> HTMLResponse:
        recipient_id = int(recipient) if recipient and recipient.strip().isdigit() else None
        filters = LetterFilters(q=_clean(q), campaign=_clean(campaign), recipient=recipient_id)
        views, next_cursor = list_letters(
            session, filters, PageParams(limit=LETTERS_PER_PAGE, cursor=_clean(cursor))
        )
        campaigns, _ = list_campaigns(session, PageParams(limit=LIST_LIMIT, cursor=None))
        # A search finds people and organisations too: the most relevant, above the letters.
        actors: list[Actor] = []
        if filters.q and cursor is None:
            actors, _ = list_actors(
                session, ActorFilters(q=filters.q), PageParams(limit=ACTORS_ON_HOME, cursor=None)
            )
        return _render(
            "index.html",
            views=views,
            actors=actors,
            next_cursor=next_cursor,
            filters=filters,
            campaigns=campaigns,
            recipients=recipient_choices(session, LIST_LIMIT),
            first_page=cursor is None,
        )

    return _page(build)


@router.get("/letters/{slug}/card.svg")
async def letter_card(slug: str, request: Request) -> Response:
    """The letter's link-preview image (`og:image`), kept and revalidated as the badge is."""
    today = date.today()

    def draw(session: Session, letter: Letter) -> bytes:
        counts = letter_counts(session, letter)
        return render_card(
            title=letter.title,
            recorded=counts.recorded,
            claimed=letter.claimed_signatory_count,
            published_on=letter.published_on,
        ).encode()

    settings = app_settings(request)
    return await letter_read(
        request,
        slug,
        ("card", today),
        draw,
        media_type="image/svg+xml",
        cache_control=settings.embed_cache_control(),
    )


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(session: ReadSession, q: Text = None, cursor: Cursor = None) -> HTMLResponse:
    def build() -> HTMLResponse:
        campaigns, next_cursor = list_campaigns(
            session, PageParams(limit=INDEX_PER_PAGE, cursor=_clean(cursor)), q=_clean(q)
        )
        return _render(
            "campaigns.html",
            campaigns=campaigns,
            q=_clean(q),
            next_cursor=next_cursor,
            first_page=cursor is None,
        )

    return _page(build)


@router.get("/actors", response_class=HTMLResponse)
def actors_page(
    session: ReadSession, q: Text = None, kind: Text = None, cursor: Cursor = None
) -> HTMLResponse:
    def build() -> HTMLResponse:
        chosen_kind = _clean(kind) if _clean(kind) in ACTOR_KINDS else None
        filters = ActorFilters(q=_clean(q), kind=chosen_kind)
        actors, next_cursor = list_actors(
            session, filters, PageParams(limit=INDEX_PER_PAGE, cursor=_clean(cursor))
        )
        return _render(
            "actors.html",
            actors=actors,
            filters=filters,
            kinds=ACTOR_KINDS,
            next_cursor=next_cursor,
            first_page=cursor is None,
        )

    return _page(build)


@router.get("/letters/{slug}", response_class=HTMLResponse)
def letter_page(
    slug: str,
    request: Request,
    session: ReadSession,
    kind: Text = None,
    body: Text = None,
    party: Text = None,
    country: Text = None,
    org_type: Text = None,
    cursor: Cursor = None,
) -> HTMLResponse:
    def build() -> HTMLResponse:
        view = get_letter(session, slug)
        letter = view.letter
        counts = letter_counts(session, letter)
        timeline = _letter_timeline(session, letter)
        events, _ = list_parts(session, slug, Event, PageParams(limit=LIST_LIMIT, cursor=None))
        recipients, _ = list_recipients(session, slug, PageParams(limit=LIST_LIMIT, cursor=None))
        chosen: dict[str, Any] = {
            "kind": _clean(kind),
            "body": _clean(body),
            "party": _clean(party),
            "country": (_clean(country) or "").upper() or None,
            "org_type": _clean(org_type),
        }
        rows, next_cursor = signatory_rows(
            session,
            slug,
            SignatureFilters(**chosen),
            PageParams(limit=SIGNATORIES_PER_PAGE, cursor=_clean(cursor)),
        )
        base = _base_url(request)
        return _render(
            "letter.html",
            meta=letter_meta(base, letter, counts.recorded),
            filter_by=BREAKDOWNS,
            view=view,
            letter=letter,
            counts=counts,
            charts=_charts(counts, letter.title),
            timeline=timeline,
            timeline_svg=Markup(letter_timeline_svg(timeline, letter.title, event_legend=False)),
            events=events,
            recipients=recipients,
            rows=rows,
            next_cursor=next_cursor,
            chosen=chosen,
            filtered={k: v for k, v in chosen.items() if v},
            base=base,
            embed_snippet=embed_snippet(base, letter),
            badge_snippet=badge_snippet(base, letter),
        )

    return _page(build)


@router.get("/campaigns/{slug}", response_class=HTMLResponse)
def campaign_page(slug: str, session: ReadSession) -> HTMLResponse:
    def build() -> HTMLResponse:
        campaign = get_campaign(session, slug)
        views, _ = list_letters(
            session, LetterFilters(campaign=slug), PageParams(limit=MAX_LETTERS, cursor=None)
        )
        labels = {v.letter.slug: v.letter.title for v in views}
        reach = campaign_reach(session, campaign)
        timeline = _campaign_timeline(session, campaign)
        result = None
        if MIN_LETTERS <= len(campaign.letters) <= MAX_LETTERS:
            chosen = resolve_letters(session, None, slug)
            labels.update({letter.slug: letter.title for letter in chosen})
            result = overlaps(session, chosen)
        return _render(
            "campaign.html",
            campaign=campaign,
            views=views,
            labels=labels,
            reach=reach,
            charts=_charts(reach, campaign.name),
            timeline=timeline,
            timeline_svg=Markup(campaign_timeline_svg(timeline, campaign.name, labels, event_legend=False)),
            overlaps=result,
            heatmap_svg=Markup(heatmap_svg(result, labels)) if result else None,
            upset_svg=Markup(upset_svg(result, labels)) if result else None,
        )

    return _page(build)


@router.get("/actors/{actor_id}", response_class=HTMLResponse)
def actor_page(actor_id: int, session: ReadSession) -> HTMLResponse:
    def build() -> HTMLResponse:
        if not 1 <= actor_id <= MAX_INT:  # (no such id on either database: the 404 page)
            raise NotFound(f"no actor with id {actor_id}")
        actor = get_actor(session, actor_id)
        everything = PageParams(limit=LIST_LIMIT, cursor=None)
        signed, _ = actor_signatures(session, actor_id, everything)
        received, _ = actor_letters_received(session, actor_id, everything)
        memberships, _ = list_memberships(session, actor_id, everything)
        co, _ = co_signatories(session, actor_id, PageParams(limit=CO_SIGNATORIES, cursor=None))
        return _render(
            "actor.html",
            actor=actor,
            signed=signed,
            received=received,
            memberships=memberships,
            co_signatories=co,
            today=date.today(),
        )

    return _page(build)
