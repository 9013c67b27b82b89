"""Whole-registry dumps (SPEC §4): `undersigned export DIR` writes one UTF-8 CSV per table,
`undersigned import DIR` reads them back; Popolo JSON (persons, organizations, memberships)
both ways.

Export streams every table in id order (`yield_per`), so memory stays flat at any size. Load
reads each file row by row and writes in batches of `BATCH` rows with executemany (ids of new
actors from `inserts.insert_actors`), all in the caller's one transaction, with one change
record (`load`). What stays in memory is the map from each dump's `ref` to the new actor id
(an int per actor) and the slug maps of bodies, parties, campaigns and letters.

Into an empty registry (no actors, no letters) every row is kept as it is. Into a registry with
data, actors are matched as the import endpoint does (identifier, exact normalised name, a
single clear fuzzy candidate; an ambiguous one becomes a new actor), bodies, parties, campaigns
and letters by slug (existing ones are left as they are, and so are the claims, sources and
events of letters that existed), and a signature, recipient or membership that exists already
is skipped.

Beyond the columns of the SPEC table, `letters.csv` carries `body` (the letter's text),
`signatures.csv` `source` and `events.csv` `campaign` (events of a campaign), so that a dump
loses nothing; a dump without them loads too.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy import func, insert, select, text, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, selectinload

from app import pairs, rollups
from app.actors.identity import refresh_names
from app.changes import record_change
from app.dates import window, window_problem
from app.errors import Invalid
from app.imports.matching import Resolver, chunks, decide_fuzzy
from app.imports.parsing import COUNTRIES, KINDS, format_identifiers, parse_identifiers
from app.imports.inserts import column_defaults, insert_actors, insert_rows
from app.models import (
    Actor,
    ActorAlias,
    Base,
    Body,
    Campaign,
    Claim,
    Event,
    Identifier,
    Letter,
    Membership,
    Party,
    Recipient,
    Signature,
    Source,
)
from app.names import variant_key
from app.schemas import MAX_INT
from app.text import match_name, search_text

BATCH = 5000
# (step: a file name, or what is being done; rows done so far; rows in all, or an estimate, if known)
Progress = Callable[[str, int, int | None], None]

COLUMNS: dict[str, list[str]] = {
    "bodies.csv": ["slug", "name", "country"],
    "parties.csv": ["slug", "name", "country"],
    "campaigns.csv": ["slug", "name", "description"],
    "actors.csv": ["ref", "kind", "name", "sort_name", "country", "org_type", "identifiers"],
    "memberships.csv": ["actor_ref", "body", "party", "constituency", "start_date", "end_date"],
    "aliases.csv": ["actor_ref", "name"],
    "letters.csv": [
        "slug",
        "title",
        "summary",
        "language",
        "published_on",
        "status",
        "claimed_signatory_count",
        "campaign",
        "body",
    ],
    "claims.csv": ["letter", "count", "wording", "url"],
    "sources.csv": ["letter", "label", "url"],
    "signatures.csv": [
        "letter",
        "actor_ref",
        "signed_on",
        "capacity",
        "affiliation",
        "position",
        "status",
        "withdrawn_on",
        "source",
    ],
    "recipients.csv": ["letter", "actor_ref", "role", "capacity"],
    "events.csv": ["letter", "date", "kind", "note", "url", "campaign"],
}
REQUIRED = {"actors.csv": ["ref", "kind", "name"]}

Row = dict[str, str | None]


# --- export -------------------------------------------------------------------------------------


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return value


def _stream(session: Session, stmt: Any) -> Iterator[Any]:
    yield from session.execute(stmt.execution_options(yield_per=BATCH))


def _table_rows(session: Session, name: str) -> Iterator[Any]:
    """The rows of one dump file, as tuples in COLUMNS order."""
    if name in ("bodies.csv", "parties.csv"):
        model: type[Body] | type[Party] = Body if name == "bodies.csv" else Party
        yield from _stream(session, select(model.slug, model.name, model.country).order_by(model.id))
    elif name == "campaigns.csv":
        yield from _stream(
            session, select(Campaign.slug, Campaign.name, Campaign.description).order_by(Campaign.id)
        )
    elif name == "actors.csv":
        yield from _actor_rows(session)
    elif name == "aliases.csv":
        yield from _stream(session, select(ActorAlias.actor_id, ActorAlias.name).order_by(ActorAlias.id))
    elif name == "memberships.csv":
        stmt: Any = (
            select(
                Membership.actor_id,
                Body.slug,
                Party.slug,
                Membership.constituency,
                Membership.start_date,
                Membership.end_date,
            )
            .join(Body, Body.id == Membership.body_id)
            .outerjoin(Party, Party.id == Membership.party_id)
            .order_by(Membership.id)
        )
        yield from _stream(session, stmt)
    elif name == "letters.csv":
        stmt = (
            select(
                Letter.slug,
                Letter.title,
                Letter.summary,
                Letter.language,
                Letter.published_on,
                Letter.status,
                Letter.claimed_signatory_count,
                Campaign.slug,
                Letter.body,
            )
            .outerjoin(Campaign, Campaign.id == Letter.campaign_id)
            .order_by(Letter.id)
        )
        yield from _stream(session, stmt)
    elif name == "claims.csv":
        yield from _stream(
            session,
            select(Letter.slug, Claim.count, Claim.wording, Claim.url)
            .join(Letter, Letter.id == Claim.letter_id)
            .order_by(Claim.id),
        )
    elif name == "sources.csv":
        yield from _stream(
            session,
            select(Letter.slug, Source.label, Source.url)
            .join(Letter, Letter.id == Source.letter_id)
            .order_by(Source.id),
        )
    elif name == "signatures.csv":
        stmt = (
            select(
                Letter.slug,
                Signature.actor_id,
                Signature.signed_on,
                Signature.capacity,
                Signature.affiliation,
                Signature.position,
                Signature.status,
                Signature.withdrawn_on,
                Signature.source,
            )
            .join(Letter, Letter.id == Signature.letter_id)
            .order_by(Signature.id)
        )
        yield from _stream(session, stmt)
    elif name == "recipients.csv":
        yield from _stream(
            session,
            select(Letter.slug, Recipient.actor_id, Recipient.role, Recipient.capacity)
            .join(Letter, Letter.id == Recipient.letter_id)
            .order_by(Recipient.id),
        )
    elif name == "events.csv":
        stmt = (
            select(Letter.slug, Event.date, Event.kind, Event.note, Event.url, Campaign.slug)
            .outerjoin(Letter, Letter.id == Event.letter_id)
            .outerjoin(Campaign, Campaign.id == Event.campaign_id)
            .order_by(Event.id)
        )
        yield from _stream(session, stmt)


def _actor_rows(session: Session, kind: str | None = None) -> Iterator[tuple[Any, ...]]:
    stmt = select(Actor.id, Actor.kind, Actor.name, Actor.sort_name, Actor.country, Actor.org_type).order_by(
        Actor.id
    )
    if kind is not None:
        stmt = stmt.where(Actor.kind == kind)
    batch: list[Any] = []

    def flush() -> Iterator[tuple[Any, ...]]:
        held: dict[int, list[tuple[str, str]]] = {}
        ids = [r[0] for r in batch]
        for actor_id, scheme, value in session.execute(
            select(Identifier.actor_id, Identifier.scheme, Identifier.value)
            .where(Identifier.actor_id.in_(ids))
            .order_by(Identifier.id)
        ):
            held.setdefault(actor_id, []).append((scheme, value))
        for r in batch:
            yield (*r, format_identifiers(held.get(r[0], [])))

    for row in _stream(session, stmt):
        batch.append(row)
        if len(batch) >= 1000:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def export_registry(session: Session, directory: Path, *, progress: Progress | None = None) -> dict[str, int]:
    """Write every table to `directory` (created if needed); the row count of each file."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for name, columns in COLUMNS.items():
        count = 0
        with (directory / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in _table_rows(session, name):
                writer.writerow([_cell(v) for v in row])
                count += 1
                if progress and count % BATCH == 0:
                    progress(name, count, None)
        written[name] = count
        if progress:
            progress(name, count, count)
    return written


# --- load ---------------------------------------------------------------------------------------

RowSource = Callable[[str], Iterator[tuple[int, Row]] | None]  # file name -> (line, row) or None if absent


class DirectorySource:
    """Rows of the CSV files in a directory, read lazily, one at a time (a `RowSource`); the
    PostgreSQL bulk path reads the files themselves (`path`)."""

    def __init__(self, directory: Path) -> None:
        if not (directory / "actors.csv").is_file():
            raise Invalid(f"{directory} holds no actors.csv", field="dir")
        self.directory = directory

    def path(self, name: str) -> Path | None:
        path = self.directory / name
        return path if path.is_file() else None

    def __call__(self, name: str) -> Iterator[tuple[int, Row]] | None:
        path = self.path(name)
        return None if path is None else _csv_file_rows(path, name)


def directory_source(directory: Path) -> DirectorySource:
    """Rows of the CSV files in `directory`, read lazily, one at a time."""
    return DirectorySource(directory)


def _csv_file_rows(path: Path, name: str) -> Iterator[tuple[int, Row]]:
    """The rows as csv.DictReader would give them (blank rows skipped, a short row's missing
    fields None), each field trimmed and an empty one None; read with csv.reader, a third
    cheaper."""
    header: list[str] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            header = [h.strip().lower() for h in next(reader, None) or []]
            missing = [c for c in REQUIRED.get(name, []) if c not in header]
            if missing:
                raise Invalid(f"{name}: the header lacks {', '.join(missing)}", field=name)
            width = len(header)
            for row in reader:
                if len(row) != width:
                    if not row:
                        continue
                    if len(row) > width:
                        raise Invalid(
                            f"{name} line {reader.line_num}: more fields than the header", field=name
                        )
                    row += [""] * (width - len(row))
                if "\x00" in "".join(row):  # SQLite would keep it; no PostgreSQL text can
                    column = header[next(i for i, v in enumerate(row) if "\x00" in v)]
                    raise Invalid(
                        f"{name} line {reader.line_num}, {column}: holds a NUL character", field=name
                    )
                yield reader.line_num, dict(zip(header, [v.strip() or None for v in row], strict=True))
    except csv.Error as exc:
        raise Invalid(f"{name} line {reader.line_num}: {exc}", field=name) from exc
    except UnicodeDecodeError:
        raise not_utf8(path, name, header) from None


def not_utf8(path: Path, name: str, header: list[str]) -> Invalid:
    """Where a dump file stops being UTF-8: its line (counted as the csv module counts) and
    the column the bad byte falls in."""
    with path.open("rb") as f:
        data = f.read()
    try:
        data.decode("utf-8")
        return Invalid(f"{name}: not UTF-8", field=name)
    except UnicodeDecodeError as exc:
        start = exc.start
    if not header:  # (the decoder reads ahead: the header may not have been read yet)
        first = data.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff")
        header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    line = data.count(b"\n", 0, start) + 1
    line_start = data.rfind(b"\n", 0, start) + 1
    before = data[line_start:start].decode("utf-8", "replace")
    fields = next(csv.reader([before]), [""])
    column = header[len(fields) - 1] if line > 1 and 0 < len(fields) <= len(header) else "header"
    return Invalid(
        f"{name} line {line}, {column}: byte 0x{data[start]:02x} is not UTF-8 (dump files are UTF-8)",
        field=name,
    )


@dataclass
class LoadStats:
    rows: dict[str, int] = field(default_factory=dict)
    actors_created: int = 0
    actors_matched: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    # Files the PostgreSQL bulk path handed to the row-by-row path (a row it does not take as it
    # is, or a bad row whose line the row-by-row path then reports). Not part of the change record.
    row_by_row: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "actors_created": self.actors_created,
            "actors_matched": self.actors_matched,
            "skipped": self.skipped,
        }


# --- load: PostgreSQL bulk path -------------------------------------------------------------------
#
# Actors, memberships and signatures go in with a few statements each instead of a statement per
# batch: the files are COPYed into temporary staging tables (as they are when the server parses
# them exactly as Python's csv module does, else parsed here and sent row by row), the dump's
# refs and slugs are mapped to ids by joins, and every row is checked in SQL, where a bad value
# raises. Any failure rolls the file back to a savepoint and hands it to the row-by-row path,
# which then reports the line of the bad row with the same message as always (or loads the few
# forms only it reads, such as a short row). Into an empty registry the signatures' secondary
# indexes and foreign keys are dropped before the insert and made again after it, as pg_restore
# does (an index build sorts once; a foreign key added afterwards is checked by one join).

# What `str.strip()` takes off (every character `str.isspace()` holds for; none is above U+3000),
# so that SQL trims a field exactly as the row reader does.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
CHUNK = 1 << 20  # bytes read and sent at a time
BAD = "pg_temp.undersigned_dump_bad"  # raises: a row the bulk path does not take
WORK_MEM = "256MB"  # for the load's hash joins and sorts (SET LOCAL: this transaction only)
MAINTENANCE_WORK_MEM = "256MB"  # for its index builds


class _Fallback(Exception):
    """The bulk path does not take this file as it is; the row-by-row path will."""


_BULK_FAILURES: tuple[type[BaseException], ...] = (
    _Fallback,
    Invalid,
    csv.Error,
    UnicodeDecodeError,
    DBAPIError,
    psycopg.Error,
)


@dataclass
class _Staged:
    """A dump file in a staging table: one text column per header column (`c0`, `c1`, …), rows
    in file order; `trim`: some field may still have whitespace around it."""

    table: str
    columns: dict[str, int]
    rows: int
    trim: bool

    def value(self, column: str) -> str:
        """SQL for the column's field as the row reader gives it: trimmed, empty = NULL."""
        index = self.columns.get(column)
        if index is None:
            return "CAST(NULL AS text)"
        return f"nullif(btrim(c{index}, :ws), '')" if self.trim else f"c{index}"

    def fields(self, columns: list[str], ids: str | None = None) -> str:
        """A subquery of the staged rows: `n` (file order) and each column's field; with `ids`
        (a sequence), also `id`, the sequence's next value for each row in file order: the
        subquery is a plain scan of one temporary table (no index, never parallel), which reads
        the rows in the order COPY wrote them, and any plan that joins it reads it once, so the
        ids follow the file whatever order the join gives its rows in."""
        values = ", ".join(f"{self.value(c)} AS {c}" for c in columns)
        first = f"nextval('{ids}') AS id, " if ids else ""
        return f"(SELECT {first}ctid AS n, {values} FROM {self.table} OFFSET 0)"


def _sql_date(expr: str, *, required: bool = False) -> str:
    """`expr` as a date. Only YYYY-MM-DD (the ISO form PostgreSQL writes back the same, which
    `date.fromisoformat` reads as the same day); any other form is left to the row-by-row path."""
    earliest, latest = window()  # (dates, so their ISO text is safe in the statement)
    checked = (
        f"CASE WHEN length({expr}) = 10 AND CAST(CAST({expr} AS date) AS text) = {expr} "
        f"AND CAST({expr} AS date) BETWEEN DATE '{earliest.isoformat()}' AND DATE '{latest.isoformat()}' "
        f"THEN CAST({expr} AS date) ELSE {BAD}(CAST(NULL AS date)) END"
    )
    return checked if required else f"CASE WHEN {expr} IS NULL THEN NULL ELSE {checked} END"


def _sql_int(expr: str) -> str:
    """`expr` as a whole number, written plainly (other forms go to the row-by-row path)."""
    return (
        f"CASE WHEN {expr} IS NULL THEN NULL WHEN CAST(CAST({expr} AS integer) AS text) = {expr} "
        f"THEN CAST({expr} AS integer) ELSE {BAD}(CAST(NULL AS integer)) END"
    )


def _sql_found(expr: str, given: str | None = None) -> str:
    """The id `expr` found by a join; a bad row when it is NULL (unless `given` is NULL too)."""
    found = f"coalesce({expr}, {BAD}(CAST(NULL AS integer)))"
    return found if given is None else f"CASE WHEN {given} IS NULL THEN NULL ELSE {found} END"


def _raw(session: Session) -> psycopg.Connection[Any]:
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def _edge_table(edges: bytes) -> bytes:
    """A bytes.translate table: field ends (comma, CR, LF) to LF, `edges` to space, others kept."""
    table = bytearray(range(256))
    for byte in b",\r\n":
        table[byte] = ord("\n")
    for byte in edges:
        table[byte] = ord(" ")
    return bytes(table)


# Bytes that may begin a whitespace character (as a field's first) or end one (as its last): the
# ASCII ones, and the lead and last bytes of the UTF-8 forms of the others. Finding none next to
# a field end proves that no field has whitespace to trim (finding one may be a false alarm).
_ASCII_SPACE = bytes(c for c in range(128) if chr(c).isspace() and chr(c) not in "\r\n")
_LEADS = _edge_table(_ASCII_SPACE + bytes({c.encode()[0] for c in WHITESPACE if ord(c) > 127}))
_LASTS = _edge_table(_ASCII_SPACE + bytes({c.encode()[-1] for c in WHITESPACE if ord(c) > 127}))


def _edge_next_to_field_end(window: bytes) -> bool:
    """Whether a whitespace lead byte follows a field end, or a last byte precedes one. Most
    windows hold no such byte at all: a search for one byte (far cheaper than for two, as field
    ends are everywhere) rules them out first."""
    leads = window.translate(_LEADS)
    if b" " in leads and b"\n " in leads:
        return True
    lasts = window.translate(_LASTS)
    return b" " in lasts and b" \n" in lasts


def _inspect(path: Path) -> tuple[list[str], int | None, bool]:
    """The file's header (trimmed, lower case); where its data starts when the server can parse
    the file itself (else None); and whether a field may have whitespace around it.

    The server parses a file as Python's csv module does when it holds no quote character (so
    no field spans lines or holds a comma, and both split at every comma and line end alike) and
    no `\\.` (COPY's end marker), and its header line ends in LF or CRLF. Raises _Fallback for
    an empty file."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            first = next(csv.reader(f, strict=True), None)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise _Fallback(f"header: {exc}") from exc
    if first is None:
        raise _Fallback("no header")
    header = [h.strip().lower() for h in first]
    with path.open("rb") as f:
        line = f.readline()
        ending = line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line
        simple = b'"' not in line and b"\r" not in ending and b"\\." not in line
        spaced = False
        last = b"\n"
        while simple and (chunk := f.read(CHUNK)):
            window = last + chunk
            if b'"' in chunk or (b"\\" in window and b"\\." in window):  # (one byte first: far faster)
                simple = False
            if not spaced:
                following = f.peek(1)[:1] or b"\n"
                window += following
                spaced = _edge_next_to_field_end(window)
            last = chunk[-1:]
    return header, len(line) if simple else None, spaced


def _stage(session: Session, path: Path, name: str, table: str, progress: Progress | None) -> _Staged:
    """COPY the data rows of `path` into a new temporary table (see `_Staged`). A file the server
    parses as Python's csv module would goes as it is, in chunks, while the server parses it;
    any other is parsed here, with the row reader's rules (blank rows skipped, short rows padded,
    fields trimmed, a long row left to the row-by-row path to report)."""
    header, start, spaced = _inspect(path)
    width = len(header)
    if width < 2:  # a blank line is a row of one empty field to COPY, and no row to the csv module
        raise _Fallback("fewer than two columns")
    session.execute(text(f"DROP TABLE IF EXISTS {table}"))
    columns = ", ".join(f"c{i} text" for i in range(width))
    session.execute(text(f"CREATE TEMPORARY TABLE {table} ({columns})"))
    total = path.stat().st_size
    done = 0
    with _raw(session).cursor() as cursor:
        if start is not None:
            with (
                path.open("rb") as f,
                cursor.copy(f"COPY {table} FROM STDIN (FORMAT csv, ENCODING 'UTF8')") as copy,
            ):
                f.seek(start)
                sent = start
                chunk = f.read(CHUNK)
                while chunk:
                    following = f.read(CHUNK)
                    if not following:  # blank lines at the end: no rows to the csv module
                        chunk = chunk.rstrip(b"\r\n")
                    copy.write(chunk)
                    sent += len(chunk)
                    done += chunk.count(b"\n")
                    if progress:
                        progress(name, done, max(done, done * total // sent))
                    chunk = following
        else:
            spaced = False
            with (
                path.open(encoding="utf-8-sig", newline="") as f,
                cursor.copy(f"COPY {table} FROM STDIN") as copy,
            ):
                reader = csv.reader(f, strict=True)
                next(reader)
                for row in reader:
                    if len(row) != width:
                        if not row:
                            continue
                        if len(row) > width:
                            raise _Fallback(f"line {reader.line_num}: more fields than the header")
                        row += [""] * (width - len(row))
                    copy.write_row([v.strip() or None for v in row])
                    done += 1
                    if progress and done % BATCH == 0:
                        progress(name, done, None)
        rows = cursor.rowcount
    if progress:
        progress(name, rows, rows)
    return _Staged(table, {h: i for i, h in enumerate(header)}, rows, spaced)


def _insert_select(
    session: Session,
    table_name: str,
    columns: list[str],
    select_sql: str,
    params: dict[str, Any],
    on_conflict: str = "",
) -> int:
    """INSERT INTO the table the rows of `select_sql` (which gives `columns`, in order), the
    columns' Python-side defaults added; the number of rows inserted."""
    defaults = column_defaults(table_name, columns)
    names = columns + list(defaults)
    given = ", ".join(f"x.{c}" for c in columns) + "".join(f", :d_{c}" for c in defaults)
    sql = f"INSERT INTO {table_name} ({', '.join(names)}) SELECT {given} FROM ({select_sql}) x {on_conflict}"
    result = session.execute(text(sql), {**params, **{f"d_{c}": v for c, v in defaults.items()}})
    return int(result.rowcount)  # type: ignore[attr-defined]


def _drop_keys_and_indexes(session: Session, table: str) -> list[str]:
    """Drop the table's indexes, its foreign keys and, on PostgreSQL, its primary key when no
    foreign key refers to it (signatures, memberships: an index built once costs about a quarter of
    keeping it row by row); the statements that make them again (primary key and unique
    constraints first, foreign keys last). On SQLite only the indexes made by CREATE INDEX (a
    constraint's index is part of its table)."""
    if session.get_bind().dialect.name == "sqlite":
        indexes = session.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
            ),
            {"t": table},
        ).all()
        for name, _sql in indexes:
            session.execute(text(f'DROP INDEX "{name}"'))
        return [sql for _name, sql in indexes]
    constraints = session.execute(
        text(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND (contype IN ('u', 'f') OR contype = 'p' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint r WHERE r.confrelid = CAST(:t AS regclass))) "
            "ORDER BY contype DESC, conname"
        ),
        {"t": table},
    ).all()
    indexes = session.execute(
        text(
            "SELECT CAST(CAST(i.indexrelid AS regclass) AS text), pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = CAST(:t AS regclass) AND NOT i.indisprimary AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid) "
            "ORDER BY 1"
        ),
        {"t": table},
    ).all()
    remake = [f'ALTER TABLE {table} ADD CONSTRAINT "{n}" {d}' for n, kind, d in constraints if kind in "pu"]
    remake += [d for _n, d in indexes]
    remake += [f'ALTER TABLE {table} ADD CONSTRAINT "{n}" {d}' for n, kind, d in constraints if kind == "f"]
    for conname, _kind, _d in constraints:
        session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{conname}"'))
    for index, _d in indexes:
        session.execute(text(f"DROP INDEX {index}"))
    return remake


@contextmanager
def _indexed_after(session: Session, tables: list[str], report: Callable[[], None]) -> Iterator[None]:
    """Into an empty registry, as pg_restore does: the tables' secondary indexes and foreign
    keys are dropped for the block and made again after it (an index build sorts once; a foreign
    key added afterwards is checked by one join). `report` is called before they are made. A
    role that may not drop them loads with them in place."""
    if not tables:
        yield
        return
    try:
        with session.begin_nested():
            remake = [statement for table in tables for statement in _drop_keys_and_indexes(session, table)]
    except DBAPIError:  # not the tables' owner: they keep their indexes
        remake = []
    yield
    report()
    for statement in remake:
        session.connection().exec_driver_sql(statement)


# --- load: the loader ---------------------------------------------------------------------------


class _Loader:
    def __init__(
        self,
        session: Session,
        source: RowSource,
        progress: Progress | None,
        scorer: str,
        threshold: float,
        bulk: bool = True,
    ) -> None:
        self.session = session
        self.conn = session.connection()
        self.source = source
        self.progress = progress
        self.stats = LoadStats()
        self.empty = (
            session.scalar(select(func.count()).select_from(select(Actor.id).limit(1).subquery())) == 0
            and session.scalar(select(func.count()).select_from(select(Letter.id).limit(1).subquery())) == 0
        )
        self.resolver = None if self.empty else Resolver(session, scorer=scorer, threshold=threshold)
        # The bulk path: PostgreSQL, files read from a directory (actors from any source).
        self.bulk = bulk and self.conn.dialect.name == "postgresql"
        # SQLite loads row by row; into an empty registry its CREATE INDEX indexes are built once
        # at the end of each table.
        self.sqlite_empty = self.empty and self.conn.dialect.name == "sqlite"
        self.files = source if isinstance(source, DirectorySource) else None
        # Where the map from each dump's ref to its actor id is: `refs` (row-by-row path) and/or
        # the temporary table `dump_refs` (bulk path); each is filled from the other on demand.
        self.refs: dict[str, int] = {}
        self.refs_in_memory = True
        self.refs_in_table = False
        self.bodies: dict[str, int] = {}
        self.parties: dict[str, int] = {}
        self.campaigns: dict[str, int] = {}
        self.letters: dict[str, int] = {}
        self.new_letters: set[int] = set()
        self.created_ids: set[tuple[str, int]] = set()  # (table, id) of bodies/parties/campaigns made here
        if self.bulk:
            self.conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
            self.conn.execute(text(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'"))
            self.conn.execute(
                text(
                    f"CREATE OR REPLACE FUNCTION {BAD}(anyelement) RETURNS anyelement LANGUAGE plpgsql "
                    "AS $$BEGIN RAISE EXCEPTION 'a dump row the bulk load does not take' "
                    "USING ERRCODE = 'data_exception'; END$$"
                )
            )

    # helpers
    def _report(self, step: str, done: int, total: int | None = None) -> None:
        if self.progress:
            self.progress(step, done, total)

    def _batches(self, name: str) -> Iterator[list[tuple[int, Row]]]:
        rows = self.source(name)
        if rows is None:
            return
        batch: list[tuple[int, Row]] = []
        done = 0
        for item in rows:
            batch.append(item)
            if len(batch) >= BATCH:
                done += len(batch)
                yield batch
                batch = []
                self._report(name, done)
        if batch:
            done += len(batch)
            yield batch
        self.stats.rows[name] = done
        self._report(name, done, done)

    def _skip(self, name: str, n: int = 1) -> None:
        if n:
            self.stats.skipped[name] = self.stats.skipped.get(name, 0) + n

    def _either(self, name: str, bulk: Callable[[], None], rows: Callable[[], None]) -> None:
        """`bulk()` under a savepoint; if it fails, everything it did is undone and `rows()` (the
        row-by-row path) loads the file, or reports its bad row."""
        stats = self.stats
        saved = (
            dict(stats.rows),
            dict(stats.skipped),
            stats.actors_created,
            self.refs_in_table,
            self.refs_in_memory,
        )
        nested = self.session.begin_nested()
        try:
            bulk()
        except _BULK_FAILURES:
            nested.rollback()
            stats.rows, stats.skipped, stats.actors_created, self.refs_in_table, self.refs_in_memory = saved
            stats.row_by_row.append(name)
            self._report(f"{name} (row by row)", 0)
            rows()
        else:
            nested.commit()

    def _memory_refs(self) -> None:
        """The row-by-row path reads `refs`."""
        if not self.refs_in_memory:
            self.refs = {}
            for ref, ident in self.session.execute(text("SELECT ref, actor_id FROM dump_refs")):
                self.refs[ref] = ident
            self.refs_in_memory = True

    def _table_refs(self) -> None:
        """The bulk path joins `dump_refs`."""
        if self.refs_in_table:
            return
        self.session.execute(text("DROP TABLE IF EXISTS dump_refs"))
        self.session.execute(
            text("CREATE TEMPORARY TABLE dump_refs (actor_id integer NOT NULL, ref text NOT NULL)")
        )
        with (
            _raw(self.session).cursor() as cursor,
            cursor.copy("COPY dump_refs (actor_id, ref) FROM STDIN") as copy,
        ):
            for ref, ident in self.refs.items():
                copy.write_row((ident, ref))
        self.session.execute(text("ANALYZE dump_refs"))
        self.refs_in_table = True

    @staticmethod
    def _need(name: str, line: int, row: Row, column: str) -> str:
        value = row.get(column)
        if value is None:
            raise Invalid(f"{name} line {line}: {column} is required", field=name)
        return value

    @staticmethod
    def _date(name: str, line: int, value: str | None) -> date | None:
        if value is None:
            return None
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise Invalid(f"{name} line {line}: {value!r} is not a date", field=name) from None
        if (problem := window_problem(day)) is not None:
            raise Invalid(f"{name} line {line}: {value!r} {problem}", field=name)
        return day

    @staticmethod
    def _int(name: str, line: int, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise Invalid(f"{name} line {line}: {value!r} is not a whole number", field=name) from None
        if not -MAX_INT - 1 <= number <= MAX_INT:  # what PostgreSQL's INTEGER holds (so the API)
            raise Invalid(f"{name} line {line}: {value!r} is larger than {MAX_INT}", field=name)
        return number

    @staticmethod
    def _country(name: str, line: int, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in COUNTRIES:
            raise Invalid(f"{name} line {line}: {value!r} is not an ISO 3166-1 alpha-2 code", field=name)
        return value.upper()

    def _lookup(self, table: dict[str, int], what: str, name: str, line: int, slug: str | None) -> int | None:
        if slug is None:
            return None
        if slug not in table:
            raise Invalid(f"{name} line {line}: unknown {what} {slug!r}", field=name)
        return table[slug]

    def _ref(self, name: str, line: int, row: Row) -> int:
        ref = self._need(name, line, row, "actor_ref")
        if ref not in self.refs:
            raise Invalid(f"{name} line {line}: actor_ref {ref!r} is not in actors.csv", field=name)
        return self.refs[ref]

    def _actor_fields(self, name: str, line: int, row: Row) -> tuple[str, str, str, list[tuple[str, str]]]:
        """ref, kind, name and identifiers of an actors.csv row, checked."""
        ref = self._need(name, line, row, "ref")
        if ref in self.refs:
            raise Invalid(f"{name} line {line}: ref {ref!r} appears twice", field=name)
        kind = self._need(name, line, row, "kind")
        if kind not in KINDS:
            raise Invalid(f"{name} line {line}: kind must be person or organisation", field=name)
        try:
            pairs = parse_identifiers(row.get("identifiers"))
        except ValueError as exc:
            raise Invalid(f"{name} line {line}: identifiers: {exc}", field=name) from None
        return ref, kind, self._need(name, line, row, "name"), pairs

    # tables
    def load_slugged(
        self, name: str, model: type[Body] | type[Party] | type[Campaign], into: dict[str, int]
    ) -> None:
        for slug, ident in self.session.execute(select(model.slug, model.id)):
            into[slug] = ident
        table = Base.metadata.tables[model.__tablename__]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                slug = self._need(name, line, row, "slug")
                if slug in into:
                    self._skip(name)
                    continue
                into[slug] = -1
                value: dict[str, Any] = {"slug": slug, "name": self._need(name, line, row, "name")}
                if model is Campaign:
                    value["description"] = row.get("description")
                else:
                    value["country"] = self._country(name, line, row.get("country"))
                values.append(value)
            if values:
                self.conn.execute(insert(table), values)
                slugs = [v["slug"] for v in values]
                for part in chunks(slugs):
                    for slug, ident in self.session.execute(
                        select(model.slug, model.id).where(model.slug.in_(part))
                    ):
                        into[slug] = ident
                        self.created_ids.add((model.__tablename__, ident))

    @contextmanager
    def _indexes_at_the_end(self, tables: list[str], what: str) -> Iterator[None]:
        """The row-by-row path into an empty SQLite registry builds the tables' indexes once, at
        the end (elsewhere it keeps them)."""
        step = f"{what}: indexing"
        with _indexed_after(self.session, tables if self.sqlite_empty else [], lambda: self._report(step, 0)):
            yield
        if self.sqlite_empty:
            self._report(step, 0, 0)

    def load_actors(self) -> None:
        if self.bulk and self.empty:
            self._either("actors.csv", self._actors_bulk, self._actors_rows)
        else:
            with self._indexes_at_the_end(["actors", "identifiers"], "actors"):
                self._actors_rows()

    def _actors_bulk(self) -> None:
        """Into an empty registry: every row streamed (checked, names folded) into one COPY of
        the staging table `dump_refs`, whose default takes each actor's id from the actors'
        sequence in file order; then two INSERT … SELECT (actors, identifiers). A row's identifier
        schemes and values go as two texts joined by ';' (which no part holds: the dump's field is
        split on it), split again in SQL: a fifth of the client's cost of sending them as arrays."""
        name = "actors.csv"
        rows = self.source(name)
        if rows is None:
            return
        session = self.session
        sequence = session.scalar(text("SELECT pg_get_serial_sequence('actors', 'id')"))
        session.execute(text("DROP TABLE IF EXISTS dump_refs"))
        session.execute(
            text(
                "CREATE TEMPORARY TABLE dump_refs (actor_id integer NOT NULL "
                f"DEFAULT nextval('{sequence}'), ref text NOT NULL, kind text NOT NULL, name text NOT NULL, "
                "sort_name text, country text, org_type text, match_name text NOT NULL, "
                "variant_key text NOT NULL, search_text text NOT NULL, schemes text, ident_values text)"
            )
        )
        self.refs_in_table = True  # (the savepoint undoes the flags with the table)
        self.refs_in_memory = False
        columns = (
            "ref, kind, name, sort_name, country, org_type, match_name, variant_key, search_text, schemes, "
            "ident_values"
        )
        done = 0
        with _raw(session).cursor() as cursor, cursor.copy(f"COPY dump_refs ({columns}) FROM STDIN") as copy:
            for line, row in rows:
                ref, kind, actor_name, pairs = self._actor_fields(name, line, row)
                sort_name = row.get("sort_name")
                copy.write_row(
                    (
                        ref,
                        kind,
                        actor_name,
                        sort_name,
                        self._country(name, line, row.get("country")),
                        row.get("org_type"),
                        match_name(actor_name),
                        variant_key(actor_name, kind),
                        search_text(actor_name, sort_name),
                        ";".join([s for s, _v in pairs]) or None,
                        ";".join([v for _s, v in pairs]) or None,
                    )
                )
                done += 1
                if done % BATCH == 0:
                    self._report(name, done)
        self.stats.rows[name] = done
        self._report(name, done, done)
        session.execute(text("CREATE UNIQUE INDEX ON dump_refs (ref)"))  # a ref twice: row by row says where
        self._report("actors: inserting", 0)
        columns_out = [
            "id",
            "kind",
            "name",
            "sort_name",
            "country",
            "org_type",
            "match_name",
            "variant_key",
            "search_text",
        ]
        with _indexed_after(session, ["actors", "identifiers"], lambda: self._report("actors: indexing", 0)):
            self.stats.actors_created = _insert_select(
                session,
                "actors",
                columns_out,
                "SELECT actor_id AS id, kind, name, sort_name, country, org_type, match_name, variant_key, "
                "search_text FROM dump_refs ORDER BY actor_id",
                {},
            )
            _insert_select(
                session,
                "identifiers",
                ["actor_id", "scheme", "value"],
                "SELECT r.actor_id, u.scheme, u.value FROM dump_refs r "
                "CROSS JOIN LATERAL unnest(string_to_array(r.schemes, ';'), string_to_array(r.ident_values, ';')) "
                "WITH ORDINALITY AS u(scheme, value, i) "
                "WHERE r.schemes IS NOT NULL ORDER BY r.actor_id, u.i",
                {},
            )
            self._report("actors: inserting", done, done)
        session.execute(text("ANALYZE dump_refs (actor_id, ref)"))  # what later joins read: 0.1 s, not 0.4
        self._report("actors: indexing", 0, 0)

    def _actors_rows(self) -> None:
        self._memory_refs()
        self.refs_in_table = False
        name = "actors.csv"
        for batch in self._batches(name):
            parsed = []
            for line, row in batch:
                ref, kind, actor_name, pairs = self._actor_fields(name, line, row)
                self.refs[ref] = -1  # (its id below) so that a ref twice in one batch is caught
                parsed.append((ref, kind, actor_name, row, pairs, line))
            targets = self._match(parsed) if self.resolver is not None else [None] * len(parsed)
            new = [(p, t) for p, t in zip(parsed, targets, strict=True) if t is None]
            for p, t in zip(parsed, targets, strict=True):
                if t is not None:
                    self.refs[p[0]] = t
                    self.stats.actors_matched += 1
            values = [
                {
                    "kind": kind,
                    "name": actor_name,
                    "sort_name": row.get("sort_name"),
                    "country": self._country(name, line, row.get("country")),
                    "org_type": row.get("org_type"),
                    "match_name": match_name(actor_name),
                    "variant_key": variant_key(actor_name, kind),
                    "search_text": search_text(actor_name, row.get("sort_name")),
                }
                for (_ref, kind, actor_name, row, _pairs, line), _t in new
            ]
            ids = insert_actors(self.session, values)
            identifiers = []
            for ((ref, kind, _n, _r, pairs, _l), _t), value, new_id in zip(new, values, ids, strict=True):
                self.refs[ref] = new_id
                identifiers += [{"actor_id": new_id, "scheme": s, "value": v} for s, v in pairs]
                if self.resolver is not None:  # later batches match these by name too
                    self.resolver.add_new(kind, new_id, str(value["match_name"]))
            self.stats.actors_created += len(ids)
            if identifiers:
                self.conn.execute(insert(Base.metadata.tables["identifiers"]), identifiers)

    def _match(self, parsed: list[Any]) -> list[int | None]:
        """Existing (or earlier-loaded) actors for a batch of actor rows, as the import does."""
        resolver = self.resolver
        assert resolver is not None
        by_ident = resolver.by_identifiers(p for item in parsed for p in item[4])
        keys = [match_name(item[2]) for item in parsed]
        exact: dict[str, dict[str, list[int]]] = {}
        for kind in KINDS:
            exact[kind] = resolver.by_names(
                kind, (k for item, k in zip(parsed, keys, strict=True) if item[1] == kind)
            )
        out: list[int | None] = []
        for item, key in zip(parsed, keys, strict=True):
            ids = {by_ident[p] for p in item[4] if p in by_ident}
            if len(ids) == 1:
                out.append(ids.pop())
                continue
            if len(ids) > 1:
                raise Invalid(
                    f"actors.csv line {item[5]}: its identifiers belong to different actors",
                    field="actors.csv",
                )
            names = exact[item[1]].get(key, [])
            if len(names) == 1:
                out.append(names[0])
                continue
            if names:
                out.append(None)  # ambiguous: a new actor
                continue
            best, _close = decide_fuzzy(resolver.fuzzy(item[1], key))
            out.append(best.id if best else None)
        return out

    def load_memberships(self) -> None:
        path = self.files.path("memberships.csv") if self.bulk and self.files else None
        if path is None:
            with self._indexes_at_the_end(["memberships"], "memberships"):
                self._memberships_rows()
        else:
            self._either("memberships.csv", lambda: self._memberships_bulk(path), self._memberships_rows)

    def _memberships_bulk(self, path: Path) -> None:
        name = "memberships.csv"
        self._table_refs()
        staged = _stage(self.session, path, name, "dump_memberships", self.progress)
        self.stats.rows[name] = staged.rows
        self._report("memberships: inserting", 0)
        fields = staged.fields(["actor_ref", "body", "party", "constituency", "start_date", "end_date"])
        resolved = (
            f"SELECT s.n, {_sql_found('r.actor_id')} AS actor_id, {_sql_found('b.id')} AS body_id, "
            f"{_sql_found('p.id', 's.party')} AS party_id, s.constituency, "
            f"{_sql_date('s.start_date', required=True)} AS start_date, {_sql_date('s.end_date')} AS end_date "
            f"FROM {fields} s LEFT JOIN dump_refs r ON r.ref = s.actor_ref "
            "LEFT JOIN bodies b ON b.slug = s.body LEFT JOIN parties p ON p.slug = s.party"
        )
        if self.empty:  # every row, as it is
            rows = f"{resolved} ORDER BY s.n"
        else:  # a seat present already (or earlier in the file) is skipped
            rows = (
                f"SELECT * FROM (SELECT DISTINCT ON (actor_id, body_id, start_date) * FROM ({resolved}) y "
                "ORDER BY actor_id, body_id, start_date, n) d WHERE NOT EXISTS (SELECT 1 FROM memberships e "
                "WHERE e.actor_id = d.actor_id AND e.body_id = d.body_id AND e.start_date = d.start_date) "
                "ORDER BY n"
            )
        columns = ["actor_id", "body_id", "party_id", "constituency", "start_date", "end_date"]
        indexing = "memberships: indexing"
        with _indexed_after(
            self.session, ["memberships"] if self.empty else [], lambda: self._report(indexing, 0)
        ):
            inserted = _insert_select(self.session, "memberships", columns, rows, {"ws": WHITESPACE})
            self._report("memberships: inserting", inserted, inserted)
        self._report(indexing, 0, 0)
        self._skip(name, staged.rows - inserted)

    def _memberships_rows(self) -> None:
        self._memory_refs()
        name = "memberships.csv"
        table = Base.metadata.tables["memberships"]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                start = self._date(name, line, row.get("start_date"))
                if start is None:
                    raise Invalid(f"{name} line {line}: start_date is required", field=name)
                values.append(
                    {
                        "actor_id": self._ref(name, line, row),
                        "body_id": self._lookup(
                            self.bodies, "body", name, line, self._need(name, line, row, "body")
                        ),
                        "party_id": self._lookup(self.parties, "party", name, line, row.get("party")),
                        "constituency": row.get("constituency"),
                        "start_date": start,
                        "end_date": self._date(name, line, row.get("end_date")),
                    }
                )
            if not self.empty:
                keys = [(v["actor_id"], v["body_id"], v["start_date"]) for v in values]
                existing = set()
                for part in chunks(sorted(set(keys))):
                    stmt = select(Membership.actor_id, Membership.body_id, Membership.start_date).where(
                        tuple_(Membership.actor_id, Membership.body_id, Membership.start_date).in_(list(part))
                    )
                    existing |= {tuple(r) for r in self.session.execute(stmt)}
                kept = []
                for v, key in zip(values, keys, strict=True):
                    if key not in existing:  # present already, or earlier in the file
                        existing.add(key)
                        kept.append(v)
                self._skip(name, len(values) - len(kept))
                values = kept
            if values:
                self.conn.execute(insert(table), values)

    def load_aliases(self) -> None:
        """Other names of the actors loaded (few: row by row); their search text takes them in.
        Into a registry with data, an actor's alias it has already is skipped."""
        name = "aliases.csv"
        rows = self.source(name)
        if rows is None:
            return
        self._memory_refs()
        table = Base.metadata.tables["actor_aliases"]
        touched: set[int] = set()
        batch: list[dict[str, Any]] = []
        have = {
            (int(a), str(k))
            for a, k in self.session.execute(select(ActorAlias.actor_id, ActorAlias.match_name))
        }
        kinds: dict[int, str] = {}
        for line, row in rows:
            actor_id = self._ref(name, line, row)
            alias = self._need(name, line, row, "name")
            key = match_name(alias)
            if (actor_id, key) in have:
                self._skip(name)
                continue
            have.add((actor_id, key))
            if actor_id not in kinds:
                kinds[actor_id] = (
                    self.session.scalar(select(Actor.kind).where(Actor.id == actor_id)) or "person"
                )
            batch.append(
                {
                    "actor_id": actor_id,
                    "name": alias,
                    "match_name": key,
                    "variant_key": variant_key(alias, kinds[actor_id]),
                }
            )
            touched.add(actor_id)
            self.stats.rows[name] = self.stats.rows.get(name, 0) + 1
        if batch:
            self.conn.execute(insert(table), batch)
        for part in chunks(sorted(touched)):
            actors = self.session.scalars(
                select(Actor).where(Actor.id.in_(list(part))).options(selectinload(Actor.aliases))
            )
            for actor in actors:
                refresh_names(actor)
        self.session.flush()

    def load_letters(self) -> None:
        name = "letters.csv"
        for slug, ident in self.session.execute(select(Letter.slug, Letter.id)):
            self.letters[slug] = ident
        table = Base.metadata.tables["letters"]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                slug = self._need(name, line, row, "slug")
                if slug in self.letters:
                    self._skip(name)
                    continue
                self.letters[slug] = -1
                title = self._need(name, line, row, "title")
                values.append(
                    {
                        "slug": slug,
                        "title": title,
                        "summary": row.get("summary"),
                        "body": row.get("body"),
                        "language": row.get("language"),
                        "published_on": self._date(name, line, row.get("published_on")),
                        "status": row.get("status") or "published",
                        "claimed_signatory_count": self._int(name, line, row.get("claimed_signatory_count")),
                        "campaign_id": self._lookup(
                            self.campaigns, "campaign", name, line, row.get("campaign")
                        ),
                        "search_text": search_text(title, row.get("summary"), row.get("body")),
                    }
                )
            if values:
                self.conn.execute(insert(table), values)
                for part in chunks([v["slug"] for v in values]):
                    for slug, ident in self.session.execute(
                        select(Letter.slug, Letter.id).where(Letter.slug.in_(part))
                    ):
                        self.letters[slug] = ident
                        self.new_letters.add(ident)

    def load_letter_children(self, name: str) -> None:
        """claims, sources, events: only for letters this load created."""
        table = Base.metadata.tables[name.removesuffix(".csv")]
        for batch in self._batches(name):
            values = []
            for line, row in batch:
                letter_id = self._lookup(self.letters, "letter", name, line, row.get("letter"))
                campaign_id = (
                    self._lookup(self.campaigns, "campaign", name, line, row.get("campaign"))
                    if name == "events.csv"
                    else None
                )
                if letter_id is not None and letter_id not in self.new_letters:
                    self._skip(name)
                    continue
                if letter_id is None and (name != "events.csv" or campaign_id is None):
                    raise Invalid(f"{name} line {line}: letter is required", field=name)
                if letter_id is None and ("campaigns", campaign_id) not in self.created_ids:
                    self._skip(name)  # an event of a campaign that existed before this load
                    continue
                if name == "claims.csv":
                    value: dict[str, Any] = {
                        "letter_id": letter_id,
                        "count": self._int(name, line, row.get("count")),
                        "wording": row.get("wording"),
                        "url": row.get("url"),
                    }
                elif name == "sources.csv":
                    value = {
                        "letter_id": letter_id,
                        "label": row.get("label"),
                        "url": self._need(name, line, row, "url"),
                    }
                else:
                    day = self._date(name, line, self._need(name, line, row, "date"))
                    value = {
                        "letter_id": letter_id,
                        "campaign_id": campaign_id,
                        "date": day,
                        "kind": self._need(name, line, row, "kind"),
                        "note": row.get("note"),
                        "url": row.get("url"),
                    }
                values.append(value)
            if values:
                self.conn.execute(insert(table), values)

    def load_signatures(self) -> None:
        path = self.files.path("signatures.csv") if self.bulk and self.files else None
        if path is None:
            with self._indexes_at_the_end(["signatures"], "signatures"):
                self.load_pairs("signatures.csv")
        else:
            self._either(
                "signatures.csv",
                lambda: self._signatures_bulk(path),
                lambda: self.load_pairs("signatures.csv"),
            )

    def _signatures_bulk(self, path: Path) -> None:
        name = "signatures.csv"
        session = self.session
        self._table_refs()
        staged = _stage(session, path, name, "dump_signatures", self.progress)
        self.stats.rows[name] = staged.rows
        # Into an empty registry each row's id is taken as it is staged, in file order, so the
        # insert needs no sort of the joined rows by file order (a quarter of its time at scale 1).
        ids = (
            session.scalar(text("SELECT pg_get_serial_sequence('signatures', 'id')")) if self.empty else None
        )
        columns = ["id"] if ids else []
        columns += [
            "letter_id",
            "actor_id",
            "signed_on",
            "capacity",
            "affiliation",
            "position",
            "status",
            "withdrawn_on",
            "source",
        ]
        fields = staged.fields(
            [
                "letter",
                "actor_ref",
                "signed_on",
                "capacity",
                "affiliation",
                "position",
                "status",
                "withdrawn_on",
                "source",
            ],
            ids,
        )
        rows = (
            f"SELECT {'s.id, ' if ids else ''}{_sql_found('l.id')} AS letter_id, {_sql_found('r.actor_id')} AS actor_id, "
            f"{_sql_date('s.signed_on', required=True)} AS signed_on, s.capacity, s.affiliation, "
            f"{_sql_int('s.position')} AS position, coalesce(s.status, 'confirmed') AS status, "
            f"{_sql_date('s.withdrawn_on')} AS withdrawn_on, s.source "
            f"FROM {fields} s LEFT JOIN letters l ON l.slug = s.letter LEFT JOIN dump_refs r ON r.ref = s.actor_ref"
            + ("" if ids else " ORDER BY s.n")  # into a registry with data the earlier of a pair is kept
        )
        self._report("signatures: inserting", 0)
        if self.empty:  # a pair twice in the file fails the unique index: row by row skips it
            with _indexed_after(session, ["signatures"], lambda: self._report("signatures: indexing", 0)):
                inserted = _insert_select(session, "signatures", columns, rows, {"ws": WHITESPACE})
                self._report("signatures: inserting", inserted, inserted)
            self._report("signatures: indexing", 0, 0)
        else:  # a pair present already (or earlier in the file) is skipped
            conflict = "ON CONFLICT (letter_id, actor_id) DO NOTHING"
            inserted = _insert_select(session, "signatures", columns, rows, {"ws": WHITESPACE}, conflict)
            self._report("signatures: inserting", inserted, inserted)
        self._skip(name, staged.rows - inserted)

    def load_pairs(self, name: str) -> None:
        """signatures and recipients (letter × actor), row by row: an existing pair is skipped."""
        if self.files is not None and self.files.path(name) is None:
            return
        self._memory_refs()
        signatures = name == "signatures.csv"
        table = Base.metadata.tables[name.removesuffix(".csv")]
        seen: set[tuple[int, int, str]] = set()
        for batch in self._batches(name):
            values: list[dict[str, Any]] = []
            for line, row in batch:
                letter_id = self._lookup(
                    self.letters, "letter", name, line, self._need(name, line, row, "letter")
                )
                assert letter_id is not None
                actor_id = self._ref(name, line, row)
                if signatures:
                    signed_on = self._date(name, line, self._need(name, line, row, "signed_on"))
                    values.append(
                        {
                            "letter_id": letter_id,
                            "actor_id": actor_id,
                            "signed_on": signed_on,
                            "capacity": row.get("capacity"),
                            "affiliation": row.get("affiliation"),
                            "position": self._int(name, line, row.get("position")),
                            "status": row.get("status") or "confirmed",
                            "withdrawn_on": self._date(name, line, row.get("withdrawn_on")),
                            "source": row.get("source"),
                        }
                    )
                else:
                    values.append(
                        {
                            "letter_id": letter_id,
                            "actor_id": actor_id,
                            "role": row.get("role") or "to",
                            "capacity": row.get("capacity"),
                        }
                    )
            # A pair earlier in the file is skipped. Signatures: within the batch by a set, across
            # batches by the database (the earlier one is in), so that no set of every pair of
            # the file is held; recipients (a few) by a set of the file's.
            if signatures:
                seen = set()
            kept = []
            for v in values:
                key = (v["letter_id"], v["actor_id"], "" if signatures else v["role"])
                if key in seen:
                    self._skip(name)
                    continue
                seen.add(key)
                kept.append(v)
            if not kept:
                continue
            if self.empty and signatures:
                try:  # into an empty registry a pair is there only if it was earlier in the file
                    with self.session.begin_nested():
                        insert_rows(self.session, table.name, kept)
                    continue
                except (IntegrityError, psycopg.errors.IntegrityError):
                    pass
            if not self.empty or signatures:
                model = Signature if signatures else Recipient
                existing: set[tuple[int, int]] = set()
                pairs = sorted({(v["letter_id"], v["actor_id"]) for v in kept})
                for part in chunks(pairs):
                    stmt = select(model.letter_id, model.actor_id).where(
                        tuple_(model.letter_id, model.actor_id).in_(list(part))
                    )
                    existing |= {(a, b) for a, b in self.session.execute(stmt)}
                before = len(kept)
                kept = [v for v in kept if (v["letter_id"], v["actor_id"]) not in existing]
                self._skip(name, before - len(kept))
            if kept:
                insert_rows(self.session, table.name, kept)  # COPY on PostgreSQL

    def finish(self) -> None:
        """Fresh planner statistics for the tables just filled (the rollups' rebuild is planned
        with them), and the staging tables gone."""
        if not self.bulk:
            return
        self._report("analyzing", 0)
        self.session.execute(text("ANALYZE actors, identifiers, memberships, signatures"))
        self._report("analyzing", 0, 0)
        for table in ("dump_refs", "dump_memberships", "dump_signatures"):
            self.session.execute(text(f"DROP TABLE IF EXISTS {table}"))


def load_registry(
    session: Session,
    key_name: str,
    source: RowSource,
    *,
    progress: Progress | None = None,
    scorer: str = "token_sort_ratio",
    threshold: float = 92,
    bulk: bool = True,
) -> LoadStats:
    """Load a dump into the registry, in the caller's transaction; one change record (`load`).

    On PostgreSQL actors, memberships and signatures take the bulk path (see above; `bulk=False`
    loads every file row by row). Into an empty registry the bulk path drops and remakes
    indexes: the tables it loads, and the rollups, stay locked until the caller commits."""
    with _roomy_sqlite_cache(session):
        return _load(session, key_name, source, progress, scorer, threshold, bulk)


@contextmanager
def _roomy_sqlite_cache(session: Session) -> Iterator[None]:
    """On SQLite, a page cache of 64 MB for the load (with the default 2 MB every index insert
    and the rollups' grouping read pages from the OS; 256 MB saved 4 s more of 73 s at scale 1,
    for 285 MB more memory), the connection's own after."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    previous = int(session.execute(text("PRAGMA cache_size")).scalar_one())
    session.execute(text("PRAGMA cache_size = -65536"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size = {previous}"))


def _load(
    session: Session,
    key_name: str,
    source: RowSource,
    progress: Progress | None,
    scorer: str,
    threshold: float,
    bulk: bool,
) -> LoadStats:
    loader = _Loader(session, source, progress, scorer, threshold, bulk)
    empty = loader.empty
    loader.load_slugged("bodies.csv", Body, loader.bodies)
    loader.load_slugged("parties.csv", Party, loader.parties)
    loader.load_slugged("campaigns.csv", Campaign, loader.campaigns)
    loader.load_actors()
    loader.load_memberships()
    loader.load_aliases()
    loader.load_letters()
    for name in ("claims.csv", "sources.csv", "events.csv"):
        loader.load_letter_children(name)
    loader.load_signatures()
    loader.load_pairs("recipients.csv")
    loader.finish()
    # Signatures, and memberships of actors that had signed already, move the rollups of many
    # letters at once: recompute them all (this also bumps every letter's version). Into an
    # empty registry nobody else can be reading them: the rebuild remakes their indexes.
    if progress:
        progress("rollups", 0, None)
    count = rollups.rebuild(session, exclusive=empty and loader.bulk)
    if progress:
        progress("rollups", count, count)
    # The pair counts likewise, in one statement over all the signatures.
    if progress:
        progress("pairs", 0, None)
    count = pairs.rebuild(session)
    if progress:
        progress("pairs", count, count)
    stats = loader.stats
    record_change(
        session, key_name, "load", "registry", "dump", after={**stats.as_dict(), "into_empty_registry": empty}
    )
    session.flush()
    return stats


# --- Popolo -------------------------------------------------------------------------------------

BODY_CLASSIFICATIONS = ("legislature", "chamber")
PARTY_CLASSIFICATION = "party"


def export_popolo(session: Session, out: IO[str]) -> dict[str, int]:
    """Write a Popolo document: persons, organizations (organisation actors, bodies as
    `legislature`, parties as `party`), memberships. Streams, one item per line."""
    counts = {"persons": 0, "organizations": 0, "memberships": 0}
    out.write('{"persons": [')
    first = True
    for kind, key in (("person", "persons"), ("organisation", "organizations")):
        if kind == "organisation":
            out.write('\n], "organizations": [')
            first = True
        for ref, _kind, name, sort_name, country, org_type, identifiers in _actor_rows(session, kind):
            item: dict[str, Any] = {"id": f"actor-{ref}", "name": name}
            if sort_name:
                item["sort_name"] = sort_name
            if identifiers:
                item["identifiers"] = [
                    {"scheme": s, "identifier": v} for s, v in parse_identifiers(identifiers)
                ]
            if country:
                item["area_id"] = country
            if org_type:
                item["classification"] = org_type
            out.write(("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False))
            first = False
            counts[key] += 1
    for model, classification in ((Body, "legislature"), (Party, PARTY_CLASSIFICATION)):
        prefix = "body" if model is Body else "party"
        for slug, name, country in _stream(
            session, select(model.slug, model.name, model.country).order_by(model.id)
        ):
            item = {"id": f"{prefix}-{slug}", "name": name, "classification": classification}
            if country:
                item["area_id"] = country
            out.write(("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False))
            first = False
            counts["organizations"] += 1
    out.write('\n], "memberships": [')
    first = True
    for actor_id, body_slug, party_slug, constituency, start, end in _table_rows(session, "memberships.csv"):
        item = {"person_id": f"actor-{actor_id}", "organization_id": f"body-{body_slug}"}
        if party_slug:
            item["on_behalf_of_id"] = f"party-{party_slug}"
        if constituency:
            item["area"] = {"name": constituency}
        item["start_date"] = start.isoformat()
        if end:
            item["end_date"] = end.isoformat()
        out.write(("" if first else ",") + "\n" + json.dumps(item, ensure_ascii=False))
        first = False
        counts["memberships"] += 1
    out.write("\n]}\n")
    return counts


def popolo_source(document: dict[str, Any]) -> RowSource:
    """A dump `Source` over a Popolo document: persons and organizations become actors
    (organizations classified `legislature`/`chamber` become bodies, `party` parties)."""
    persons = document.get("persons") or []
    organizations = document.get("organizations") or []
    memberships = document.get("memberships") or []
    if not all(isinstance(x, list) for x in (persons, organizations, memberships)):
        raise Invalid("persons, organizations and memberships must be arrays", field="popolo")
    bodies = {
        o.get("id"): o
        for o in organizations
        if isinstance(o, dict) and o.get("classification") in BODY_CLASSIFICATIONS
    }
    parties = {
        o.get("id"): o
        for o in organizations
        if isinstance(o, dict) and o.get("classification") == PARTY_CLASSIFICATION
    }

    def slug_of(item: dict[str, Any], prefix: str) -> str:
        ident = str(item.get("id") or "")
        return ident[len(prefix) + 1 :] if ident.startswith(prefix + "-") else ident

    def area(item: dict[str, Any]) -> str | None:
        value = item.get("area_id")
        return value if isinstance(value, str) and len(value) == 2 else None

    def identifiers(item: dict[str, Any]) -> str | None:
        pairs = [
            (str(i.get("scheme")), str(i.get("identifier")))
            for i in item.get("identifiers") or []
            if isinstance(i, dict) and i.get("scheme") and i.get("identifier")
        ]
        return format_identifiers(pairs) or None

    def rows(name: str) -> Iterator[tuple[int, Row]] | None:
        if name in ("bodies.csv", "parties.csv"):
            table, prefix = (bodies, "body") if name == "bodies.csv" else (parties, "party")
            return (
                (n, {"slug": slug_of(o, prefix), "name": o.get("name"), "country": area(o)})
                for n, o in enumerate(table.values(), 1)
            )
        if name == "actors.csv":

            def actors() -> Iterator[tuple[int, Row]]:
                n = 0
                for kind, items in (("person", persons), ("organisation", organizations)):
                    for item in items:
                        if not isinstance(item, dict):
                            raise Invalid(f"{kind} items must be objects", field="popolo")
                        if item.get("id") in bodies or item.get("id") in parties:
                            continue
                        n += 1
                        classification = item.get("classification")
                        yield (
                            n,
                            {
                                "ref": str(item.get("id") or f"{kind}-{n}"),
                                "kind": kind,
                                "name": item.get("name"),
                                "sort_name": item.get("sort_name"),
                                "country": area(item),
                                "org_type": classification
                                if kind == "organisation"
                                and classification
                                in (
                                    "ngo",
                                    "union",
                                    "faith",
                                    "academic",
                                    "business",
                                    "government",
                                    "intergovernmental",
                                    "other",
                                )
                                else None,
                                "identifiers": identifiers(item),
                            },
                        )

            return actors()
        if name == "memberships.csv":

            def seats() -> Iterator[tuple[int, Row]]:
                for n, m in enumerate(memberships, 1):
                    if not isinstance(m, dict):
                        raise Invalid("membership items must be objects", field="popolo")
                    org = m.get("organization_id")
                    if org not in bodies:
                        continue  # a membership of a non-body organisation: not a seat
                    party = m.get("on_behalf_of_id")
                    area_value = m.get("area")
                    yield (
                        n,
                        {
                            "actor_ref": m.get("person_id"),
                            "body": slug_of(bodies[org], "body"),
                            "party": slug_of(parties[party], "party") if party in parties else None,
                            "constituency": area_value.get("name") if isinstance(area_value, dict) else None,
                            "start_date": m.get("start_date"),
                            "end_date": m.get("end_date"),
                        },
                    )

            return seats()
        return None

    return rows
