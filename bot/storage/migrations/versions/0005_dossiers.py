"""dossiers: local dossiers and their history, upstream cache, subscriptions, lookup log, outbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dossiers",
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("procedure_code", sa.String(16), nullable=True),
        sa.Column("procedure_name", sa.Text(), nullable=True),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("due_at", TZ, nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("phone_last4", sa.String(4), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_dossiers_unit_received_at", "dossiers", ["unit", "received_at"])
    op.create_table(
        "dossier_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("recorded_at", TZ, nullable=False),
    )
    op.create_index("ix_dossier_events_dossier", "dossier_events", ["unit", "code", "id"])
    op.create_table(
        "dossier_cache",
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
    )
    op.create_table(
        "dossier_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("notified", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
        sa.UniqueConstraint("channel", "conversation_id", "unit", "code"),
    )
    op.create_index(
        "ix_dossier_subscriptions_active", "dossier_subscriptions", ["ended_at", "unit", "code"]
    )
    op.create_table(
        "dossier_lookups",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("who", sa.String(16), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
    )
    op.create_index("ix_dossier_lookups_who_at", "dossier_lookups", ["who", "at"])
    op.create_index("ix_dossier_lookups_at", "dossier_lookups", ["at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("replies", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("sent_at", TZ, nullable=True),
        sa.Column("failed_at", TZ, nullable=True),
    )
    op.create_index("ix_outbox_pending", "outbox", ["sent_at", "next_attempt_at"])
    op.create_index("ix_outbox_chat", "outbox", ["channel", "conversation_id", "sent_at"])


def downgrade() -> None:
    for index, table in (
        ("ix_outbox_chat", "outbox"),
        ("ix_outbox_pending", "outbox"),
        ("ix_dossier_lookups_at", "dossier_lookups"),
        ("ix_dossier_lookups_who_at", "dossier_lookups"),
        ("ix_dossier_subscriptions_active", "dossier_subscriptions"),
        ("ix_dossier_events_dossier", "dossier_events"),
        ("ix_dossiers_unit_received_at", "dossiers"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "outbox",
        "dossier_lookups",
        "dossier_subscriptions",
        "dossier_cache",
        "dossier_events",
        "dossiers",
    ):
        op.drop_table(table)
