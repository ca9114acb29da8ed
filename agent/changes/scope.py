"""Which recorded changes could have caused a breach: one rule for the search and the diagnosis.

A change counts only where it could have caused the breach: the same service (the same model when
the breach names no service), the same environment, and, when the change names one, an overlapping
region and model. What is unknown on either side does not rule a change out: a deployment that
names no environment may have gone everywhere, a breach without a region covers them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BreachScope:
    """Where a breach happened, as far as the alert (and the catalog) say."""

    service: str | None = None
    model_id: str | None = None
    environment: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, breach: Mapping[str, Any], service: str | None = None) -> BreachScope:
        """Return the scope of a breach (as JSON); `service` is the catalog's name for it."""
        segment = breach.get("segment")
        region = segment.get("region") if isinstance(segment, Mapping) else None
        return cls(
            service=_text(service) or _text(breach.get("service")),
            model_id=_text(breach.get("model_id")),
            environment=_text(breach.get("environment")),
            region=_text(region),
        )


def out_of_scope(change: Mapping[str, Any], scope: BreachScope) -> str | None:
    """Return why a change cannot have caused a breach in `scope`, or None when it could have."""
    service, model = _text(change.get("service")), _text(change.get("model_id"))
    if scope.service and service and service != scope.service:
        return f"another service ({service}, the breach is on {scope.service})"
    if not scope.service and scope.model_id and model != scope.model_id:
        return f"another model ({model or 'none named'}, the breach is on {scope.model_id})"
    environment = _text(change.get("environment"))
    if _differ(environment, scope.environment):
        return f"another environment ({environment}, the breach is in {scope.environment})"
    region = _text(change.get("region"))
    if _differ(region, scope.region):
        return f"another region ({region}, the breach is in {scope.region})"
    if scope.model_id and model and model != scope.model_id:
        return f"another model ({model}, the breach is on {scope.model_id})"
    return None


def _differ(one: str | None, other: str | None) -> bool:
    # Arize spells environments "production" and "PRODUCTION" alike.
    return bool(one and other and one.casefold() != other.casefold())


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
