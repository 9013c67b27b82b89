"""Bulk writes shared by the import and the dump load: `COPY … FROM STDIN` on PostgreSQL, one
`executemany` of the driver on SQLite, and the ids of new actors taken before their rows go in.

Python-side column defaults (created_at, …) are not applied by COPY or a hand-written INSERT:
`column_defaults` is the one place that fills them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.actors.identity import first_free_actor_id
from app.models import Base


def column_defaults(table_name: str, given: list[str]) -> dict[str, Any]:
    """The Python-side defaults (created_at, …) of the table's columns not in `given`, evaluated
    once: the same value for every row of one bulk write."""
    out: dict[str, Any] = {}
    for column in Base.metadata.tables[table_name].columns:
        default = column.default
        if column.name in given or default is None:
            continue
        if getattr(default, "is_callable", False):
            out[column.name] = default.arg(None)  # type: ignore[attr-defined]
        elif getattr(default, "is_scalar", False):
            out[column.name] = default.arg  # type: ignore[attr-defined]
    return out


def insert_rows(session: Session, table_name: str, rows: list[dict[str, Any]]) -> None:
    """Bulk insert: `COPY … FROM STDIN` on PostgreSQL, one `executemany` of the driver
    elsewhere, the values converted by the columns' own types as SQLAlchemy would (dates,
    timestamps). Python-side column defaults (created_at, …) are filled in once for all the
    rows. Every row has the keys of the first."""
    if not rows:
        return
    given = list(rows[0])
    pick = itemgetter(*given)
    tuples = [pick(row) for row in rows] if len(given) > 1 else [(pick(row),) for row in rows]
    BulkInsert(session.get_bind().dialect, table_name, given, tuples).run(session.connection())


class BulkInsert:
    """One bulk insert into a table: the rows made ready here (values converted, or the COPY
    text formatted) and sent by `run`. `columns` are the given ones;
    Python-side defaults of the others (created_at, …) are added, the same for every row.

    `computed` (PostgreSQL only): more columns, each an SQL expression over the given ones
    (`{"search_vector": "actor_search_vector(name, sort_name, NULL)"}`). The rows then go by
    COPY into a temporary table and from there into the table by one `INSERT … SELECT` that
    computes those columns set-based: a BEFORE INSERT trigger that fills such a column only
    when it is empty (migration 0024) then skips every row, where it would otherwise run its
    function once per row."""

    def __init__(
        self,
        dialect: Dialect,
        table_name: str,
        columns: list[str],
        rows: list[tuple[Any, ...]],
        *,
        computed: Mapping[str, str] | None = None,
    ) -> None:
        table = Base.metadata.tables[table_name]
        defaults = column_defaults(table_name, columns)
        names = columns + list(defaults)
        tail = tuple(defaults.values())
        self.copy: str | None = None
        self.rows: list[tuple[Any, ...]] = []
        self.postgres = dialect.name == "postgresql"
        self.staged: tuple[str, ...] = ()
        if self.postgres:
            self.sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
            if computed:
                listed = ", ".join(names)
                stage = f"import_staged_{table.name}"
                self.sql = f"COPY {stage} ({listed}) FROM STDIN"
                self.staged = (
                    # (the given columns' types, none of the table's constraints, defaults or indexes)
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "
                    f"SELECT {listed} FROM {table.name} WITH NO DATA",
                    f"INSERT INTO {table.name} ({listed}, {', '.join(computed)}) "
                    f"SELECT {listed}, {', '.join(computed.values())} FROM {stage}",
                    f"TRUNCATE {stage}",
                )
            self.rows = [row + tail for row in rows]
            self.copy = copy_text(self.rows)
            return
        quote = dialect.identifier_preparer.quote
        self.sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
        tail = tuple(
            value if process is None else process(value)
            for value, process in zip(tail, processors[len(columns) :], strict=True)
        )
        convert = [
            (i, process) for i, process in enumerate(processors[: len(columns)]) if process is not None
        ]
        if convert and rows:
            # A column at a time, each distinct value once (a few days, many rows).
            values = list(zip(*rows, strict=True))
            for i, process in convert:
                cells = values[i]
                try:
                    converted = {v: process(v) for v in set(cells)}
                except TypeError:  # unhashable values (JSON): one by one
                    values[i] = tuple(map(process, cells))
                else:
                    values[i] = tuple(map(converted.__getitem__, cells))
            rows = list(zip(*values, strict=True))
        self.rows = [row + tail for row in rows]

    def run(self, conn: Connection) -> None:
        if not self.rows:
            return
        if not self.postgres:
            conn.exec_driver_sql(self.sql, self.rows)
            return
        raw = conn.connection.driver_connection
        assert raw is not None
        try:
            with raw.cursor() as cursor:
                if self.staged:
                    cursor.execute(self.staged[0])
                with cursor.copy(self.sql) as copy:
                    if self.copy is not None:
                        copy.write(self.copy)
                    else:
                        for values in self.rows:
                            copy.write_row(values)
                for statement in self.staged[1:]:
                    cursor.execute(statement)
        except conn.dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy would raise it (IntegrityError, DataError, …), for the app's handlers.
            raise DBAPIError.instance(self.sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = ("\\", "\t", "\n", "\r")


def copy_text(rows: list[tuple[Any, ...]]) -> str | None:
    """`rows` in the text format of COPY, made a column at a time by str's own C loops (psycopg
    dumps value by value: 0.85 s for 100,000 actors and their signatures, this 0.1 s); None when
    a column holds something else than str, int, date, datetime or None (then psycopg formats).
    Backslash, tab, newline and carriage return are escaped; None is `\\N`."""
    if not rows:
        return ""
    columns: list[list[str]] = []
    for column in zip(*rows, strict=True):
        kinds = set(map(type, column))
        nulls = type(None) in kinds
        kinds.discard(type(None))
        if not kinds:
            columns.append(["\\N"] * len(column))
            continue
        if len(kinds) > 1:
            return None
        (kind,) = kinds
        present = [v for v in column if v is not None] if nulls else column
        if kind is str:
            if any(c in "".join(present) for c in _COPY_SPECIAL):
                present = [v.translate(_COPY_ESCAPES) for v in present]
            text = list(present)
        elif kind is int:
            text = list(map(str, present))
        elif kind is date or kind is datetime:  # (a few distinct days and timestamps)
            formatted = {v: v.isoformat() for v in set(present)}
            text = list(map(formatted.__getitem__, present))
        else:
            return None
        if nulls:
            filled = iter(text)
            text = ["\\N" if v is None else next(filled) for v in column]
        columns.append(text)
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def insert_actors(session: Session, values: list[dict[str, Any]]) -> list[int]:
    """Insert actors in bulk; their new ids, in order.

    The ids are taken first (`reserve_actor_ids`), so that the rows can go in without
    RETURNING: on PostgreSQL from the table's sequence (`nextval` over `generate_series` in one
    statement, then COPY); on SQLite above every id and merged id (`first_free_actor_id`), safe because a SQLite write transaction
    holds the database's only write lock from its first statement (`BEGIN IMMEDIATE`)."""
    if not values:
        return []
    ids = reserve_actor_ids(session, len(values))
    insert_rows(session, "actors", [{"id": i, **v} for v, i in zip(values, ids, strict=True)])
    return ids


def reserve_actor_ids(session: Session, count: int) -> list[int]:
    """`count` ids for new actors (see `insert_actors`); an id taken and not used is a gap."""
    if count <= 0:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # The sequence is looked up once: `nextval(pg_get_serial_sequence(…))` looks it up per
        # row (0.28 s for 100,000 ids instead of 0.04 s); the ids come back as one array.
        sequence = conn.scalar(text("SELECT CAST(pg_get_serial_sequence('actors', 'id') AS regclass)::oid"))
        return list(
            conn.scalar(
                text("SELECT array_agg(nextval(CAST(:seq AS oid))) FROM generate_series(1, :n)"),
                {"seq": sequence, "n": count},
            )
        )
    start = first_free_actor_id(session)
    return list(range(start, start + count))
