"""index fields.page_id

Results queries join fields to pages on page_id; without this index
PostgreSQL scanned every field for a batch's first rows (bench/database.py,
1,000,000 fields: first 100 rows of an unfiltered query 1,990 ms -> 127 ms).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fields") as batch_op:
        batch_op.create_index("ix_fields_page", ["page_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fields") as batch_op:
        batch_op.drop_index("ix_fields_page")
