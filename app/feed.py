"""The changes feed, `GET /v1/changes`: every event in commit order, for clients that pull.

A client keeps the `next_cursor` of its last page and asks again with it: it sees each event
once, including those of transactions that committed out of id order, because a page never
reaches past a transaction still in progress (app/webhooks/events.py)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from app.db.database import ReadSession, get_database, session_scope
from app.errors import Invalid, responses
from app.formats import CONTENT_TYPES, Wanted, attachment
from app.pagination import Cursor, Limit, decode_cursor, encode_cursor, link_header
from app.schemas import Slug
from app.spreadsheet import safe_cell
from app.webhooks import events
from app.webhooks.schemas import Change, ChangesPage

router = APIRouter(prefix="/v1/changes", tags=["changes"])

COLUMNS = ["id", "type", "at", "resource", "action", "key", "letter", "url", "state", "previous"]
EXPORT_BATCH = 1000

Types = Annotated[
    str | None,
    Query(
        alias="type",
        max_length=2000,
        description="Comma-separated event types (`signature.created`), `resource.*` or `*`.",
        examples=["signature.created,signature.withdrawn"],
    ),
]
Start = Annotated[
    Literal["beginning", "latest"],
    Query(
        alias="from",
        description="Without a cursor: `beginning` (every event kept) or `latest` (only what happens next).",
    ),
]


def _position(session: Session, cursor: str | None, start: str) -> events.Position:
    if cursor:
        txid, id_ = decode_cursor(cursor, 2)
        if not isinstance(txid, int) or not isinstance(id_, int) or txid < 0 or id_ < 0:
            raise Invalid("not a cursor this service issued", field="query.cursor")
        return events.Position(txid, id_)
    return events.latest(session) if start == "latest" else events.Position()


def _feed(types: str | None, letter: str | None) -> events.Feed:
    chosen = [t.strip() for t in (types or "").split(",") if t.strip()]
    unknown = events.check_type_patterns(chosen)
    if unknown is not None:
        raise Invalid(f"{unknown!r} is not an event type, 'resource.*' or '*'", field="query.type")
    return events.Feed(types=chosen, letter=letter)


def _base(request: Request) -> str:
    public: str | None = request.app.state.settings.public_url
    return public or str(request.base_url)


@router.get(
    "",
    operation_id="list_changes",
    summary="Every change in commit order (letters, signatures, actors, …), from a cursor",
    response_model=ChangesPage,
    responses={
        **responses(422),
        200: {
            "description": "A page of changes, or with `format=csv|ndjson` all of them up to now, streamed.",
        },
    },
)
def list_changes(
    request: Request,
    response: Response,
    session: ReadSession,
    wanted: Wanted,
    limit: Limit = 50,
    cursor: Cursor = None,
    start: Start = "beginning",
    types: Types = None,
    letter: Annotated[Slug | None, Query(description="Only this letter's changes.")] = None,
) -> ChangesPage | StreamingResponse:
    feed = _feed(types, letter)
    position = _position(session, cursor, start)
    base = _base(request)
    if wanted != "json":
        end = events.latest(session)
        rows = _export(get_database(request).read_sessions, feed, position, end, base)
        chunks = _csv(rows) if wanted == "csv" else _ndjson(rows)
        media = CONTENT_TYPES[wanted]
        resume = encode_cursor([end.txid, end.id])
        headers = {
            **attachment("changes", wanted),
            "Vary": "Accept",
            "X-Next-Cursor": resume,
            **link_header(request, resume),
        }
        return StreamingResponse(chunks, media_type=media, headers=headers)
    page, last, more = events.read_feed(session, feed, position, limit)
    next_cursor = encode_cursor([last.txid, last.id])
    if more:
        response.headers.update(link_header(request, next_cursor))
    response.headers["Vary"] = "Accept"
    response.headers["Cache-Control"] = "no-store"
    items = [Change(**events.event_data(event, record, base)) for event, record in page]
    return ChangesPage(items=items, next_cursor=next_cursor, has_more=more)


def _export(
    sessions: sessionmaker[Session],
    feed: events.Feed,
    start: events.Position,
    end: events.Position,
    base: str,
) -> Iterator[dict[str, Any]]:
    """The feed's events from `start` up to `end`, a batch at a time on a session of its own
    (the response outlives the request's)."""
    position = start
    with session_scope(sessions) as session:
        while True:
            page, position, _more = events.read_feed(session, feed, position, EXPORT_BATCH)
            for event, record in page:
                if (event.txid, event.id) > (end.txid, end.id):
                    return
                yield events.event_data(event, record, base)
            if len(page) < EXPORT_BATCH:
                return


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n, row in enumerate(rows, 1):
        writer.writerow([_cell(row[c]) for c in COLUMNS])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> Any:
    # (formulas: app.spreadsheet)
    return safe_cell(json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value)


def _ndjson(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        if len(lines) == 500:
            yield "".join(lines)
            lines = []
    yield "".join(lines)
