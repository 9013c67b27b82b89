"""Actor identity: aliases, redirects of merged actors, pairs decided distinct, and each
actor's variant key (where spellings and short forms of a name meet). The keys of existing
actors are computed here, and the match and search forms of names written in mixed scripts
again (`app.text.fold` now reads Latin look-alikes as Latin).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base
from app.names import variant_key
from app.text import match_name, search_text

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "actor_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("match_name", sa.String(length=1000), nullable=False),
        sa.Column("variant_key", sa.String(length=1000), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_actor_aliases_actor_id_actors"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actor_aliases")),
        sa.UniqueConstraint("actor_id", "match_name", name=op.f("uq_actor_aliases_actor_id_match_name")),
    )
    with op.batch_alter_table("actor_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_actor_aliases_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_actor_aliases_match_name"), ["match_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_actor_aliases_variant_key"), ["variant_key"], unique=False)

    op.create_table(
        "actor_redirects",
        sa.Column("old_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("merged_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_actor_redirects_actor_id_actors"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("old_id", name=op.f("pk_actor_redirects")),
    )
    with op.batch_alter_table("actor_redirects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_actor_redirects_actor_id"), ["actor_id"], unique=False)

    op.create_table(
        "distinct_actors",
        sa.Column("actor_a", sa.Integer(), nullable=False),
        sa.Column("actor_b", sa.Integer(), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("actor_a < actor_b", name=op.f("ck_distinct_actors_ordered")),
        sa.ForeignKeyConstraint(
            ["actor_a"], ["actors.id"], name=op.f("fk_distinct_actors_actor_a_actors"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["actor_b"], ["actors.id"], name=op.f("fk_distinct_actors_actor_b_actors"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("actor_a", "actor_b", name=op.f("pk_distinct_actors")),
    )
    with op.batch_alter_table("distinct_actors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_distinct_actors_actor_b"), ["actor_b"], unique=False)

    with op.batch_alter_table("actors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("variant_key", sa.String(length=1000), server_default="", nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_actors_variant_key"), ["variant_key"], unique=False)
    _backfill()


def _backfill() -> None:
    """Every actor's variant key; match and search forms again for names that are not ASCII."""
    conn = op.get_bind()
    actors = sa.table(
        "actors",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("name", sa.String),
        sa.column("sort_name", sa.String),
        sa.column("variant_key", sa.String),
        sa.column("match_name", sa.String),
        sa.column("search_text", sa.String),
    )
    update = (
        actors.update()
        .where(actors.c.id == sa.bindparam("key"))
        .values(
            variant_key=sa.bindparam("variant"),
            match_name=sa.bindparam("match"),
            search_text=sa.bindparam("search"),
        )
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(actors.c.id, actors.c.kind, actors.c.name, actors.c.sort_name)
            .where(actors.c.id > last)
            .order_by(actors.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(
            update,
            [
                {
                    "key": row.id,
                    "variant": variant_key(row.name, row.kind),
                    "match": match_name(row.name),
                    "search": search_text(row.name, row.sort_name),
                }
                for row in rows
            ],
        )
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("actors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actors_variant_key"))
        batch_op.drop_column("variant_key")

    with op.batch_alter_table("distinct_actors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_distinct_actors_actor_b"))

    op.drop_table("distinct_actors")
    with op.batch_alter_table("actor_redirects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actor_redirects_actor_id"))

    op.drop_table("actor_redirects")
    with op.batch_alter_table("actor_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actor_aliases_variant_key"))
        batch_op.drop_index(batch_op.f("ix_actor_aliases_match_name"))
        batch_op.drop_index(batch_op.f("ix_actor_aliases_actor_id"))

    op.drop_table("actor_aliases")
