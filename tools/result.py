"""The structured answer every tool gives, whatever happened outside."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ToolStatus(StrEnum):
    """How the outside system looked: healthy, impaired, unreachable, silent, or the call failed."""

    ok = "ok"
    degraded = "degraded"
    down = "down"
    no_data = "no_data"
    error = "error"


class ToolResult(BaseModel):
    """What a tool was asked, what it found, and how long it took."""

    tool: str
    status: ToolStatus
    summary: str
    source: str | None = None
    """Where it read, for people: `CloudWatch /llm/gateway`, `GCP acme-prod (k8s_container)`."""
    asked: dict[str, Any] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict)
    latency_ms: float = 0.0
    error: str | None = None

    def audit_data(self) -> dict[str, Any]:
        """Return this result as audit event data, with a one-line summary first."""
        data = self.model_dump(mode="json")
        data["summary"] = f"{self.tool}: {self.status} — {self.summary}"
        return data


class Stopwatch:
    """Measure a call's latency in milliseconds on the monotonic clock."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    @property
    def ms(self) -> float:
        """Return the milliseconds elapsed since creation, rounded to 0.1 ms."""
        return round((time.perf_counter() - self._start) * 1000, 1)
