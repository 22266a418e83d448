"""search_log: procedure searches (masked text, no user id) for staff statistics

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False, server_default=""),
        sa.Column("query", sa.String(200), nullable=False),
        sa.Column("top_code", sa.String(16), nullable=True),
        sa.Column("results", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_search_log_created_at", "search_log", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_search_log_created_at", table_name="search_log")
    op.drop_table("search_log")
