"""Every table of the service, imported in one place for the metadata and the migrations."""

from agent.alerts.models import Alert
from agent.incidents.models import Incident
from audit.models import AuditEvent, AuditHead

__all__ = ["Alert", "AuditEvent", "AuditHead", "Incident"]
