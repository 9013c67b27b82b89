"""The closed vocabularies held by the database too: CHECK constraints on actors' kind and
org type, letters' status, signatures' status, recipients' role and events' kind, so a row
that no API path would write (a hand-made SQL insert, an old load) cannot be stored either.

A database that already holds a value outside a vocabulary is not changed: the upgrade stops
before any constraint is added and names the rows (table, id, column, value) to correct first.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (the vocabularies of app.vocabulary, as they stood when this migration was written)
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "actors": {
        "kind": ("person", "organisation"),
        "org_type": (
            "ngo",
            "union",
            "faith",
            "academic",
            "business",
            "government",
            "intergovernmental",
            "other",
        ),
    },
    "letters": {"status": ("draft", "open", "published", "delivered", "closed", "withdrawn")},
    "signatures": {"status": ("confirmed", "unverified")},
    "recipients": {"role": ("to", "cc")},
    "events": {"kind": ("published", "delivered", "response", "debated", "other")},
}
SHOWN = 20  # bad rows named in the message, per column


def _one_of(column: str, choices: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(c) for c in choices)})"


def _refuse_bad_rows() -> None:
    conn = op.get_bind()
    found: list[str] = []
    for table, columns in CHECKS.items():
        for column, choices in columns.items():
            bad = f"{column} IS NOT NULL AND NOT ({_one_of(column, choices)})"
            total = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {bad}")).scalar_one()
            if not total:
                continue
            rows = conn.execute(
                sa.text(f"SELECT id, {column} FROM {table} WHERE {bad} ORDER BY id LIMIT {SHOWN}")
            )
            listed = ", ".join(f"id {row[0]}: {row[1]!r}" for row in rows)
            more = f" and {total - SHOWN} more" if total > SHOWN else ""
            found.append(
                f"{table}.{column} must be one of {', '.join(choices)}; {total} rows are not ({listed}{more})"
            )
    if found:
        raise RuntimeError(
            "0022_check_constraints: correct these rows, then upgrade again (nothing was changed):\n- "
            + "\n- ".join(found)
        )


def upgrade() -> None:
    _refuse_bad_rows()
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, choices in columns.items():
                batch_op.create_check_constraint(
                    batch_op.f(f"ck_{table}_{column}"), sa.text(_one_of(column, choices))
                )


def downgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_constraint(batch_op.f(f"ck_{table}_{column}"), type_="check")
