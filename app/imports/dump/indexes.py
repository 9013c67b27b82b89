"""Indexes and keys dropped before a bulk insert into an empty table and made again after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def drop_keys_and_indexes(session: Session, table: str, *, foreign_keys: bool = True) -> list[str]:
    """Drop the table's indexes, its foreign keys (unless `foreign_keys` is false) and, on
    PostgreSQL, its primary key when no foreign key refers to it (signatures, memberships: an
    index built once costs about a quarter of keeping it row by row); the statements that make
    them again (primary key and unique constraints first, foreign keys last). On SQLite only the
    indexes made by CREATE INDEX (a constraint's index is part of its table)."""
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
            "WHERE conrelid = CAST(:t AS regclass) AND (contype = 'u' OR contype = 'f' AND :fk "
            "OR contype = 'p' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint r WHERE r.confrelid = CAST(:t AS regclass))) "
            "ORDER BY contype DESC, conname"
        ),
        {"t": table, "fk": foreign_keys},
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
def indexed_after(
    session: Session, tables: list[str], report: Callable[[], None], *, joined: bool = False
) -> Iterator[None]:
    """Into an empty registry, as pg_restore does: the tables' secondary indexes and foreign
    keys are dropped for the block and made again after it (an index build sorts once; a foreign
    key added afterwards is checked by one join). `report` is called before they are made. A
    role that may not drop them loads with them in place.

    `joined`: every row the block writes took its references from a join with the rows they
    refer to (the bulk path's INSERT … SELECT, which raises where the join finds none), so the
    foreign keys hold by construction. On PostgreSQL, where the role may set
    `session_replication_role` (as `pg_restore --disable-triggers` does), the foreign keys then
    stay in place and their triggers do not fire in the block: no check row by row, and no
    scan of the whole table to check them again afterwards."""
    if not tables:
        yield
        return
    trusted = joined and _triggers_off(session)
    try:
        with session.begin_nested():
            remake = [
                statement
                for table in tables
                for statement in drop_keys_and_indexes(session, table, foreign_keys=not trusted)
            ]
    except DBAPIError:  # not the tables' owner: they keep their indexes
        remake = []
    yield
    if trusted:
        session.execute(text("SELECT set_config('session_replication_role', 'origin', true)"))
    report()
    for statement in remake:
        session.connection().exec_driver_sql(statement)


def _triggers_off(session: Session) -> bool:
    """`session_replication_role` set to `replica` for the rest of the transaction (until set
    back), if the role may and it was `origin`; whether it was. A failed block rolls back to a
    savepoint taken before this, which sets it back too."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    if session.scalar(text("SELECT current_setting('session_replication_role')")) != "origin":
        return False
    try:
        with session.begin_nested():
            session.execute(text("SELECT set_config('session_replication_role', 'replica', true)"))
    except DBAPIError:  # (a role that is not a superuser, nor granted SET on the parameter)
        return False
    return True
