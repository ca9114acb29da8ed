"""What the Arize emulator holds: monitors, tags, who may call, and the faults queued for tests.

Values are kept in their wire form (what GET returns). Everything set through `set_monitor` or
`add_monitor` is checked against the REST v2 enums (ARIZE.md §3), so a scenario cannot stage a
monitor the real API would never return; `set_raw` is the one way around that, for tests that
show the SDK refusing such a monitor.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sandbox.arize.ids import IdMinter, is_id_of

MONITOR_TYPES = ("TRACING", "DATA_QUALITY", "PERFORMANCE", "DRIFT", "CUSTOM_METRIC")
MONITOR_STATUSES = ("TRIGGERED", "CLEARED", "NO_DATA")
THRESHOLD_OPERATORS = (
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "EQUALS",
    "NOT_EQUALS",
)
FILTER_OPERATORS = (*THRESHOLD_OPERATORS, "TOP_N", "CONTAINS", "CONTAINS_STRING", "SIMILAR_TO")
DIMENSION_CATEGORIES = (
    "FEATURE_LABEL",
    "TAG",
    "MODEL_VERSION",
    "BATCH_ID",
    "SPAN_ATTRIBUTE",
    "LLM_EVAL",
    "USER_ANNOTATION",
    "ACTUALS",
    "ACTUALS_SCORE",
    "ACTUALS_CLASS",
    "PREDICTIONS",
    "PREDICTIONS_SCORE",
    "PREDICTIONS_CLASS",
)
TRACING_METRICS = (
    "COUNT",
    "PERCENT_EMPTY",
    "CARDINALITY",
    "AVG",
    "SUM",
    "STANDARD_DEVIATION",
    "P50",
    "P95",
    "P99",
    "P99_9",
)
METRICS: dict[str, tuple[str, ...]] = {
    "TRACING": TRACING_METRICS,
    "DATA_QUALITY": (
        *TRACING_METRICS,
        "NEW_VALUES",
        "MISSING_VALUES",
        "AVERAGE_STRING_LIST_LENGTH",
    ),
    "DRIFT": ("PSI", "KL", "JS", "KS", "EUCLIDEAN_DISTANCE", "COSINE_SIMILARITY"),
    "PERFORMANCE": (
        "ACCURACY",
        "F_1",
        "PRECISION",
        "RECALL",
        "MAE",
        "MAPE",
        "MSE",
        "RMSE",
        "AUC",
        "LOG_LOSS",
        "NDCG",
    ),
    "CUSTOM_METRIC": (),
}
TAG_COLORS = (
    "GRAY",
    "INDIGO",
    "BLUE",
    "CYAN",
    "TEAL",
    "PINE",
    "GREEN",
    "LIME",
    "OLIVE",
    "LEMON",
    "YELLOW",
    "ORANGE",
    "RED",
    "CORAL",
    "PINK",
    "PLUM",
    "PURPLE",
    "BROWN",
    "AUBURN",
)
SETTABLE = {
    "name",
    "status",
    "threshold",
    "filters",
    "evaluated_at",
    "latest_computed_value",
    "metric",
    "dimension",
    "model_versions",
    "notes",
    "evaluation_window_length_seconds",
}


def wire_time(moment: datetime) -> str:
    """Return a datetime as the API writes it in JSON bodies (ISO 8601, UTC)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Fault:
    """An answer the emulator gives instead of processing a request (see FaultQueue.fail_next)."""

    status: int
    path_prefix: str = "/v2/"
    retry_after: int | None = None
    delay_seconds: float = 0.0
    """With status 0: no fault, only this delay before the real answer (a slow API)."""
    path_contains: str | None = None
    """Besides the prefix, a part of the path the fault is for (e.g. `/labels/`)."""

    def applies(self, path: str) -> bool:
        """Tell whether this fault is for a request to `path`."""
        return path.startswith(self.path_prefix) and (
            self.path_contains is None or self.path_contains in path
        )


class FaultQueue:
    """The faults queued for tests on an emulator's state (`faults`, guarded by `lock`)."""

    faults: deque[Fault]
    lock: threading.RLock

    def queue_fault(self, fault: Fault, times: int = 1) -> None:
        """Queue `times` copies of this fault."""
        with self.lock:
            self.faults.extend(replace(fault) for _ in range(times))

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: int | None = None,
        path_prefix: str = "/v2/",
        path_contains: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with this status, changing nothing."""
        self.queue_fault(Fault(status, path_prefix, retry_after, 0.0, path_contains), times)

    def slow_next(
        self,
        seconds: float,
        times: int = 1,
        *,
        path_prefix: str = "/v2/",
        path_contains: str | None = None,
    ) -> None:
        """Hold the next `times` matching requests for `seconds`, then answer them."""
        self.queue_fault(Fault(0, path_prefix, None, seconds, path_contains), times)

    def take_fault(self, path: str) -> Fault | None:
        """Return (and use up) the first queued fault that applies to this path."""
        with self.lock:
            for fault in self.faults:
                if fault.applies(path):
                    self.faults.remove(fault)
                    return fault
            return None


@dataclass
class ArizeState(FaultQueue):
    """The emulated account: one space and project, its monitors and tags, faults for tests
    (`fail_next`, `slow_next`: FaultQueue).

    `api_keys` None accepts any bearer token; otherwise the token must be one of them.
    """

    api_keys: set[str] | None = None
    minter: IdMinter = field(default_factory=IdMinter)
    space_id: str = ""
    project_id: str = ""
    monitors: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitor_tags: dict[str, list[str]] = field(default_factory=dict)
    faults: deque[Fault] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every /v2 request: method, path (decoded), query, JSON body, answer status."""
    lock: threading.RLock = field(default_factory=threading.RLock)
    extras: dict[str, Any] = field(default_factory=dict)
    """What other parts of the API keep (e.g. `extras["prompts"]`), under the same lock."""
    ui_base: str = "https://app.arize.com/organizations/sandbox/spaces/sandbox"

    def __post_init__(self) -> None:
        self.space_id = self.space_id or self.minter.mint("Space")
        self.project_id = self.project_id or self.minter.mint("Project")

    # -- monitors ---------------------------------------------------------------------------

    def add_monitor(
        self,
        name: str,
        *,
        type: str = "TRACING",
        status: str = "TRIGGERED",
        monitor_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Create a monitor (fields in wire form, checked) and return its id."""
        if type not in MONITOR_TYPES:
            raise ValueError(f"type must be one of {', '.join(MONITOR_TYPES)}")
        if monitor_id is not None and not is_id_of(monitor_id, "Monitor"):
            raise ValueError(f"{monitor_id!r} is not a Monitor id")
        with self.lock:
            identifier = monitor_id or self.minter.mint("Monitor")
            now = wire_time(datetime.now(UTC))
            self.monitors[identifier] = {
                "id": identifier,
                "name": name,
                "type": type,
                "project_id": self.project_id,
                "uri": f"{self.ui_base}/monitors/{identifier}",
                "status": "TRIGGERED",
                "notifications_enabled": True,
                "created_at": now,
                "updated_at": now,
            }
            self.monitor_tags.setdefault(identifier, [])
            self.set_monitor(identifier, status=status, **fields)
            return identifier

    def set_monitor(self, monitor_id: str, **fields: Any) -> dict[str, Any]:
        """Change a monitor's fields (checked against the API's enums); return it."""
        unknown = set(fields) - SETTABLE
        if unknown:
            raise ValueError(f"not settable: {', '.join(sorted(unknown))}")
        with self.lock:
            monitor = self.monitors.get(monitor_id)
            if monitor is None:
                raise KeyError(monitor_id)
            for name, value in fields.items():
                _check_field(monitor["type"], name, value)
            for name, value in fields.items():
                if value is None:
                    monitor.pop(name, None)
                else:
                    monitor[name] = value
            monitor["updated_at"] = wire_time(datetime.now(UTC))
            return dict(monitor)

    def set_raw(self, monitor_id: str, name: str, value: Any) -> None:
        """Set a field to anything at all, unchecked: a monitor the real API would not return."""
        with self.lock:
            self.monitors[monitor_id][name] = value

    # -- tags -------------------------------------------------------------------------------

    def create_tag(self, name: str, space_id: str, **extra: Any) -> dict[str, Any]:
        """Create a tag; ValueError when the space has one of this name (any case)."""
        with self.lock:
            if any(
                t["name"].lower() == name.lower() and t["space_id"] == space_id
                for t in self.tags.values()
            ):
                raise ValueError("A tag with this name already exists in the space")
            now = wire_time(datetime.now(UTC))
            tag_id = self.minter.mint("Tag")
            tag: dict[str, Any] = {
                "id": tag_id,
                "name": name,
                "description": extra.get("description"),
                "color": extra.get("color"),
                "space_id": space_id,
                "created_at": now,
                "updated_at": now,
            }
            self.tags[tag_id] = tag
            return dict(tag)

    def tag_names(self, monitor_id: str) -> list[str]:
        """Return the names of the tags attached to a monitor."""
        with self.lock:
            return [self.tags[t]["name"] for t in self.monitor_tags.get(monitor_id, [])]

    def snapshot(self) -> dict[str, Any]:
        """Return the account's state and the requests received, for tests and scenarios."""
        with self.lock:
            return {
                "space_id": self.space_id,
                "project_id": self.project_id,
                "monitors": {k: dict(v) for k, v in self.monitors.items()},
                "tags": {k: dict(v) for k, v in self.tags.items()},
                "monitor_tags": {k: self.tag_names(k) for k in self.monitors},
                "requests": list(self.requests),
                # A part keeping a state object shows that part's own snapshot.
                "extras": {
                    k: v.snapshot() if hasattr(v, "snapshot") else v for k, v in self.extras.items()
                },
            }


def _check_field(monitor_type: str, name: str, value: Any) -> None:
    """Raise ValueError when `value` is not what the API could return for this field."""
    if value is None:
        return
    if name == "status" and value not in MONITOR_STATUSES:
        raise ValueError(f"status must be one of {', '.join(MONITOR_STATUSES)}")
    if name == "metric":
        allowed = METRICS[monitor_type]
        if value not in allowed:
            raise ValueError(f"metric of a {monitor_type} monitor must be one of {allowed}")
    if name == "threshold":
        _check_threshold(value)
    if name == "filters":
        if not isinstance(value, list):
            raise ValueError("filters must be a list")
        for item in value:
            if not isinstance(item, dict) or set(item) - {"dimension", "operator", "values"}:
                raise ValueError("each filter is {dimension, operator, values}")
            _check_dimension(item.get("dimension"))
            if item.get("operator") not in FILTER_OPERATORS:
                raise ValueError(f"filter operator must be one of {FILTER_OPERATORS}")
            values = item.get("values", [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ValueError("filter values are strings")
    if name == "dimension":
        _check_dimension(value)
    if name == "model_versions":
        if monitor_type == "TRACING":
            raise ValueError("tracing monitors have no model_versions")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("model_versions is a list of strings")
    if name == "latest_computed_value" and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise ValueError("latest_computed_value is a number")
    if name == "evaluated_at":
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if name in ("name", "notes") and not isinstance(value, str):
        raise ValueError(f"{name} is a string")
    if name == "evaluation_window_length_seconds" and (
        isinstance(value, bool) or not isinstance(value, int)
    ):
        raise ValueError("evaluation_window_length_seconds is an integer")


def _check_threshold(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError("threshold must be an object")
    kind = value.get("type")
    if kind == "MANUAL_SINGLE":
        if set(value) - {"type", "operator", "value"}:
            raise ValueError("a MANUAL_SINGLE threshold is {type, operator, value}")
        if value.get("operator") not in THRESHOLD_OPERATORS:
            raise ValueError(f"threshold operator must be one of {THRESHOLD_OPERATORS}")
        number = value.get("value")
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ValueError("threshold value is a number")
    elif kind not in ("DYNAMIC_SINGLE", "MANUAL_RANGE", "DYNAMIC_RANGE"):
        raise ValueError("threshold type is MANUAL_SINGLE, DYNAMIC_SINGLE, MANUAL_RANGE or ...")


def _check_dimension(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or set(value) - {"category", "name"}:
        raise ValueError("a dimension is {category, name}")
    if value.get("category") not in DIMENSION_CATEGORIES:
        raise ValueError(f"dimension category must be one of {DIMENSION_CATEGORIES}")
