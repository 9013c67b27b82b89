"""Indexes and keys dropped before a bulk insert into an empty table and made again after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def drop_keys_and_indexes(session: Session, table: str) -> list[str]:
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
def indexed_after(session: Session, tables: list[str], report: Callable[[], None]) -> Iterator[None]:
    """Into an empty registry, as pg_restore does: the tables' secondary indexes and foreign
    keys are dropped for the block and made again after it (an index build sorts once; a foreign
    key added afterwards is checked by one join). `report` is called before they are made. A
    role that may not drop them loads with them in place."""
    if not tables:
        yield
        return
    try:
        with session.begin_nested():
            remake = [statement for table in tables for statement in drop_keys_and_indexes(session, table)]
    except DBAPIError:  # not the tables' owner: they keep their indexes
        remake = []
    yield
    report()
    for statement in remake:
        session.connection().exec_driver_sql(statement)
