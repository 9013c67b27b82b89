"""Letter rollups: signatures made and withdrawn per letter, day and breakdown combination,
filled from the signatures already there (app/rollups.py keeps them in step from then on).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same rule as app/rollups.py, frozen here as the schema stood at this revision.
BACKFILL = """
WITH base AS (
    SELECT s.letter_id, s.signed_on, s.withdrawn_on, a.kind,
           COALESCE(a.country, '') AS country, COALESCE(a.org_type, '') AS org_type,
           COALESCE(m.body_id, 0) AS body_id, COALESCE(m.party_id, 0) AS party_id
    FROM signatures s
    JOIN actors a ON a.id = s.actor_id
    LEFT JOIN memberships m ON m.id = (
        SELECT m2.id FROM memberships m2
        WHERE m2.actor_id = s.actor_id AND m2.start_date <= s.signed_on
          AND (m2.end_date IS NULL OR m2.end_date >= s.signed_on)
        ORDER BY m2.start_date DESC, m2.id ASC LIMIT 1)
), moves AS (
    SELECT letter_id, signed_on AS day, kind, country, org_type, body_id, party_id, 1 AS new, 0 AS withdrawn
    FROM base
    UNION ALL
    SELECT letter_id, withdrawn_on, kind, country, org_type, body_id, party_id, 0, 1
    FROM base WHERE withdrawn_on IS NOT NULL
)
INSERT INTO letter_rollups (letter_id, day, kind, country, org_type, body_id, party_id, new, withdrawn)
SELECT letter_id, day, kind, country, org_type, body_id, party_id, SUM(new), SUM(withdrawn)
FROM moves GROUP BY letter_id, day, kind, country, org_type, body_id, party_id
"""


def upgrade() -> None:
    op.create_table(
        "letter_rollups",
        sa.Column("letter_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("org_type", sa.String(length=30), nullable=False),
        sa.Column("body_id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("withdrawn", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["letter_id"],
            ["letters.id"],
            name=op.f("fk_letter_rollups_letter_id_letters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "letter_id",
            "day",
            "kind",
            "country",
            "org_type",
            "body_id",
            "party_id",
            name=op.f("pk_letter_rollups"),
        ),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("letter_rollups")
