"""Every table of the service, imported in one place for the metadata and the migrations."""

from agent.alerts.models import Alert, WebhookDelivery
from agent.approvals.models import Approval
from agent.causes.models import Cause, CauseLink
from agent.changes.models import Deployment
from agent.failovers.models import Failover
from agent.incidents.models import Incident
from agent.monitors.models import MonitorWatch
from agent.outbox.models import OutboxChannel, OutboxMessage
from audit.models import AuditCheckpoint, AuditEvent, AuditHead

__all__ = [
    "Alert",
    "Approval",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "Cause",
    "CauseLink",
    "Deployment",
    "Failover",
    "Incident",
    "WebhookDelivery",
    "MonitorWatch",
    "OutboxChannel",
    "OutboxMessage",
]
