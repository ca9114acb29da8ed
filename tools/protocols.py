"""The capabilities the agent uses, one Protocol each; adapters implement them on vendor SDKs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tools.result import ToolResult


@dataclass(frozen=True)
class LogQuery:
    """Which logs to read: a time window narrowed to one model (and version)."""

    start: datetime
    end: datetime
    model_id: str | None = None
    model_version: str | None = None
    limit: int = 200
    path: str | None = None
    scrub: Callable[[str], str] | None = None
    """Applied to every message read before it is summarised or cut (the agent's redactor)."""

    def clean(self, text: str) -> str:
        """Return a message read from the logs as the result may carry it (scrubbed)."""
        return self.scrub(text) if self.scrub is not None else text


@dataclass(frozen=True)
class PageRequest:
    """One page to open (or re-send) for an incident; dedup_key makes retries harmless."""

    dedup_key: str
    summary: str
    source: str
    severity: str
    component: str | None = None
    group: str | None = None
    custom_details: dict[str, Any] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)


class Checkable(Protocol):
    """An adapter that can say whether it is configured and reachable."""

    name: str

    def check(self) -> tuple[bool, str]:
        """Return whether the outside system answers, and why not if it does not."""
        ...


class LogSource(Checkable, Protocol):
    """Reads application logs around a breach."""

    def search(self, query: LogQuery) -> ToolResult:
        """Return error counts, top error messages and samples for the query."""
        ...


class Pager(Checkable, Protocol):
    """Opens and resolves on-call pages."""

    def trigger(self, request: PageRequest) -> ToolResult:
        """Open (or update) the page with this dedup_key."""
        ...

    def resolve(self, dedup_key: str) -> ToolResult:
        """Resolve the page with this dedup_key."""
        ...


class ChatNotifier(Checkable, Protocol):
    """Posts incident messages to a chat channel, threaded per incident."""

    def post(
        self,
        *,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> ToolResult:
        """Post a message; evidence carries the message's `ts` and `channel`."""
        ...


@dataclass(frozen=True)
class Route:
    """Where an LLM service sends its traffic: provider, model, region, and provider options."""

    provider: str
    model: str
    region: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class FailoverBackend(Checkable, Protocol):
    """Reads and switches the active route of an LLM service, idempotently by key."""

    def current(self, service: str) -> ToolResult:
        """Return the service's active route; evidence carries `route`."""
        ...

    def switch(self, service: str, to: Route, *, idempotency_key: str) -> ToolResult:
        """Switch to `to` once per key; evidence: `previous`, `new`, `confirmed`, `repeated`."""
        ...

    def restore(self, service: str, *, idempotency_key: str) -> ToolResult:
        """Go back to the route recorded before the switch made with this key."""
        ...


class HealthProbe(Checkable, Protocol):
    """Probes a serving dependency (embeddings, LLM endpoint, vector DB) with canaries."""

    def probe(self) -> ToolResult:
        """Run the canaries once; status ok, degraded, down or error, with latency and evidence."""
        ...


class IncidentPager(Checkable, Protocol):
    """Opens on-call incidents directly (REST) and writes to their timeline."""

    def create_incident(
        self,
        title: str,
        service_id: str,
        urgency: str,
        incident_key: str,
        details: str,
        escalation_policy_id: str | None = None,
    ) -> ToolResult:
        """Open an incident; evidence: `id`, `incident_number`, `html_url`, `status`."""
        ...

    def add_note(self, incident_id: str, content: str) -> ToolResult:
        """Add a note to the incident; evidence: `id`, `created_at`, `incident_id`."""
        ...


class EditableChat(ChatNotifier, Protocol):
    """A chat notifier that can also edit a message it posted."""

    def update(
        self,
        *,
        channel: str,
        ts: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
    ) -> ToolResult:
        """Edit the message at `ts`; evidence carries `channel` and `ts`."""
        ...


class ChatWorkspace(EditableChat, Protocol):
    """A chat workspace: post, edit, and tell who belongs to a user group (for approvers)."""

    def group_members(self, group_id: str) -> set[str] | None:
        """Return the user ids in a user group, or None when they cannot be looked up."""
        ...


class IncidentAnalyst(Checkable, Protocol):
    """Proposes a hypothesis and one action for an inconclusive incident; never acts."""

    def analyse(
        self,
        *,
        incident_summary: str,
        evidence: list[dict[str, Any]],
        diagnosis: str,
        allowed_actions: list[str],
    ) -> ToolResult:
        """Ask once; evidence: `hypothesis`, `proposal`, `proposal_allowed`, `discarded_reason`."""
        ...


class PromptRegistry(Checkable, Protocol):
    """Reads a prompt's versions and moves its labels (Arize prompt management)."""

    def version_by_label(self, prompt_id: str, label: str) -> ToolResult:
        """Return the version carrying `label`; evidence: `version` (`id`, `labels`, …)."""
        ...

    def list_versions(self, prompt_id: str) -> ToolResult:
        """Return the prompt's versions, newest first; evidence: `versions`."""
        ...

    def get_version(self, version_id: str) -> ToolResult:
        """Return one version; evidence: `version`."""
        ...

    def set_labels(self, version_id: str, labels: list[str]) -> ToolResult:
        """Replace the version's labels (each moves off the prompt's other versions);
        evidence: `version` as the registry answered it."""
        ...
