"""The PostgreSQL bulk path of the dump load.

Actors, memberships and signatures go in with a few statements each instead of a statement per
batch: the files are COPYed (`FORMAT csv`) into temporary staging tables (as they are when the
server parses them exactly as Python's csv module does, else parsed here and sent row by row),
the dump's refs and slugs are mapped to ids by joins, and every row is checked in SQL, where a
bad value raises. SQL also trims the fields (`btrim` with every character `str.strip()` takes
off), but only for a file where some field may need it: trimming every field of every row in
SQL costs several times the cheap scan of the file's bytes (`inspect_file`) that rules it out.

Any failure rolls the file back to a savepoint and hands it to the row-by-row path (`load`),
which then reports the line of the bad row with the same message as always (or loads the few
forms only it reads, such as a short row). Into an empty registry the signatures' secondary
indexes are dropped before the insert and made again after it, as pg_restore does (`indexes`);
so are their foreign keys, unless the role may turn their triggers off for the insert (every
reference of a bulk insert comes from a join, so they hold without being checked again).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.dates import window
from app.errors import Invalid
from app.imports.dump.files import BATCH, COLUMNS, Progress, check_choice, check_country
from app.imports.dump.indexes import indexed_after
from app.imports.inserts import column_defaults
from app.names import variant_key
from app.text import fold, match_folded
from app.vocabulary import ORG_TYPES

if TYPE_CHECKING:
    from app.imports.dump.load import Loader

# What `str.strip()` takes off (every character `str.isspace()` holds for; none is above U+3000),
# so that SQL trims a field exactly as the row reader does.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
CHUNK = 1 << 20  # bytes read and sent at a time
BAD = "pg_temp.undersigned_dump_bad"  # raises: a row the bulk path does not take
WORK_MEM = "256MB"  # for the load's hash joins and sorts (SET LOCAL: this transaction only)
MAINTENANCE_WORK_MEM = "256MB"  # for its index builds


class Fallback(Exception):
    """The bulk path does not take this file as it is; the row-by-row path will."""


BULK_FAILURES: tuple[type[BaseException], ...] = (
    Fallback,
    Invalid,
    csv.Error,
    UnicodeDecodeError,
    DBAPIError,
    psycopg.Error,
)


@dataclass
class Staged:
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

    def fields(self, columns: list[str], ids: str | None = None, dates: tuple[str, ...] = ()) -> str:
        """A subquery of the staged rows: `n` (file order) and each column's field; with `ids`
        (a sequence), also `id`, the sequence's next value for each row in file order: the
        subquery is a plain scan of one temporary table (no index, never parallel), which reads
        the rows in the order COPY wrote them, and any plan that joins it reads it once, so the
        ids follow the file whatever order the join gives its rows in.

        Each column of `dates` also comes as `<column>_date`, its field cast to a date once here
        (a text that is no date raises: the row-by-row path reports it), for `_sql_date` to check:
        the planner does not share a cast written several times in one expression, and parsing
        dates was the costliest part of checking a signature."""
        values = ", ".join(f"{self.value(c)} AS {c}" for c in columns)
        values += "".join(f", CAST({self.value(c)} AS date) AS {c}_date" for c in dates)
        first = f"nextval('{ids}') AS id, " if ids else ""
        return f"(SELECT {first}ctid AS n, {values} FROM {self.table} OFFSET 0)"


def _sql_date(expr: str, *, required: bool = False) -> str:
    """`expr` (a field of `Staged.fields` named in its `dates`) as a date. Only YYYY-MM-DD (the
    ISO form PostgreSQL writes back the same, which `date.fromisoformat` reads as the same day);
    any other form is left to the row-by-row path. `expr_date` is the field cast once."""
    earliest, latest = window()  # (dates, so their ISO text is safe in the statement)
    day = f"{expr}_date"
    checked = (
        f"CASE WHEN CAST({day} AS text) = {expr} "
        f"AND {day} BETWEEN DATE '{earliest.isoformat()}' AND DATE '{latest.isoformat()}' "
        f"THEN {day} ELSE {BAD}(CAST(NULL AS date)) END"
    )
    return checked if required else f"CASE WHEN {expr} IS NULL THEN NULL ELSE {checked} END"


def _sql_int(expr: str) -> str:
    """`expr` as a whole number, written plainly (other forms go to the row-by-row path)."""
    return (
        f"CASE WHEN {expr} IS NULL THEN NULL WHEN CAST(CAST({expr} AS integer) AS text) = {expr} "
        f"THEN CAST({expr} AS integer) ELSE {BAD}(CAST(NULL AS integer)) END"
    )


def _sql_web_url(expr: str) -> str:
    """`expr` when plainly an http(s) URL with a host (`app.urls` decides the rest, row by row)."""
    plain = r"^https?://[A-Za-z0-9._~-]+(:[0-9]+)?([/?#][!-~]*)?$"
    return f"CASE WHEN {expr} IS NULL OR {expr} ~ '{plain}' THEN {expr} ELSE {BAD}(CAST(NULL AS text)) END"


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


def inspect_file(path: Path) -> tuple[list[str], int | None, bool]:
    """The file's header (trimmed, lower case); where its data starts when the server can parse
    the file itself (else None); and whether a field may have whitespace around it.

    The server parses a file as Python's csv module does when it holds no quote character (so
    no field spans lines or holds a comma, and both split at every comma and line end alike) and
    no `\\.` (COPY's end marker), and its header line ends in LF or CRLF. Raises Fallback for
    an empty file."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            first = next(csv.reader(f, strict=True), None)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise Fallback(f"header: {exc}") from exc
    if first is None:
        raise Fallback("no header")
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


def stage(session: Session, path: Path, name: str, table: str, progress: Progress | None) -> Staged:
    """COPY the data rows of `path` into a new temporary table (see `Staged`). A file the server
    parses as Python's csv module would goes as it is, in chunks, while the server parses it;
    any other is parsed here, with the row reader's rules (blank rows skipped, short rows padded,
    fields trimmed, a long row left to the row-by-row path to report)."""
    header, start, spaced = inspect_file(path)
    width = len(header)
    if width < 2:  # a blank line is a row of one empty field to COPY, and no row to the csv module
        raise Fallback("fewer than two columns")
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
                            raise Fallback(f"line {reader.line_num}: more fields than the header")
                        row += [""] * (width - len(row))
                    copy.write_row([v.strip() or None for v in row])
                    done += 1
                    if progress and done % BATCH == 0:
                        progress(name, done, None)
        rows = cursor.rowcount
    if progress:
        progress(name, rows, rows)
    return Staged(table, {h: i for i, h in enumerate(header)}, rows, spaced)


def insert_select(
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


# --- the bulk loads ------------------------------------------------------------------------------


def copy_refs(loader: Loader) -> None:
    """The bulk path joins `dump_refs`."""
    if loader.refs_in_table:
        return
    loader.session.execute(text("DROP TABLE IF EXISTS dump_refs"))
    loader.session.execute(
        text("CREATE TEMPORARY TABLE dump_refs (actor_id integer NOT NULL, ref text NOT NULL)")
    )
    with (
        _raw(loader.session).cursor() as cursor,
        cursor.copy("COPY dump_refs (actor_id, ref) FROM STDIN") as copy,
    ):
        for ref, ident in loader.refs.items():
            copy.write_row((ident, ref))
    loader.session.execute(text("ANALYZE dump_refs"))
    loader.refs_in_table = True


def load_actors(loader: Loader) -> None:
    """Into an empty registry: every row streamed (checked, names folded) into one COPY of
    the staging table `dump_refs`, whose default takes each actor's id from the actors'
    sequence in file order; then two INSERT … SELECT (actors, identifiers). The actors' search
    documents are computed in that INSERT by the function their trigger calls (migration 0024),
    which then does not run for each row; a new actor has no aliases yet. A row's identifier
    schemes and values go as two texts joined by ';' (which no part holds: the dump's field is
    split on it), split again in SQL: a fifth of the client's cost of sending them as arrays."""
    name = "actors.csv"
    rows = loader.source(name)
    if rows is None:
        return
    session = loader.session
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
    loader.refs_in_table = True  # (the savepoint undoes the flags with the table)
    loader.refs_in_memory = False
    columns = (
        "ref, kind, name, sort_name, country, org_type, match_name, variant_key, search_text, schemes, "
        "ident_values"
    )
    done = 0
    with _raw(session).cursor() as cursor, cursor.copy(f"COPY dump_refs ({columns}) FROM STDIN") as copy:
        for line, row in rows:
            ref, kind, actor_name, pairs = loader.actor_fields(name, line, row)
            sort_name = row.get("sort_name")
            # `match_name` and `search_text` from one folding of the name (and of the sort name,
            # unless it is the name): folding was the most of this loop's time.
            folded = fold(actor_name)
            if sort_name:
                folded_sort = folded if sort_name == actor_name else fold(sort_name)
                searched = f"{folded} {folded_sort}"
            else:
                searched = folded
            copy.write_row(
                (
                    ref,
                    kind,
                    actor_name,
                    sort_name,
                    check_country(name, line, row.get("country")),
                    check_choice(name, line, row, "org_type", ORG_TYPES),
                    match_folded(folded),
                    variant_key(actor_name, kind),
                    searched,
                    ";".join([s for s, _v in pairs]) or None,
                    ";".join([v for _s, v in pairs]) or None,
                )
            )
            done += 1
            if done % BATCH == 0:
                loader.report(name, done)
    loader.stats.rows[name] = done
    loader.report(name, done, done)
    session.execute(text("CREATE UNIQUE INDEX ON dump_refs (ref)"))  # a ref twice: row by row says where
    loader.report("actors: inserting", 0)
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
        "search_vector",
    ]
    with indexed_after(session, ["actors", "identifiers"], lambda: loader.report("actors: indexing", 0)):
        loader.stats.actors_created = insert_select(
            session,
            "actors",
            columns_out,
            "SELECT actor_id AS id, kind, name, sort_name, country, org_type, match_name, variant_key, "
            "search_text, actor_search_vector(name, sort_name, NULL) AS search_vector FROM dump_refs "
            "ORDER BY actor_id",
            {},
        )
        insert_select(
            session,
            "identifiers",
            ["actor_id", "scheme", "value"],
            "SELECT r.actor_id, u.scheme, u.value FROM dump_refs r "
            "CROSS JOIN LATERAL unnest(string_to_array(r.schemes, ';'), string_to_array(r.ident_values, ';')) "
            "WITH ORDINALITY AS u(scheme, value, i) "
            "WHERE r.schemes IS NOT NULL ORDER BY r.actor_id, u.i",
            {},
        )
        loader.report("actors: inserting", done, done)
    session.execute(text("ANALYZE dump_refs (actor_id, ref)"))  # what later joins read: 0.1 s, not 0.4
    loader.report("actors: indexing", 0, 0)


def load_memberships(loader: Loader, path: Path) -> None:
    name = "memberships.csv"
    copy_refs(loader)
    staged = stage(loader.session, path, name, "dump_memberships", loader.progress)
    loader.stats.rows[name] = staged.rows
    loader.report("memberships: inserting", 0)
    fields = staged.fields(COLUMNS["memberships.csv"], dates=("start_date", "end_date"))
    resolved = (
        f"SELECT s.n, {_sql_found('r.actor_id')} AS actor_id, {_sql_found('b.id')} AS body_id, "
        f"{_sql_found('p.id', 's.party')} AS party_id, s.constituency, "
        f"{_sql_date('s.start_date', required=True)} AS start_date, {_sql_date('s.end_date')} AS end_date "
        f"FROM {fields} s LEFT JOIN dump_refs r ON r.ref = s.actor_ref "
        "LEFT JOIN bodies b ON b.slug = s.body LEFT JOIN parties p ON p.slug = s.party"
    )
    if loader.empty:  # every row, as it is
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
    with indexed_after(
        loader.session,
        ["memberships"] if loader.empty else [],
        lambda: loader.report(indexing, 0),
        joined=True,
    ):
        inserted = insert_select(loader.session, "memberships", columns, rows, {"ws": WHITESPACE})
        loader.report("memberships: inserting", inserted, inserted)
    loader.report(indexing, 0, 0)
    loader.skip(name, staged.rows - inserted)


def load_signatures(loader: Loader, path: Path) -> None:
    name = "signatures.csv"
    session = loader.session
    copy_refs(loader)
    staged = stage(session, path, name, "dump_signatures", loader.progress)
    loader.stats.rows[name] = staged.rows
    # Into an empty registry each row's id is taken as it is staged, in file order, so the
    # insert needs no sort of the joined rows by file order (a quarter of its time at scale 1).
    ids = session.scalar(text("SELECT pg_get_serial_sequence('signatures', 'id')")) if loader.empty else None
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
    fields = staged.fields(COLUMNS["signatures.csv"], ids, dates=("signed_on", "withdrawn_on"))
    rows = (
        f"SELECT {'s.id, ' if ids else ''}{_sql_found('l.id')} AS letter_id, {_sql_found('r.actor_id')} AS actor_id, "
        f"{_sql_date('s.signed_on', required=True)} AS signed_on, s.capacity, s.affiliation, "
        f"{_sql_int('s.position')} AS position, coalesce(s.status, 'confirmed') AS status, "
        f"{_sql_date('s.withdrawn_on')} AS withdrawn_on, {_sql_web_url('s.source')} AS source "
        f"FROM {fields} s LEFT JOIN letters l ON l.slug = s.letter LEFT JOIN dump_refs r ON r.ref = s.actor_ref"
        + ("" if ids else " ORDER BY s.n")  # into a registry with data the earlier of a pair is kept
    )
    loader.report("signatures: inserting", 0)
    if loader.empty:  # a pair twice in the file fails the unique index: row by row skips it
        with indexed_after(
            session, ["signatures"], lambda: loader.report("signatures: indexing", 0), joined=True
        ):
            inserted = insert_select(session, "signatures", columns, rows, {"ws": WHITESPACE})
            loader.report("signatures: inserting", inserted, inserted)
        loader.report("signatures: indexing", 0, 0)
    else:  # a pair present already (or earlier in the file) is skipped
        conflict = "ON CONFLICT (letter_id, actor_id) DO NOTHING"
        inserted = insert_select(session, "signatures", columns, rows, {"ws": WHITESPACE}, conflict)
        loader.report("signatures: inserting", inserted, inserted)
    loader.skip(name, staged.rows - inserted)


def prepare(session: Session) -> None:
    """Memory for the load's joins, sorts and index builds (this transaction only), and the
    function that raises on a row the bulk path does not take."""
    session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    session.execute(text(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'"))
    session.execute(
        text(
            f"CREATE OR REPLACE FUNCTION {BAD}(anyelement) RETURNS anyelement LANGUAGE plpgsql "
            "AS $$BEGIN RAISE EXCEPTION 'a dump row the bulk load does not take' "
            "USING ERRCODE = 'data_exception'; END$$"
        )
    )


def finish(loader: Loader) -> None:
    """Fresh planner statistics for the tables just filled (the rollups' rebuild is planned
    with them), and the staging tables gone."""
    loader.report("analyzing", 0)
    loader.session.execute(text("ANALYZE actors, identifiers, memberships, signatures"))
    loader.report("analyzing", 0, 0)
    for table in ("dump_refs", "dump_memberships", "dump_signatures"):
        loader.session.execute(text(f"DROP TABLE IF EXISTS {table}"))
