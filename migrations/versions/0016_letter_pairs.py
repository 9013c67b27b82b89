"""Letter pairs: how many actors signed both letters of a pair, and on the diagonal how many
signed each letter (signatures that still count),
filled from the signatures already there (app/pairs.py keeps them in step from then on).

Revision ID: 0016
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same rule as app/pairs.py, frozen here as the schema stood at this revision.
BACKFILL = """
INSERT INTO letter_pairs (letter_a, letter_b, common)
SELECT s.letter_id, t.letter_id, COUNT(*)
FROM signatures s
JOIN signatures t ON t.actor_id = s.actor_id AND t.letter_id >= s.letter_id
WHERE s.withdrawn_on IS NULL AND t.withdrawn_on IS NULL
GROUP BY s.letter_id, t.letter_id
"""


def upgrade() -> None:
    op.create_table(
        "letter_pairs",
        sa.Column("letter_a", sa.Integer(), nullable=False),
        sa.Column("letter_b", sa.Integer(), nullable=False),
        sa.Column("common", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("letter_a", "letter_b", name=op.f("pk_letter_pairs")),
    )
    op.create_index(op.f("ix_letter_pairs_letter_b"), "letter_pairs", ["letter_b"], unique=False)
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_index(op.f("ix_letter_pairs_letter_b"), table_name="letter_pairs")
    op.drop_table("letter_pairs")
