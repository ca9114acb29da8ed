"""What the vector DB probes share: bounded retried calls and the report of their attempts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import RetryPolicy

T = TypeVar("T")

ERROR_TEXT_LIMIT = 300

DEFAULT_POLICY = RetryPolicy(attempts=3, base_seconds=0.2, max_seconds=2.0)


class Attempts(Generic[T]):
    """Wrap a call to count its attempts and time the last one."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self.count = 0
        self.last_ms = 0.0

    def __call__(self) -> T:
        self.count += 1
        watch = Stopwatch()
        try:
            return self._call()
        finally:
            self.last_ms = watch.ms


class ProbeReport:
    """What a probe asked and found so far; `finish` turns it into the probe's ToolResult."""

    def __init__(self, tool: str, **asked: Any) -> None:
        self.tool = tool
        self.asked = asked
        self.evidence: dict[str, Any] = {}
        self._watch = Stopwatch()

    def finish(self, status: ToolStatus, summary: str, error: str | None = None) -> ToolResult:
        """Return the result with the latency of the whole probe."""
        return ToolResult(
            tool=self.tool,
            status=status,
            summary=summary,
            asked=self.asked,
            evidence=self.evidence,
            latency_ms=self._watch.ms,
            error=error,
        )


def short(value: object) -> str:
    return " ".join(str(value).split())[:ERROR_TEXT_LIMIT]
