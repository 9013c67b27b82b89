"""Keyset pagination: opaque cursors, the `{items, next_cursor}` envelope and the `Link` header.

A cursor is the sort key of the last row of a page, base64url-encoded JSON; the next page
starts strictly after it, so pages never repeat or skip a row even while rows are added.
Sort keys must not be NULL (wrap nullable columns in `coalesce`) and must end with a unique
column (the id) so the order is total.

Every list endpoint answers through a `Pager` (the `Paged` dependency): it hands the pager the
item schema and a fetch function, `(session, PageParams) -> (rows, next_cursor)` (most service
list functions are one already), and the pager makes the answer::

    @router.get("", response_model=Page[ThingOut], ...)
    def list_things(session: ReadSession, pager: Paged) -> Response:
        return pager.respond(session, ThingOut, service.list_things)

The pager owns the envelope, the `Link` header and the serialization, so anything every list
should do is done here, once: with `?format=csv|ndjson` (or `Accept: text/csv` /
`application/x-ndjson`, `app.formats`) it streams the whole list instead of one page, from the
`cursor` if one is given, calling the same `fetch` a page at a time, each page in a read
session of its own (the response outlives the request's session).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import BigInteger, ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db.database import get_database, session_scope
from app.db.rows import fetch_one_sync
from app.errors import Invalid
from app.formats import CONTENT_TYPES, Format, Wanted, attachment, encode_rows
from app.http.conditional import etag_for, not_modified
from app.http.validators import database_label, letters_validator_sql

T = TypeVar("T")
Item = TypeVar("Item", bound=BaseModel)
Row = TypeVar("Row")
MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    """A page of a list. `next_cursor` is null on the last page."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1 to 1000).")]
Cursor = Annotated[str | None, Query(max_length=2000, description="Opaque cursor from `next_cursor`.")]


@dataclass(frozen=True)
class SortKey:
    column: ColumnElement[Any] | InstrumentedAttribute[Any]
    descending: bool = False


def _encode_value(value: Any) -> Any:
    if isinstance(value, date):
        return {"d": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"d"}:
        return date.fromisoformat(value["d"])
    return value


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, width: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != width:
            raise ValueError("wrong shape")
        decoded = [_decode_value(v) for v in values]
        if any(v is None or isinstance(v, dict | list) for v in decoded):
            raise ValueError("wrong value")
        return decoded
    except (ValueError, binascii.Error, UnicodeDecodeError, TypeError, RecursionError) as exc:
        raise Invalid("not a cursor this service issued", field="query.cursor") from exc


_INT_BOUNDS = {True: 2**63, False: 2**31}  # BIGINT or not: INTEGER holds 32 bits on PostgreSQL


def _expected(key: SortKey) -> tuple[type, int]:
    """The Python type of a sort key's values, and the bound of an integer one."""
    kind = getattr(key.column, "type", None)
    try:
        python_type: type = kind.python_type if kind is not None else object
    except NotImplementedError:
        python_type = object
    return python_type, _INT_BOUNDS[isinstance(kind, BigInteger)]


def check_cursor_values(keys: Sequence[SortKey], values: Sequence[Any]) -> None:
    """A decoded cursor's values must be of their sort keys' types (an id an integer in the
    column's range, a day a date, text without NUL), so a forged cursor is a 422 and never a
    comparison the database cannot make."""
    for key, value in zip(keys, values, strict=True):
        python_type, bound = _expected(key)
        if isinstance(value, bool | float):  # (true/false, NaN, 1e400)
            ok = False
        elif python_type is int:
            ok = isinstance(value, int) and -bound <= value < bound
        elif python_type is date:
            ok = isinstance(value, date)
        elif python_type is str:
            ok = isinstance(value, str) and "\x00" not in value and len(value) <= 2000
        else:
            ok = isinstance(value, int | str) and not isinstance(value, date)
        if not ok:
            raise Invalid("not a cursor this service issued", field="query.cursor")


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the order of `keys` (mixed directions allowed)."""
    clauses = []
    for i, key in enumerate(keys):
        equal = [keys[j].column == values[j] for j in range(i)]
        beyond = key.column < values[i] if key.descending else key.column > values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def keyset_page(
    session: Session, stmt: Select[Any], keys: Sequence[SortKey], params: PageParams
) -> tuple[list[Any], str | None]:
    """Run `stmt` (selecting rows whose last len(keys) columns are the sort keys' values)
    one page at a time. Returns the rows (sort columns included) and the next cursor."""
    if params.cursor:
        values = decode_cursor(params.cursor, len(keys))
        check_cursor_values(keys, values)
        stmt = stmt.where(_after(keys, values))
    order = [k.column.desc() if k.descending else k.column.asc() for k in keys]
    stmt = stmt.add_columns(*(k.column for k in keys)).order_by(*order).limit(params.limit + 1)
    rows = list(session.execute(stmt).all())
    next_cursor = None
    if len(rows) > params.limit:
        rows = rows[: params.limit]
        next_cursor = encode_cursor(list(rows[-1])[-len(keys) :])
    return rows, next_cursor


def link_header(request: Request, next_cursor: str | None) -> dict[str, str]:
    """The `Link` header of a page: its next page's URL, if there is one."""
    if not next_cursor:
        return {}
    return {"Link": f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'}


# One page of a list from a session: the rows, and the cursor of the next page (None on the last).
Fetch = Callable[[Session, PageParams], tuple[Sequence[Row], str | None]]


@dataclass(frozen=True)
class Pager:
    """A request for one page of a list, or for the whole list as CSV or NDJSON, and the answer.

    The rows come from `fetch` (called with a session and a `PageParams`) rather than handed
    in, so the pager can ask for the pages it needs: the one the request names, or all of them
    for an export. `out` turns a row into an `item` (default `item.model_validate`, which takes
    an ORM row or an `item` as it is)."""

    request: Request
    params: PageParams
    format: Format = "json"

    def page(
        self, session: Session, item: type[Item], fetch: Fetch[Row], out: Callable[[Row], Item] | None = None
    ) -> Page[Item]:
        rows, next_cursor = fetch(session, self.params)
        convert = out or item.model_validate
        # Parametrized by the class itself, not the TypeVar, so the items serialize as `item`.
        envelope: type[Page[Item]] = Page[item]  # type: ignore[valid-type]
        return envelope(items=[convert(row) for row in rows], next_cursor=next_cursor)

    def render(
        self, session: Session, item: type[Item], fetch: Fetch[Row], out: Callable[[Row], Item] | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The page as JSON bytes and the headers that go with them (`Link`), for a read that
        keeps its rendering (see `app.http.renderings.Rendered`)."""
        page = self.page(session, item, fetch, out)
        return page.model_dump_json(by_alias=True).encode(), link_header(self.request, page.next_cursor)

    def respond(
        self,
        session: Session,
        item: type[Item],
        fetch: Fetch[Row],
        out: Callable[[Row], Item] | None = None,
        *,
        headers: dict[str, str] | None = None,
        validated: bool = True,
    ) -> Response:
        """The answer of a list endpoint: the page (the route's `response_model` documents it;
        the bytes are what FastAPI would make of it) with its `Link` header, or the whole list
        as CSV or NDJSON (`export`)."""
        if self.format != "json":
            return self.export(item, fetch, out, headers=headers, validated=validated)
        body, page_headers = self.render(session, item, fetch, out)
        return Response(
            body, media_type="application/json", headers={**page_headers, **VARY, **(headers or {})}
        )

    def validator(self, session: Session) -> str:
        """The strong validator of an export of this request: what moves with every committed
        write (`letters_validator_sql`), the URL, the format and the day (lists of letters carry
        counts as of today). Read before the first page, so a write during the stream moves
        it: a client never keeps rows newer than its validator under it."""
        connection = session.connection()
        row = fetch_one_sync(connection, letters_validator_sql(connection.dialect.name), ())
        return etag_for(
            database_label(connection.engine),
            "export",
            *(row or ()),
            self.request.url,
            self.format,
            date.today(),
        )

    def export(
        self,
        item: type[Item],
        fetch: Fetch[Row],
        out: Callable[[Row], Item] | None = None,
        *,
        headers: dict[str, str] | None = None,
        validated: bool = True,
    ) -> Response:
        """The whole list from `cursor` (or the start), streamed as CSV or NDJSON: `fetch` a
        page of `export_page_rows` at a time, each in a read session of its own. The first page
        is read before answering, so a 404 or a bad cursor is still a problem document. With an
        `ETag` (and a 304 for `If-None-Match`) unless `validated` is False: the lists that
        change without a change record (webhooks and their deliveries) have no validator."""
        sessions = get_database(self.request).read_sessions
        size: int = self.request.app.state.settings.export_page_rows
        convert = out or item.model_validate
        extra = {**VARY, **(headers or {})}
        with session_scope(sessions) as session:
            etag = self.validator(session) if validated else None
            if etag is not None:
                hit = not_modified(self.request.headers.get("if-none-match"), etag, None)
                if hit is not None:
                    hit.headers.update(extra)
                    return hit
            rows, cursor = fetch(session, PageParams(limit=size, cursor=self.params.cursor))
            first = [convert(row) for row in rows]

        def items() -> Iterator[Item]:
            yield from first
            after = cursor
            while after is not None:
                with session_scope(sessions) as session:
                    rows, after = fetch(session, PageParams(limit=size, cursor=after))
                    page = [convert(row) for row in rows]
                yield from page

        name = self.request.url.path.removeprefix("/v1/").replace("/", "-")
        response = StreamingResponse(
            encode_rows(self.format, item, items()),
            media_type=CONTENT_TYPES[self.format],
            headers={**attachment(name, self.format), **extra},
        )
        if etag is not None:
            response.headers["ETag"] = etag
        else:
            response.headers["Cache-Control"] = "no-store"
        return response


# Every list answers JSON, CSV or NDJSON by `Accept` too: a shared cache must key on it.
VARY = {"Vary": "Accept"}


async def _pager(request: Request, fmt: Wanted, limit: Limit = 50, cursor: Cursor = None) -> Pager:
    return Pager(request, PageParams(limit=limit, cursor=cursor), fmt)


# The `limit`, `cursor` and `format` query parameters of a list endpoint (and its `Accept`
# header), and its `Pager`.
Paged = Annotated[Pager, Depends(_pager)]
