"""`GET /v1/search?q=`: one box over letters and actors.

Both halves use the rule of the `q` filters (app/fulltext.py): the databases' full-text index,
every word of the query matching by its stem or one of its variants, the most relevant first.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import fulltext
from app.actors.schemas import ActorOut, LetterBrief
from app.db.database import ReadSession
from app.errors import responses
from app.formats import CONTENT_TYPES, Wanted, attachment, rows_bytes
from app.models import ACTOR_LOADS, Actor, Letter

MAX_LIMIT = 50


class SearchResults(BaseModel):
    """Up to `limit` letters and up to `limit` actors matching the query, the most relevant
    first (then the newest letters, the oldest actors)."""

    letters: list[LetterBrief]
    actors: list[ActorOut]


class SearchRow(BaseModel):
    """A result as a row of CSV or NDJSON: the letters first, then the actors."""

    type: Literal["letter", "actor"]
    slug: str | None = None  # a letter's
    id: int | None = None  # an actor's
    name: str  # a letter's title, an actor's name
    published_on: date | None = None


def search(session: Session, q: str, limit: int) -> tuple[list[Letter], list[Actor]]:
    letters, letter_relevance = fulltext.apply(session, select(Letter), Letter, q)
    actors, actor_relevance = fulltext.apply(session, select(Actor).options(*ACTOR_LOADS), Actor, q)
    found_letters = session.scalars(
        letters.order_by(
            letter_relevance.desc(), Letter.published_on.desc().nulls_last(), Letter.id.desc()
        ).limit(limit)
    ).all()
    found_actors = session.scalars(actors.order_by(actor_relevance.desc(), Actor.id).limit(limit)).all()
    return list(found_letters), list(found_actors)


router = APIRouter(tags=["search"])


@router.get(
    "/v1/search",
    operation_id="search",
    summary="Search letters and actors",
    response_model=SearchResults,
    responses=responses(422, 406),
)
def search_route(
    session: ReadSession,
    response: Response,
    fmt: Wanted,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=500,
            description="Words that must all match (by their stem or a variant; any case, accents, script).",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most results of each kind.")] = 10,
) -> SearchResults | Response:
    letters, actors = search(session, q, limit)
    response.headers["Vary"] = "Accept"
    if fmt != "json":
        rows = [
            SearchRow(type="letter", slug=x.slug, name=x.title, published_on=x.published_on) for x in letters
        ]
        rows += [SearchRow(type="actor", id=a.id, name=a.name) for a in actors]
        return Response(
            rows_bytes(fmt, SearchRow, rows),
            media_type=CONTENT_TYPES[fmt],
            headers={**attachment("search", fmt), "Vary": "Accept"},
        )
    return SearchResults(
        letters=[LetterBrief.model_validate(x) for x in letters],
        actors=[ActorOut.model_validate(a) for a in actors],
    )
