"""Arize monitors through the official SDK's generated REST v2 client (ARIZE.md §3).

Read a monitor (status, threshold, latest value, segment, …), and mark it with a tag while an
incident is open. Every call runs under our own deadline: the SDK has no default timeout, and a
GET that times out is retried by urllib3 (four sends) and ends in `MaxRetryError`, so each call
is given `_request_timeout` and is also abandoned when the deadline passes (`call_with_deadline`
in `tools/arize/client.py`). Every outcome is a ToolResult; nothing raises.

Values are read from the SDK's typed attributes (`to_dict()` drops the read-only ones: `uri`,
`evaluated_at`, `latest_computed_value`), and the raw JSON is kept as evidence.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tools.arize.client import (
    ArizeConnection,
    ArizeUnavailable,
    SdkFailure,
    call_with_deadline,
    generated_api_client,
    load_sdk,
    make_client,
)
from tools.result import Stopwatch, ToolResult, ToolStatus

if TYPE_CHECKING:
    from arize import ArizeClient

TOOL = "arize.monitors"
OPERATORS = {
    "GREATER_THAN": ">",
    "GREATER_THAN_OR_EQUAL": ">=",
    "LESS_THAN": "<",
    "LESS_THAN_OR_EQUAL": "<=",
    "EQUALS": "==",
    "NOT_EQUALS": "!=",
}
MAX_CALLS_IN_FLIGHT = 4


def is_monitor_id(text: str | None) -> bool:
    """Tell whether `text` is an Arize monitor id (base64 of `Monitor:N:x`), not a name.

    The SDK takes any other string for a monitor's *name* and spends extra calls looking it up;
    the agent reads monitors by id only.
    """
    if not text:
        return False
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return False
    return raw.startswith("Monitor:") and raw.count(":") >= 2


@dataclass(frozen=True)
class MonitorReading:
    """What the agent uses of a monitor, as plain values."""

    monitor_id: str
    name: str | None = None
    type: str | None = None
    status: str | None = None
    """TRIGGERED, CLEARED or NO_DATA."""
    metric: str | None = None
    """The monitor's metric, after the dimension it is computed over (`latency_ms P95`)."""
    threshold: float | None = None
    operator: str | None = None
    """The threshold's comparison as a symbol (`>`), as alerts write it."""
    latest_computed_value: float | None = None
    evaluated_at: datetime | None = None
    uri: str | None = None
    segment: dict[str, str] = field(default_factory=dict)
    """The monitor's filters: dimension name → values (`EQUALS`), else `OPERATOR values`."""
    model_versions: list[str] = field(default_factory=list)
    project_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the reading as JSON values."""
        data = asdict(self)
        data["evaluated_at"] = self.evaluated_at.isoformat() if self.evaluated_at else None
        return data


class ArizeMonitors:
    """Read Arize monitors and tag them, each call bounded by `deadline_seconds`."""

    name = "arize"

    def __init__(
        self,
        connection: ArizeConnection,
        *,
        deadline_seconds: float = 5.0,
        client_factory: Callable[[ArizeConnection], ArizeClient] = make_client,
    ) -> None:
        self._connection = connection
        self._deadline = float(deadline_seconds)
        self._client_factory = client_factory
        self._apis: tuple[Any, Any] | None = None
        self._lock = threading.Lock()
        # Calls outlive a missed deadline (urllib3 retries); a few threads bound how many do.
        self._pool = ThreadPoolExecutor(MAX_CALLS_IN_FLIGHT, thread_name_prefix="arize")

    @property
    def space_id(self) -> str | None:
        """Return the space tags are created in (None: tagging is not possible)."""
        return self._connection.space_id

    def warm_up(self, *, wait: bool = False) -> None:
        """Import the SDK and build its client on a thread of its own, so neither the service's
        start nor the first call waits for the import (over a second); `wait`: here and now."""

        def build() -> None:
            try:
                self._api()
            except ArizeUnavailable:
                pass

        if wait:
            build()
        else:
            threading.Thread(target=build, name="arize-warm-up", daemon=True).start()

    def check(self) -> tuple[bool, str]:
        """Tell whether the API answers this key: list one monitor."""

        def call(monitors: Any, _: Any) -> dict[str, Any]:
            answer = monitors.list_monitors(limit=1, _request_timeout=self._timeout())
            return {"monitors_seen": len(answer.monitors or [])}

        result = self._run("list_monitors", {}, call)
        if result.status == ToolStatus.ok:
            return True, f"API key accepted by {self._connection.base_url}"
        return False, result.summary

    def get_monitor(self, monitor_id: str) -> ToolResult:
        """Read one monitor; evidence: `monitor` (a MonitorReading as JSON) and `raw`."""
        asked = {"monitor_id": monitor_id}
        if not is_monitor_id(monitor_id):
            return ToolResult(
                tool=TOOL,
                status=ToolStatus.error,
                summary=f"{monitor_id!r} is not an Arize monitor id (base64 of Monitor:…)",
                asked=asked,
                error="not_an_id",
            )

        def call(monitors: Any, _: Any) -> dict[str, Any]:
            answer = monitors.get_monitor_with_http_info(
                monitor_id, _request_timeout=self._timeout()
            )
            reading = read_monitor(monitor_id, answer.data.actual_instance)
            raw = json.loads(answer.raw_data) if answer.raw_data else None
            return {"monitor": reading.as_json(), "raw": raw}

        result = self._run("get_monitor", asked, call)
        if result.status == ToolStatus.ok:
            status = result.evidence["monitor"].get("status")
            result.summary = f"monitor {result.evidence['monitor'].get('name')!r} is {status}"
        return result

    def ensure_tag(self, tag_name: str) -> ToolResult:
        """Create a tag in the connection's space; evidence `tag_id` (409: it exists already)."""
        asked = {"tag": tag_name, "space_id": self.space_id}
        if not self.space_id:
            return ToolResult(
                tool=TOOL,
                status=ToolStatus.error,
                summary="no Arize space configured (REMEDIATOR_ARIZE_SPACE_ID): not tagging",
                asked=asked,
                error="no_space",
            )

        def call(_: Any, tags: Any) -> dict[str, Any]:
            models = load_sdk()._generated.api_client.models
            request = models.CreateTagRequest(name=tag_name, space_id=self.space_id)
            tag = tags.create_tag(request, _request_timeout=self._timeout())
            return {"tag_id": tag.id, "name": tag.name}

        result = self._run("create_tag", asked, call)
        if result.status == ToolStatus.ok:
            result.summary = f"tag {tag_name!r} created"
        return result

    def add_tag(self, monitor_id: str, tag_id: str) -> ToolResult:
        """Attach a tag to a monitor (idempotent in Arize); evidence: the monitor's tag names."""
        return self._tag_call(
            "add_monitor_tags",
            monitor_id,
            tag_id,
            lambda answer: {"tags": [t.name for t in answer.tags or []]},
            "tag attached to the monitor",
        )

    def remove_tag(self, monitor_id: str, tag_id: str) -> ToolResult:
        """Detach a tag from a monitor (one no longer attached is no error)."""
        return self._tag_call(
            "remove_monitor_tags",
            monitor_id,
            tag_id,
            lambda answer: {"deleted": answer.deleted or [], "not_deleted": answer.not_deleted},
            "tag detached from the monitor",
        )

    def _tag_call(
        self,
        operation: str,
        monitor_id: str,
        tag_id: str,
        read: Callable[[Any], dict[str, Any]],
        done: str,
    ) -> ToolResult:
        """Attach or detach one tag: `add_monitor_tags` / `remove_monitor_tags`."""
        request_type = "AddTagsRequest" if operation.startswith("add") else "RemoveTagsRequest"

        def call(monitors: Any, _: Any) -> dict[str, Any]:
            request = getattr(load_sdk()._generated.api_client.models, request_type)
            method = getattr(monitors, operation)
            answer = method(monitor_id, request(tag_ids=[tag_id]), _request_timeout=self._timeout())
            return read(answer)

        result = self._run(operation, {"monitor_id": monitor_id, "tag_id": tag_id}, call)
        if result.status == ToolStatus.ok:
            result.summary = done
        return result

    def find_tag(self, monitor_id: str, tag_name: str) -> ToolResult:
        """Return the id of the monitor's tag of this name (evidence `tag_id`, None: none)."""

        def call(monitors: Any, _: Any) -> dict[str, Any]:
            answer = monitors.list_monitor_tags(monitor_id, _request_timeout=self._timeout())
            found = [t.id for t in answer.tags or [] if (t.name or "").lower() == tag_name.lower()]
            return {"tag_id": found[0] if found else None}

        return self._run("list_monitor_tags", {"monitor_id": monitor_id, "tag": tag_name}, call)

    # -- the one way every call is made -----------------------------------------------------

    def _timeout(self) -> tuple[float, float]:
        return (self._deadline, self._deadline)

    def _api(self) -> tuple[Any, Any]:
        with self._lock:
            if self._apis is None:
                sdk = load_sdk()
                client = generated_api_client(self._client_factory(self._connection))
                api = sdk._generated.api_client.api
                self._apis = (api.MonitorsApi(client), api.TagsApi(client))
            return self._apis

    def _run(
        self, operation: str, asked: dict[str, Any], call: Callable[[Any, Any], dict[str, Any]]
    ) -> ToolResult:
        """Make one SDK call under the deadline and describe its outcome as a ToolResult."""
        watch = Stopwatch()
        asked = {"operation": operation, **asked}
        try:
            monitors, tags = self._api()
        except ArizeUnavailable as exc:
            return _failed(asked, ToolStatus.error, str(exc), "sdk_missing", watch)
        evidence = call_with_deadline(lambda: call(monitors, tags), self._deadline, pool=self._pool)
        if isinstance(evidence, SdkFailure):  # an SDK error never escapes an adapter
            status, summary, code = describe_error(evidence, self._deadline)
            if evidence.kind != "deadline":
                summary = f"{operation}: {summary}"
            return _failed(asked, status, summary, code, watch)
        return ToolResult(
            tool=TOOL,
            status=ToolStatus.ok,
            summary=f"{operation}: ok",
            asked=asked,
            evidence=evidence,
            latency_ms=watch.ms,
        )


def _failed(
    asked: dict[str, Any], status: ToolStatus, summary: str, code: str, watch: Stopwatch
) -> ToolResult:
    return ToolResult(
        tool=TOOL, status=status, summary=summary, asked=asked, error=code, latency_ms=watch.ms
    )


def describe_error(failure: SdkFailure, deadline: float) -> tuple[ToolStatus, str, str]:
    """Return (status, summary, error code) of a failed SDK call."""
    status_code, detail = failure.http_status or 0, failure.detail
    if failure.kind == "deadline":
        return ToolStatus.down, f"no answer from Arize within {deadline:g}s", "deadline"
    if failure.kind == "http":
        if status_code in (401, 403):
            return ToolStatus.error, f"Arize refused the API key ({status_code}: {detail})", "auth"
        if status_code == 404:
            return ToolStatus.error, f"not found in Arize ({detail})", "not_found"
        if status_code == 409:
            return ToolStatus.error, f"already exists in Arize ({detail})", "conflict"
        if status_code == 429:
            return ToolStatus.degraded, f"rate-limited by Arize (429: {detail})", "rate_limited"
        if status_code >= 500:
            return ToolStatus.down, f"Arize failed ({status_code}: {detail})", "server_error"
        return ToolStatus.error, f"Arize answered {status_code}: {detail}", "refused"
    if failure.kind == "unreachable":
        return ToolStatus.down, f"Arize unreachable ({failure.name})", "unreachable"
    if failure.kind == "unreadable":
        first = str(failure.exception).splitlines()[0][:200] if str(failure.exception) else ""
        return ToolStatus.error, f"the SDK could not read Arize's answer ({first})", "unreadable"
    return ToolStatus.error, f"{failure.name}: {failure.exception}", "error"


def read_monitor(monitor_id: str, monitor: Any) -> MonitorReading:
    """Return the reading of one SDK monitor variant (any of the five types)."""
    threshold = getattr(getattr(monitor, "threshold", None), "actual_instance", None)
    operator = _enum(getattr(threshold, "operator", None))
    value = getattr(threshold, "value", None)
    metric = _enum(getattr(monitor, "metric", None))
    dimension = getattr(monitor, "dimension", None)
    if metric and dimension is not None and getattr(dimension, "name", None):
        metric = f"{dimension.name} {metric}"
    latest = getattr(monitor, "latest_computed_value", None)
    return MonitorReading(
        monitor_id=getattr(monitor, "id", None) or monitor_id,
        name=getattr(monitor, "name", None),
        type=_enum(getattr(monitor, "type", None)),
        status=_enum(getattr(monitor, "status", None)),
        metric=metric,
        threshold=float(value) if value is not None else None,
        operator=OPERATORS.get(operator or "", operator),
        latest_computed_value=float(latest) if latest is not None else None,
        evaluated_at=getattr(monitor, "evaluated_at", None),
        uri=getattr(monitor, "uri", None),
        segment=_segment(getattr(monitor, "filters", None) or []),
        model_versions=list(getattr(monitor, "model_versions", None) or []),
        project_id=getattr(monitor, "project_id", None),
    )


def _enum(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _segment(filters: list[Any]) -> dict[str, str]:
    segment: dict[str, str] = {}
    for item in filters:
        name = getattr(getattr(item, "dimension", None), "name", None)
        values = ",".join(getattr(item, "values", None) or [])
        if not name or not values:
            continue
        operator = _enum(getattr(item, "operator", None))
        segment[str(name)] = values if operator in (None, "EQUALS") else f"{operator} {values}"
    return segment
