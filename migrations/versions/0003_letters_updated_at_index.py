"""An index on letters.updated_at: the newest letter write is part of the letter list's HTTP
validator (app/http/validators.py), read on every list request, so it must be one index lookup.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_letters_updated_at"), "letters", ["updated_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_letters_updated_at"), table_name="letters")
