"""The registry's version: one row, bumped by the writes that change what every letter shows
without being writes to a letter (seats, body and party names). A letter's HTTP validator is
its own version and this one, no longer every write to the database (app/http/validators.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    registry = op.create_table(
        "registry_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_version")),
    )
    op.bulk_insert(registry, [{"id": 1, "version": 1}])


def downgrade() -> None:
    op.drop_table("registry_version")
