"""The retention pass's gate to the audit log (see services/retention.py).

``audit_log`` refuses UPDATE, DELETE and TRUNCATE by triggers (migrations 0008 and 0014). The
DELETE trigger lets a row go only while this table has a row: the retention pass inserts one
inside its own transaction, deletes the entries past the audit rule, and removes it again
before it commits. No other transaction ever sees the row (it is never committed), so for
every other path (the API, a SQL shell) the log stays append-only. One fixed id: two replicas'
passes take turns on its unique key instead of deleting together."""

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from tether_controlplane.tables import Base

GATE_ID = 1


class AuditRetentionGateRow(Base):
    __tablename__ = "audit_retention_gate"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
