"""The validators of the hot reads: raw SQL of index lookups whose row changes with every write
that could change what a read shows, read on the event loop (`Database.fetch_one`) before
anything is computed, and again inside the session that renders (`fetch_one_sync`), so that
both give the same validator to the byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.db.database import Database
from app.db.rows import fetch_one_sync
from app.errors import NotFound
from app.http.conditional import etag_for
from app.models import Letter


def _committed_sql(dialect: str) -> str:
    """What moves with every committed write (the letter list's validator): the newest change
    record's id (every write of anything records one), and on PostgreSQL the writing
    transactions in progress. PostgreSQL hands ids out in insert order,
    and a transaction that took a lower id than the newest one visible may commit later: while
    it runs its xid is in the snapshot's in-progress list, which it leaves when it ends (one
    that starts later takes a higher id). The list is the statement's own snapshot's, so it
    agrees with the id read beside it; left out are only the transactions known to be of
    another database or of no client (autovacuum), which record no change of ours. SQLite
    commits one writer at a time, in id order."""
    newest = "(SELECT max(id) FROM change_records)"
    if dialect != "postgresql":
        return newest
    running = (
        "(SELECT string_agg(x::text, ',' ORDER BY x) FROM pg_snapshot_xip(pg_current_snapshot()) AS x"
        " WHERE NOT EXISTS (SELECT FROM pg_stat_activity AS a WHERE a.backend_xid = x::xid"
        " AND (a.datname IS DISTINCT FROM current_database() OR a.backend_type <> 'client backend')))"
    )
    return f"{newest}, {running}"


# The letter's validator in one SELECT of index lookups: its `version`, bumped by every write
# that can change what its reads show (its fields, parts and signatures, and the actors and
# seats those count under), the registry's version (`RegistryVersion`: seats and names that
# change every letter's breakdowns), and its id and creation time (ids can come back after a
# delete or a rollback). Both versions are bumped by an UPDATE of one row, so they grow in the
# order their writers commit. A write to one letter leaves the others' validators as they were.
# Raw SQL, read the same way on the event loop (`Database.fetch_one`) and inside a session
# (`fetch_one_sync`), so that both give the same validator to the byte.
LETTER_VALIDATOR_SQL = (
    "SELECT id, created_at, version, (SELECT version FROM registry_version WHERE id = 1)"
    " FROM letters WHERE slug = %s"
)


# The letters' validator (for reads of many letters): what moves with every write, and the
# newest letter write (an index lookup; every write to a letter or its signatures sets its
# `updated_at`, so even one that would record no change moves it).
@lru_cache(maxsize=4)
def letters_validator_sql(dialect: str) -> str:
    return f"SELECT (SELECT max(updated_at) FROM letters), {_committed_sql(dialect)}"


@lru_cache(maxsize=64)
def database_label(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@dataclass(frozen=True)
class LetterRef:
    """A letter's id and validator."""

    id: int
    created_at: str
    state: str
    database: str

    @classmethod
    def from_row(cls, slug: str, row: tuple[Any, ...] | None, engine: Engine) -> LetterRef:
        if row is None:
            raise NotFound(f"no letter with slug '{slug}'")
        ident, created_at, version, *committed = row
        return cls(ident, str(created_at), ".".join(map(str, [version, *committed])), database_label(engine))

    def etag(self, *parts: object) -> str:
        """A strong validator for one rendering: the database, the letter, its state, and
        whatever else (kind of response, day, query parameters) changes the bytes. Unique
        enough to key a cache of rendered bytes shared by several databases in one process."""
        return etag_for(self.database, self.id, self.created_at, self.state, *parts)


async def letter_ref(database: Database, slug: str) -> LetterRef:
    """The letter's id and validator, or a 404, without a thread: what a hot read needs to
    answer 304, or from its cache, before computing anything."""
    row = await database.fetch_one(LETTER_VALIDATOR_SQL, (slug,))
    return LetterRef.from_row(slug, row, database.engine)


@dataclass(frozen=True)
class LetterState:
    """A letter row and its validator, read in one session (so they agree)."""

    letter: Letter
    ref: LetterRef

    @property
    def state(self) -> str:
        return self.ref.state

    def etag(self, *parts: object) -> str:
        return self.ref.etag(*parts)


def letter_state(session: Session, slug: str) -> LetterState:
    """The letter and its validator in the session's transaction, or a 404."""
    connection = session.connection()
    row = fetch_one_sync(connection, LETTER_VALIDATOR_SQL, (slug,))
    ref = LetterRef.from_row(slug, row, connection.engine)
    letter = session.get(Letter, ref.id)
    if letter is None:  # deleted between the two reads
        raise NotFound(f"no letter with slug '{slug}'")
    return LetterState(letter=letter, ref=ref)
