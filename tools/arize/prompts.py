"""Arize prompt versions and their labels, through the official SDK's `client.prompts` (beta).

Takes an already built `arize.ArizeClient` (`tools/arize/client.py` builds one from settings).
The SDK has no default timeout and its prompt methods take none, so every call runs on a daemon
thread under this adapter's own deadline (`call_with_deadline` in `tools/arize/client.py`): past
it the call is abandoned and answered as `down` (a write abandoned that way may still land;
callers read the label back before trusting it).
Errors become ToolResults, never exceptions: 404 `error` with `not_found`, other 4xx `error`,
429 and 5xx `down` (the SDK retries neither), a timeout or an unreachable host `down`, an answer the
SDK's strict models refuse `error`. Evidence carries `http_status` when Arize answered one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tools.arize.client import SdkFailure, call_with_deadline
from tools.result import Stopwatch, ToolResult, ToolStatus

NAME = "arize_prompts"
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_VERSIONS = 100
"""The most versions one list call reads (the API's page limit); older ones are not read."""


def version_view(version: Any) -> dict[str, Any]:
    """Return what the agent keeps of an SDK PromptVersion: ids, commit, labels, when."""
    created = getattr(version, "created_at", None)
    return {
        "id": getattr(version, "id", None),
        "prompt_id": getattr(version, "prompt_id", None),
        "commit_hash": getattr(version, "commit_hash", None),
        "commit_message": getattr(version, "commit_message", None),
        "model": getattr(version, "model", None),
        "labels": list(getattr(version, "labels", None) or []),
        "created_at": created.isoformat() if created is not None else None,
    }


class ArizePromptRegistry:
    """Read prompt versions and move their labels, each call under a deadline."""

    name = NAME

    def __init__(self, client: Any, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._client = client
        self._timeout = timeout_seconds

    def check(self) -> tuple[bool, str]:
        """Ask for one prompt: the API key is accepted and the API answers."""
        result = self._call("list prompts", {}, lambda p: p.list(limit=1), lambda _: {})
        if result.status == ToolStatus.ok:
            return True, "Arize prompts API answers"
        return False, f"Arize prompts API: {result.error}"

    def version_by_label(self, prompt_id: str, label: str) -> ToolResult:
        """Return the version of the prompt carrying `label`; evidence: `version`."""
        return self._call(
            f"version of {prompt_id} labeled {label}",
            {"prompt_id": prompt_id, "label": label},
            lambda p: p.get_version_by_label(prompt=prompt_id, label_name=label),
            lambda v: {"version": version_view(v)},
        )

    def list_versions(self, prompt_id: str) -> ToolResult:
        """Return the prompt's newest versions, newest first; evidence: `versions`."""
        return self._call(
            f"versions of {prompt_id}",
            {"prompt_id": prompt_id},
            lambda p: p.list_versions(prompt=prompt_id, limit=MAX_VERSIONS),
            lambda page: {"versions": [version_view(v) for v in page.prompt_versions or []]},
        )

    def get_version(self, version_id: str) -> ToolResult:
        """Return one version; evidence: `version`."""
        return self._call(
            f"version {version_id}",
            {"version_id": version_id},
            lambda p: p.get_version(version_id=version_id),
            lambda v: {"version": version_view(v)},
        )

    def set_labels(self, version_id: str, labels: list[str]) -> ToolResult:
        """Replace the version's labels with `labels` (each moves off the prompt's other
        versions); evidence: `version` as Arize answered it."""
        return self._call(
            f"set labels {labels} on {version_id}",
            {"version_id": version_id, "labels": list(labels)},
            lambda p: p.set_labels(version_id=version_id, labels=list(labels)),
            lambda v: {"version": version_view(v)},
        )

    def _call(
        self,
        what: str,
        asked: dict[str, Any],
        call: Callable[[Any], Any],
        evidence: Callable[[Any], dict[str, Any]],
    ) -> ToolResult:
        watch = Stopwatch()
        found = call_with_deadline(lambda: evidence(call(self._client.prompts)), self._timeout)
        if isinstance(found, SdkFailure):
            status, why = word(found, self._timeout)
            return self._failed(what, asked, watch, status, why, found.http_status)
        return ToolResult(
            tool=NAME,
            status=ToolStatus.ok,
            summary=what,
            asked=asked,
            evidence=found,
            latency_ms=watch.ms,
        )

    def _failed(
        self,
        what: str,
        asked: dict[str, Any],
        watch: Stopwatch,
        status: ToolStatus,
        why: str,
        http_status: int | None,
    ) -> ToolResult:
        evidence: dict[str, Any] = {"http_status": http_status} if http_status else {}
        if http_status == 404:
            evidence["not_found"] = True
        return ToolResult(
            tool=NAME,
            status=status,
            summary=f"{what}: {why}",
            asked=asked,
            evidence=evidence,
            latency_ms=watch.ms,
            error=why,
        )


def word(failure: SdkFailure, timeout: float) -> tuple[ToolStatus, str]:
    """Return the status and the words of a failed prompt call."""
    if failure.kind == "deadline":
        return ToolStatus.down, f"no answer within {timeout:g} s"
    if failure.kind == "http" and failure.http_status is not None:
        why = f"Arize answered {failure.http_status}" + (
            f": {failure.detail}" if failure.detail else ""
        )
        throttled_or_failed = failure.http_status == 429 or failure.http_status >= 500
        return (ToolStatus.down if throttled_or_failed else ToolStatus.error), why
    if failure.kind == "unreachable":
        return ToolStatus.down, f"Arize unreachable: {failure.name}"
    if failure.kind == "unreadable":
        return ToolStatus.error, f"Arize answered what the SDK cannot read: {failure.name}"
    return ToolStatus.error, f"Arize call failed: {failure.name}: {str(failure.exception)[:200]}"
