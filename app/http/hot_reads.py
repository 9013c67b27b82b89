"""The hot reads: a letter's counts, timeline, badge and widget (`letter_read`), a page of the
letter list (`letters_read`), overlaps and their charts (`keyed_read`).

Each reads its validator (`app.http.validators`) on the event loop, without a worker thread or
the ORM; a current client gets its 304 and a repeat reader the bytes this app rendered for that
validator before (`app.http.renderings`), so a read costs about what reading one row costs,
whatever the letter's size; only a new state is computed (from the rollups), in a worker
thread, in a read session that reads the validator again, so that bytes are never kept under a
newer validator than the one they were made from.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from app.db.database import Database, session_scope
from app.db.rows import fetch_one_sync
from app.http.conditional import etag_for, not_modified, set_validators
from app.http.renderings import Rendered, Renderings
from app.http.validators import database_label, letter_ref, letter_state, letters_validator_sql
from app.models import Letter
from app.observability import HOT_READS


def _renderings(request: Request) -> Renderings:
    renderings: Renderings = request.app.state.renderings
    return renderings


async def letter_read(
    request: Request,
    slug: str,
    parts: tuple[object, ...],
    render: Callable[[Session, Letter], bytes],
    *,
    media_type: str,
    cache_control: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A hot read of one letter (counts, badge, widget, timeline): the validator from
    `letter_ref` on the event loop; a 304 when the client's copy is current; the bytes from
    the app's `Renderings` when it rendered them for this validator already; else `render` in
    a worker thread, in a read session, keyed by the validator read in that same session."""
    database: Database = request.app.state.database
    ref = await letter_ref(database, slug)
    etag = ref.etag(*parts)
    if (hit := not_modified(request.headers.get("if-none-match"), etag, cache_control)) is not None:
        HOT_READS.labels("not_modified").inc()
        hit.headers.update(headers or {})
        return hit
    etag, rendered = await _renderings(request).get(
        etag, functools.partial(_render_letter, database, slug, parts, render)
    )
    return set_validators(
        Response(rendered.body, media_type=media_type, headers=headers), etag, cache_control
    )


def _letters_etag(engine: Engine, row: tuple[Any, ...] | None, parts: tuple[object, ...]) -> str:
    return etag_for(database_label(engine), "letters", *(row or ()), *parts)


async def letters_read(
    request: Request,
    parts: tuple[object, ...],
    render: Callable[[Session], Rendered],
    *,
    media_type: str,
) -> Response:
    """A read of many letters at once (a page of the letter list) kept as `letter_read` keeps
    a letter's: keyed by the letters' validator (read on the event loop) and `parts` (which
    must hold everything else the bytes depend on: the URL, the day); a 304 when the client's
    copy is current, else the rendering this process made for that validator, else `render`'s
    in a worker thread. A write anywhere moves the key, so the rendering is exact; readers who
    miss together share one rendering."""
    database: Database = request.app.state.database
    etag = _letters_etag(
        database.engine,
        await database.fetch_one(letters_validator_sql(database.engine.dialect.name), ()),
        parts,
    )
    if (hit := not_modified(request.headers.get("if-none-match"), etag, None)) is not None:
        HOT_READS.labels("not_modified").inc()
        return hit
    etag, rendered = await _renderings(request).get(
        etag, functools.partial(_render_letters, database, parts, render)
    )
    return set_validators(
        Response(rendered.body, media_type=media_type, headers=rendered.headers), etag, None
    )


def _render_letters(
    database: Database, parts: tuple[object, ...], render: Callable[[Session], Rendered]
) -> tuple[str, Rendered]:
    with session_scope(database.read_sessions) as session:
        connection = session.connection()
        row = fetch_one_sync(connection, letters_validator_sql(connection.dialect.name), ())
        return _letters_etag(database.engine, row, parts), render(session)


def _keyed_etag(engine: Engine, row: tuple[Any, ...] | None, parts: tuple[object, ...]) -> str:
    return etag_for(database_label(engine), "keyed", *(row or ()), *parts)


async def keyed_read(
    request: Request,
    validator: tuple[str, tuple[Any, ...]],
    parts: tuple[object, ...],
    render: Callable[[Session], Rendered],
    *,
    media_type: str,
    cache_control: str | None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A read kept as `letters_read` keeps the letter list, by a validator of its own: one row
    of raw SQL (`%s` placeholders, read on the event loop and again in the rendering's session)
    that holds the versions of exactly what the bytes depend on — an overlap's letters, say —
    so that a write elsewhere leaves the rendering and the clients' copies current. `parts`
    holds the rest (the query). A 304 when the client's copy is current, else the rendering
    this process made for that validator, else `render`'s in a worker thread (its errors,
    a 404 or a 422, are raised to the caller and nothing is kept)."""
    database: Database = request.app.state.database
    sql, params = validator
    etag = _keyed_etag(database.engine, await database.fetch_one(sql, params), parts)
    if (hit := not_modified(request.headers.get("if-none-match"), etag, cache_control)) is not None:
        HOT_READS.labels("not_modified").inc()
        hit.headers.update(headers or {})
        return hit
    etag, rendered = await _renderings(request).get(
        etag, functools.partial(_render_keyed, database, validator, parts, render)
    )
    response = Response(rendered.body, media_type=media_type, headers={**rendered.headers, **(headers or {})})
    return set_validators(response, etag, cache_control)


def _render_keyed(
    database: Database,
    validator: tuple[str, tuple[Any, ...]],
    parts: tuple[object, ...],
    render: Callable[[Session], Rendered],
) -> tuple[str, Rendered]:
    with session_scope(database.read_sessions) as session:
        # The validator first: bytes newer than their key are never served under a newer one.
        row = fetch_one_sync(session.connection(), *validator)
        return _keyed_etag(database.engine, row, parts), render(session)


def _render_letter(
    database: Database, slug: str, parts: tuple[object, ...], render: Callable[[Session, Letter], bytes]
) -> tuple[str, Rendered]:
    with session_scope(database.read_sessions) as session:
        found = letter_state(session, slug)
        return found.etag(*parts), Rendered(render(session, found.letter))
