"""HTTP for actor identity: merging actors, an actor's history, and the review queue of pairs
that are probably one actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.actors import identity, service
from app.actors.schemas import (
    ActorOut,
    ChangeOut,
    DecisionIn,
    DecisionOut,
    MergeOut,
    MergeRequest,
    PossibleDuplicateOut,
)
from app.auth import WriteAccess
from app.config import AppSettings
from app.db.database import ReadSession
from app.errors import Invalid, responses
from app.idempotency import IdempotencyKey
from app.models import ACTOR_LOADS, Actor
from app.pagination import Page, Paged, PageParams, decode_cursor, encode_cursor
from app.schemas import Id
from app.vocabulary import ActorKind

actors = APIRouter(prefix="/v1/actors", tags=["actors"])
review = APIRouter(prefix="/v1/review", tags=["review"])


@actors.post(
    "/{actor_id}/merge",
    operation_id="merge_actors",
    summary="Fold other actors into this one",
    description=(
        "Moves the other actors' signatures (a letter signed by more than one keeps one signature, "
        "the earliest, its empty fields filled from the others'), memberships, identifiers, "
        "recipient references and names (kept as aliases) onto this actor, in one transaction. The "
        "merged ids then answer 301 to this actor, and an import naming one resolves to it. Refused "
        "(409) when the actors are of different kinds or hold different values of an identifier "
        'scheme, unless `"force": true`. The change record is in `GET /v1/actors/{id}/history`.'
    ),
    response_model=MergeOut,
    responses=responses(301, 401, 403, 404, 409, 422),
)
def merge_actors(actor_id: Id, data: MergeRequest, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    result = identity.merge_actors(writer, actor_id, data.merge, force=data.force)
    out = MergeOut(
        actor=ActorOut.model_validate(result.actor),
        merged=result.merged,
        signatures_moved=result.signatures_moved,
        signatures_folded=result.signatures_folded,
    )
    return idem.answer(out)


@actors.get(
    "/{actor_id}/history",
    operation_id="list_actor_history",
    summary="An actor's change records: made, edited, merged",
    response_model=Page[ChangeOut],
    responses=responses(301, 404, 422),
)
def list_actor_history(actor_id: Id, session: ReadSession, pager: Paged) -> Response:
    return pager.respond(session, ChangeOut, lambda s, page: service.actor_history(s, actor_id, page))


@review.get(
    "/possible-duplicates",
    operation_id="list_possible_duplicates",
    summary="Pairs of actors that are probably one",
    description=(
        "Pairs with equal identifiers once written alike, the same normalised name or alias, the "
        "same name once short forms are expanded (`Intl`, `Ed`, `&`), or fuzzy names at or above "
        "`MATCH_THRESHOLD` with no word that tells them apart (a country, a number, a chapter or "
        "branch word) — for organisations, with no different country. Best first; pairs decided "
        "`distinct` are left out. Decide with `POST`."
    ),
    response_model=Page[PossibleDuplicateOut],
    responses=responses(422),
)
def list_possible_duplicates(
    session: ReadSession,
    settings: AppSettings,
    pager: Paged,
    kind: Annotated[ActorKind | None, Query(description="Only pairs of this kind.")] = None,
) -> Response:
    return pager.respond(
        session,
        PossibleDuplicateOut,
        lambda s, page: _possible_duplicates(s, page, kind, settings.match_threshold),
    )


def _possible_duplicates(
    session: Session, page: PageParams, kind: ActorKind | None, threshold: float
) -> tuple[list[PossibleDuplicateOut], str | None]:
    """A page of the pairs, best first (the cursor: the last pair's score and ids)."""
    pairs = identity.possible_duplicates(session, kind=kind, threshold=threshold)
    if page.cursor:
        score, a, b = decode_cursor(page.cursor, 3)
        if not isinstance(score, int | float) or not isinstance(a, int) or not isinstance(b, int):
            raise Invalid("not a cursor this service issued", field="query.cursor")
        pairs = [p for p in pairs if (-p.score, p.a, p.b) > (-score, a, b)]
    chosen = pairs[: page.limit]
    last = chosen[-1] if len(pairs) > page.limit else None
    ids = {i for p in chosen for i in (p.a, p.b)}
    actors = {a.id: a for a in session.scalars(select(Actor).where(Actor.id.in_(ids)).options(*ACTOR_LOADS))}
    items = [
        PossibleDuplicateOut(
            actors=[ActorOut.model_validate(actors[p.a]), ActorOut.model_validate(actors[p.b])],
            score=p.score,
            evidence=p.evidence,
        )
        for p in chosen
    ]
    return items, None if last is None else encode_cursor([last.score, last.a, last.b])


@review.post(
    "/possible-duplicates",
    operation_id="decide_possible_duplicate",
    summary="Decide a pair: merge it, or mark it distinct for good",
    response_model=DecisionOut,
    responses=responses(301, 401, 403, 404, 409, 422),
)
def decide_possible_duplicate(data: DecisionIn, writer: WriteAccess, idem: IdempotencyKey) -> Response:
    return idem.answer(_decide(data, writer))


def _decide(data: DecisionIn, writer: WriteAccess) -> DecisionOut:
    a, b = data.actors
    if a == b:
        raise Invalid("two different actors are needed", field="body.actors")
    if data.decision == "distinct":
        identity.decide_distinct(writer, a, b)
        return DecisionOut(decision="distinct", actors=sorted((a, b)))
    keep = data.keep if data.keep is not None else min(a, b)
    if keep not in (a, b):
        raise Invalid("must be one of the two actors", field="body.keep")
    other = b if keep == a else a
    result = identity.merge_actors(writer, keep, [other])
    return DecisionOut(decision="merge", actors=sorted((a, b)), actor=ActorOut.model_validate(result.actor))
