"""Map a Prometheus Alertmanager webhook (format version 4) to one Breach per alert."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.alerts.arize import BreachMappingError, as_number, as_text, as_time, checked
from agent.alerts.models import Breach

# Labels that name what breached; every other label is a segment (region, cohort, …).
IDENTITY_LABELS = {
    "alertname",
    "monitor",
    "monitor_id",
    "metric",
    "model",
    "model_id",
    "model_version",
    "version",
    "environment",
    "env",
    "service",
    "severity",
    "job",
    "instance",
    "threshold",
}
STATUSES = {"firing": "triggered", "resolved": "resolved"}


def map_alertmanager_payload(payload: Mapping[str, Any]) -> list[tuple[Breach, dict[str, Any]]]:
    """Return (breach, the alert's own JSON) for each alert of the group, or raise saying why."""
    if str(payload.get("version", "")) != "4":
        raise BreachMappingError(
            f'Alertmanager webhook version must be "4", got {payload.get("version")!r}',
            missing=["version"] if "version" not in payload else None,
        )
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise BreachMappingError("alerts must be a non-empty list", missing=["alerts"])
    mapped = []
    for index, alert in enumerate(alerts):
        if not isinstance(alert, Mapping):
            raise BreachMappingError(f"alerts[{index}] must be an object")
        try:
            mapped.append((_breach(alert), dict(alert)))
        except BreachMappingError as exc:
            raise BreachMappingError(f"alerts[{index}]: {exc}", missing=exc.missing) from None
    return mapped


def _breach(alert: Mapping[str, Any]) -> Breach:
    labels = alert.get("labels")
    annotations = alert.get("annotations") or {}
    if not isinstance(labels, Mapping) or not isinstance(annotations, Mapping):
        raise BreachMappingError("labels and annotations must be objects", missing=["labels"])
    name = as_text(labels.get("alertname"))
    if name is None:
        raise BreachMappingError("alert has no alertname label", missing=["labels.alertname"])
    status = STATUSES.get(str(alert.get("status", "")).lower())
    if status is None:
        raise BreachMappingError(f"status must be firing or resolved, got {alert.get('status')!r}")
    segment = {
        str(key)[:128]: text
        for key, value in labels.items()
        if key not in IDENTITY_LABELS and (text := as_text(value)) is not None
    }
    return checked(
        source="alertmanager",
        monitor_id=as_text(labels.get("monitor_id")) or name,
        monitor_name=name,
        status=status,
        metric=as_text(labels.get("metric")) or name,
        threshold=as_number("threshold", annotations.get("threshold", labels.get("threshold"))),
        operator=as_text(annotations.get("operator")),
        value=as_number("value", annotations.get("value", annotations.get("current_value"))),
        model_id=as_text(labels.get("model_id", labels.get("model"))),
        model_version=as_text(labels.get("model_version", labels.get("version"))),
        environment=as_text(labels.get("environment", labels.get("env"))),
        service=as_text(labels.get("service")),
        segment=segment,
        triggered_at=as_time(alert.get("startsAt")),
        url=as_text(alert.get("generatorURL")),
    )
