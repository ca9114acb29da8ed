"""The policy a run follows: its matched runbook, or the built-in one when none matches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.settings import Settings
from runbooks.schema import DIAGNOSES, METRICS, Runbook

if TYPE_CHECKING:
    from agent.graph.state import RunContext

BUILTIN_NAME = "builtin-page-on-breach"


def builtin_runbook(settings: Settings) -> Runbook:
    """Return the policy for breaches no runbook covers: read the logs and changes, then page."""
    page = {"page": {"severity": settings.page_severity}}
    return Runbook.model_validate(
        {
            "name": BUILTIN_NAME,
            "version": 1,
            "description": "No runbook matched: investigate logs and recent changes, page on-call.",
            "match": {"metrics": list(METRICS)},
            "probes": {
                "logs": {"timeout_seconds": settings.logs_query_timeout_seconds + 5},
                "changes": {"timeout_seconds": 5},
            },
            "actions": {diagnosis: page for diagnosis in DIAGNOSES},
            "failback": "approval",
        }
    )


def runbook_of(ctx: RunContext, ref: str) -> Runbook:
    """Return the run's runbook by `name@version` (the built-in one for its own ref)."""
    found = ctx.runbook(ref)
    return found if found is not None else builtin_runbook(ctx.settings)
