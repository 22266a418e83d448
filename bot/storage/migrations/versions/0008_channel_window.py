"""channel window: outbox messages held until the citizen writes again, channel contacts
(last message time and messages sent since), rotating channel tokens

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("held_since", TZ, nullable=True))
    op.create_table(
        "channel_contacts",
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("conversation_id", sa.String(128), primary_key=True),
        sa.Column("last_inbound_at", TZ, nullable=True),
        sa.Column("sent_since_inbound", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("following", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "channel_tokens",
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=False, server_default=""),
        sa.Column("seed", sa.String(64), nullable=False, server_default=""),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_tokens")
    op.drop_table("channel_contacts")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("held_since")
