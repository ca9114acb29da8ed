"""Every table of the service, imported in one place for the metadata and the migrations."""

from agent.alerts.models import Alert
from agent.changes.models import Deployment
from agent.incidents.models import Incident
from audit.models import AuditCheckpoint, AuditEvent, AuditHead

__all__ = ["Alert", "AuditCheckpoint", "AuditEvent", "AuditHead", "Deployment", "Incident"]
