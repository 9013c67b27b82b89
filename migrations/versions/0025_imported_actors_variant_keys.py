"""Variant keys for the actors CSV imports made without one.

Until this revision an import wrote its new actors without `variant_key` (the column's default,
an empty string), so later imports and the review queue never offered them as possible matches
by a short form or spelling. Every actor whose key is empty gets the key of its name; the rest
are left alone. Nothing to undo: the keys are what the model says they should have been.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.names import variant_key

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000


def upgrade() -> None:
    conn = op.get_bind()
    actors = sa.table(
        "actors",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("name", sa.String),
        sa.column("variant_key", sa.String),
    )
    update = (
        actors.update().where(actors.c.id == sa.bindparam("key")).values(variant_key=sa.bindparam("variant"))
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(actors.c.id, actors.c.kind, actors.c.name)
            .where(actors.c.id > last, actors.c.variant_key == "")
            .order_by(actors.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(update, [{"key": row.id, "variant": variant_key(row.name, row.kind)} for row in rows])
        last = rows[-1].id


def downgrade() -> None:
    pass  # (the keys were wrong before; they stay right)
