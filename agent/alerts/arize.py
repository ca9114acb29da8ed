"""Map an Arize monitor alert (an undocumented JSON shape) to a typed Breach, tolerantly.

Arize does not publish the JSON body of its alert webhook, so the mapping is a list of candidate
paths per field, tried in order; a deployment adds its own paths with REMEDIATOR_ARIZE_FIELD_MAP
(a JSON file `{"model_id": ["payload.model.name"], …}`) after capturing a real alert.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.alerts.models import STORED_LENGTHS, Breach, BreachStatus
from agent.store.values import as_utc

DEFAULT_FIELD_PATHS: dict[str, list[str]] = {
    "monitor_id": ["monitor_id", "monitorId", "monitor.id", "alert.monitor_id", "data.monitor_id"],
    "monitor_name": [
        "monitor_name",
        "monitorName",
        "monitor.name",
        "alert.monitor_name",
        "name",
        "title",
    ],
    "status": [
        "status",
        "monitor_status",
        "monitorStatus",
        "state",
        "alert.status",
        "monitor.status",
    ],
    "metric": ["metric", "metric_name", "metricName", "monitor.metric", "alert.metric"],
    "threshold": ["threshold", "threshold_value", "thresholdValue", "monitor.threshold"],
    "operator": ["operator", "threshold_operator", "comparison", "monitor.operator"],
    "value": ["current_value", "currentValue", "value", "metric_value", "metricValue"],
    "model_id": ["model_id", "modelId", "model.id", "model.name", "model_name", "modelName"],
    "model_version": ["model_version", "modelVersion", "model.version", "version"],
    "environment": [
        "environment",
        "model_environment",
        "modelEnvironment",
        "model.environment",
        "env",
    ],
    "service": ["service", "service_name", "serviceName", "project", "project_name", "space_name"],
    "segment": ["segment", "segments", "dimensions", "dimension_values", "filters", "slice"],
    "triggered_at": [
        "triggered_at",
        "triggeredAt",
        "timestamp",
        "time",
        "evaluated_at",
        "evaluatedAt",
    ],
    "url": ["url", "link", "monitor_url", "monitorUrl", "alert_url", "alertUrl"],
}

STATUS_WORDS: dict[str, BreachStatus] = {
    "triggered": "triggered",
    "trigger": "triggered",
    "firing": "triggered",
    "breached": "triggered",
    "alert": "triggered",
    "alerting": "triggered",
    "healthy": "resolved",
    "resolved": "resolved",
    "ok": "resolved",
    "recovered": "resolved",
    "no data": "no_data",
    "no_data": "no_data",
    "nodata": "no_data",
}


class BreachMappingError(ValueError):
    """The payload lacks the minimum fields or holds a value of the wrong kind."""

    def __init__(self, message: str, *, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.missing = missing or []


def load_field_paths(extra_file: Path | None) -> dict[str, list[str]]:
    """Return the candidate paths per field, a deployment's own paths tried first."""
    paths = {name: list(candidates) for name, candidates in DEFAULT_FIELD_PATHS.items()}
    if extra_file is None:
        return paths
    try:
        extra = json.loads(extra_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read Arize field map {extra_file}: {exc}") from exc
    if not isinstance(extra, dict):
        raise ValueError(f"Arize field map {extra_file} must be a JSON object of lists")
    for name, candidates in extra.items():
        if name not in paths:
            known = ", ".join(sorted(paths))
            raise ValueError(
                f"Arize field map {extra_file}: unknown field {name!r} (known: {known})"
            )
        if isinstance(candidates, str):
            candidates = [candidates]
        if not isinstance(candidates, list) or not all(isinstance(c, str) for c in candidates):
            raise ValueError(
                f"Arize field map {extra_file}: {name!r} must be a path or list of paths"
            )
        paths[name] = candidates + [c for c in paths[name] if c not in candidates]
    return paths


def map_arize_payload(payload: Mapping[str, Any], field_paths: Mapping[str, list[str]]) -> Breach:
    """Map one decoded Arize alert body to a Breach, or raise BreachMappingError saying why."""
    found = {name: first_of(payload, candidates) for name, candidates in field_paths.items()}
    missing: list[str] = []
    tried: list[str] = []
    if as_text(found["monitor_id"]) is None and as_text(found["monitor_name"]) is None:
        missing.append("monitor identity (monitor_id or monitor_name)")
        tried += [_tried(field_paths, "monitor_id"), _tried(field_paths, "monitor_name")]
    if found["status"] is None:
        missing.append("status")
        tried.append(_tried(field_paths, "status"))
    if missing:
        raise BreachMappingError(
            "alert is missing required fields: "
            + "; ".join(missing)
            + ". Key paths tried: "
            + "; ".join(tried)
            + " (add a deployment's own with REMEDIATOR_ARIZE_FIELD_MAP)",
            missing=missing,
        )
    return checked(
        source="arize",
        monitor_id=as_text(found["monitor_id"]),
        monitor_name=as_text(found["monitor_name"]),
        status=_status(found["status"]),
        metric=as_text(found["metric"]),
        threshold=as_number("threshold", found["threshold"]),
        operator=as_text(found["operator"]),
        value=as_number("value", found["value"]),
        model_id=as_text(found["model_id"]),
        model_version=as_text(found["model_version"]),
        environment=as_text(found["environment"]),
        service=as_text(found["service"]),
        segment=_segment(found["segment"]),
        triggered_at=as_time(found["triggered_at"]),
        url=as_text(found["url"]),
    )


def checked(**fields: Any) -> Breach:
    """Return the Breach of these fields, or raise naming a value longer than it is stored.

    Some fields are copied into columns of their own (the alert's monitor key, the incident's
    model, environment and service): a longer value would be accepted, then refused by
    PostgreSQL when the incident is opened.
    """
    breach = Breach(**fields)
    for name, limit in STORED_LENGTHS.items():
        value = getattr(breach, name)
        if value is not None and len(value) > limit:
            raise BreachMappingError(
                f"{name} is {len(value)} characters long; at most {limit} are stored"
            )
    return breach


def _tried(field_paths: Mapping[str, list[str]], name: str) -> str:
    """Say which key paths were looked up for a field, in order."""
    return f"{name} at {', '.join(field_paths[name]) or 'no path'}"


def first_of(payload: Mapping[str, Any], candidates: list[str]) -> Any:
    """Return the value at the first of these dotted paths that holds one (not None, not "")."""
    for path in candidates:
        node: Any
        if "." not in path:
            node = payload.get(path)  # most paths are top-level: skip the walk (a hot path)
        else:
            node = payload
            for part in path.split("."):
                if not isinstance(node, Mapping) or part not in node:
                    node = None
                    break
                node = node[part]
        if node is not None and node != "":
            return node
    return None


def as_text(value: Any) -> str | None:
    """Return a scalar as trimmed text (at most 512 characters), else None."""
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value).strip()
        return text[:512] or None
    return None


def _status(value: Any) -> BreachStatus:
    word = str(value).strip().lower().replace("-", " ").replace("_", " ")
    status = STATUS_WORDS.get(word) or STATUS_WORDS.get(word.replace(" ", "_"))
    if status is None:
        accepted = ", ".join(sorted(STATUS_WORDS))
        raise BreachMappingError(f"status {_shown(value)} is not one of: {accepted}")
    return status


def as_number(name: str, value: Any) -> float | None:
    """Return a finite number from a number or numeric text, or raise naming the field."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BreachMappingError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BreachMappingError(f"{name} must be a number, got {_shown(value)}") from None
    except OverflowError:  # an integer too large for a double
        number = float("inf")
    if number != number or number in (float("inf"), float("-inf")):
        raise BreachMappingError(f"{name} must be a finite number, got {_shown(value)}")
    return number


def _shown(value: Any) -> str:
    """Return a value's repr, shortened: an answer never echoes a whole oversized value."""
    text = repr(value)
    return text if len(text) <= 64 else f"{text[:61]}..."


def _segment(value: Any) -> dict[str, str]:
    """Accept {"region": "eu"} or [{"name"/"dimension"/"key": …, "value": …}, …]."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for entry in value:
            if not isinstance(entry, Mapping):
                raise BreachMappingError(
                    "segment list entries must be objects with a name and value"
                )
            name = entry.get("name", entry.get("dimension", entry.get("key")))
            if name is None or "value" not in entry:
                raise BreachMappingError(
                    "segment list entries must be objects with a name and value"
                )
            items.append((name, entry["value"]))
    else:
        raise BreachMappingError("segment must be an object or a list of {name, value}")
    segment: dict[str, str] = {}
    for name, raw in items:
        text = as_text(raw)
        if text is not None:
            segment[str(name)[:128]] = text
    return segment


def as_time(value: Any) -> datetime | None:
    """Return an aware time from RFC 3339 text or epoch seconds/milliseconds.

    Times outside 1970 to 9999 are refused: the investigation computes windows around them.
    """
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 1e11 else value
            parsed = datetime.fromtimestamp(seconds, UTC)
        else:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        as_utc(parsed)
    except (ValueError, OverflowError, OSError):
        raise BreachMappingError(f"triggered_at is not a time: {_shown(value)}") from None
    return parsed
