"""The changes feed and webhooks: the outbox of events (one per change record, written in the
change's transaction), webhooks, their delivery attempts, and the milestones letters passed.
The change records kept so far become the feed's first events, and letters are marked past
the default milestones they have passed already, so nobody is told of an old milestone as news.

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (the rule of app.webhooks.events, as it stood when this migration was written)
PAST = {
    "create": "created",
    "update": "updated",
    "withdraw": "withdrawn",
    "delete": "deleted",
    "import": "imported",
    "load": "loaded",
    "merge": "merged",
    "move": "moved",
    "retract": "retracted",
}
PARTS = ("signature", "recipient", "event", "claim", "source")
MILESTONES = (10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000)


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("entity", sa.String(length=50), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("letter", sa.String(length=200), nullable=True),
        sa.Column("change_record_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("webhook_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    op.create_index(op.f("ix_outbox_events_txid_id"), "outbox_events", ["txid", "id"])
    op.create_index(op.f("ix_outbox_events_letter_txid_id"), "outbox_events", ["letter", "txid", "id"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("letter", sa.String(length=200), nullable=True),
        sa.Column("milestones", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        sa.Column("cursor_txid", sa.BigInteger(), nullable=False),
        sa.Column("cursor_id", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retrying_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(op.f("ix_webhook_deliveries_webhook_id_id"), "webhook_deliveries", ["webhook_id", "id"])
    op.create_table(
        "letter_milestones",
        sa.Column("letter_id", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["letter_id"],
            ["letters.id"],
            name=op.f("fk_letter_milestones_letter_id_letters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("letter_id", "threshold", name=op.f("pk_letter_milestones")),
    )
    _backfill()


def _backfill() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    past = " ".join(f"WHEN '{action}' THEN '{done}'" for action, done in PAST.items())
    kind = (
        "CASE WHEN entity = 'letter' AND action = 'import' THEN 'signatures.imported'"
        " WHEN entity = 'registry' AND action = 'load' THEN 'registry.loaded'"
        f" ELSE entity || '.' || CASE action {past} ELSE action || 'ed' END END"
    )
    head = (
        "split_part(entity_key, '/', 1)"
        if postgresql
        else "substr(entity_key, 1, instr(entity_key, '/') - 1)"
    )
    parts = ", ".join(f"'{p}'" for p in PARTS)
    letter = (
        f"CASE WHEN entity = 'letter' THEN entity_key"
        f" WHEN entity IN ({parts}) AND entity_key LIKE '%/%' THEN {head} END"
    )
    op.execute(
        "INSERT INTO outbox_events (txid, at, type, entity, action, key, letter, change_record_id)"
        f" SELECT 0, at, {kind}, entity, action, entity_key, {letter}, id FROM change_records"
        " WHERE entity NOT IN ('webhook', 'api_key') ORDER BY id"
    )
    ladder = " UNION ALL ".join(f"SELECT {t} AS threshold" for t in MILESTONES)
    now = "now()" if postgresql else "CURRENT_TIMESTAMP"
    op.execute(
        "INSERT INTO letter_milestones (letter_id, threshold, reached_at)"
        f" SELECT totals.letter_id, ladder.threshold, {now}"
        " FROM (SELECT letter_id, sum(new) - sum(withdrawn) AS n FROM letter_rollups"
        " WHERE day <= CURRENT_DATE GROUP BY letter_id) AS totals"
        f" JOIN ({ladder}) AS ladder ON ladder.threshold <= totals.n"
    )


def downgrade() -> None:
    op.drop_table("letter_milestones")
    op.drop_index(op.f("ix_webhook_deliveries_webhook_id_id"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_index(op.f("ix_outbox_events_letter_txid_id"), table_name="outbox_events")
    op.drop_index(op.f("ix_outbox_events_txid_id"), table_name="outbox_events")
    op.drop_table("outbox_events")
