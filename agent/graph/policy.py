"""The policy a run follows: its matched runbook, or the built-in one when none matches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.settings import Settings
from runbooks.catalog import Service
from runbooks.schema import DIAGNOSES, METRICS, ProbeSpec, Runbook

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
            "next_steps": BUILTIN_NEXT_STEPS,
        }
    )


_NO_RUNBOOK = (
    "No runbook covers this breach: write one for its metric and service "
    "(`remediator runbooks validate` checks it), so the next incident gets its own steps."
)
BUILTIN_NEXT_STEPS: dict[str, list[str]] = {
    "dependency_degraded": [
        "Check the degraded dependency's own dashboard and tell its owner.",
        _NO_RUNBOOK,
    ],
    "endpoint_isolated": [
        "Check the endpoint's provider status page and the gateway's latency and errors by "
        "region; fail over by hand if another route is healthy.",
        _NO_RUNBOOK,
    ],
    "suspect_change": [
        "Ask the suspect deployment's author whether it can be rolled back, and roll it back "
        "by hand if users are affected.",
        _NO_RUNBOOK,
    ],
    "segment_only": [
        "Check the affected segment's traffic in Arize before touching the service as a whole.",
        _NO_RUNBOOK,
    ],
    "no_fault_found": [
        "Open the Arize monitor and check whether the breach is still ongoing.",
        "Read the log evidence for errors the probes did not see.",
        _NO_RUNBOOK,
    ],
}
"""What the built-in policy suggests to the person paged, per diagnosis."""


def service_probes(service: Service) -> dict[str, float]:
    """Return the standard probes of a catalogued service (name → timeout in seconds).

    What the catalog describes is probed: the endpoint with its prompts (each within the endpoint's
    own timeout), and each dependency. The built-in policy adds them to its logs and changes, so a
    breach no runbook covers is still diagnosed, and its page reaches the owner of what is broken.
    """
    default = ProbeSpec().timeout_seconds
    probes: dict[str, float] = {}
    if service.dependencies.vector_db is not None:
        probes["vector_db"] = default
    if service.dependencies.embeddings is not None:
        probes["embeddings"] = default
    if service.endpoint is not None:
        prompts = len(service.endpoint.prompts) or 3  # the probe's default prompts
        probes["endpoint"] = min(service.endpoint.timeout_seconds * prompts + 5, 300.0)
    return probes


def runbook_of(ctx: RunContext, ref: str) -> Runbook:
    """Return the run's runbook by `name@version` (the built-in one for its own ref)."""
    found = ctx.runbook(ref)
    return found if found is not None else builtin_runbook(ctx.settings)
