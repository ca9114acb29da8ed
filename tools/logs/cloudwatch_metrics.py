"""CloudWatch metrics (GetMetricData) as evidence: each catalogued metric against its threshold."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.protocols import LogQuery
from tools.result import Stopwatch, ToolResult, ToolStatus


@dataclass(frozen=True)
class MetricSpec:
    """One CloudWatch metric to read, and the value above which it counts as breached."""

    namespace: str
    name: str
    stat: str = "Average"
    dimensions: dict[str, str] = field(default_factory=dict)
    threshold: float | None = None
    period_seconds: int = 60


class CloudWatchMetricSource:
    """Read the catalogued metrics over the breach window with one get_metric_data call."""

    name = "cloudwatch_metrics"

    def __init__(self, client: Any, metrics: Sequence[MetricSpec]) -> None:
        self._client = client
        self._metrics = list(metrics)

    @property
    def source(self) -> str:
        """Return what this source reads, for people: `CloudWatch metrics LLMGateway`."""
        namespaces = ", ".join(dict.fromkeys(spec.namespace for spec in self._metrics))
        return f"CloudWatch metrics {namespaces}".rstrip()

    def check(self) -> tuple[bool, str]:
        """Confirm that CloudWatch answers list_metrics for the first metric's namespace."""
        if not self._metrics:
            return False, "no metrics configured"
        try:
            self._client.list_metrics(Namespace=self._metrics[0].namespace)
        except (BotoCoreError, ClientError) as exc:
            return False, f"CloudWatch unreachable: {exc}"
        return True, f"{len(self._metrics)} metric(s) configured"

    def search(self, query: LogQuery) -> ToolResult:
        """Return each metric's values in the window; degraded when one is over its threshold."""
        queries = [
            {
                "Id": f"m{index}",
                "Label": spec.name,
                "MetricStat": {
                    "Metric": {
                        "Namespace": spec.namespace,
                        "MetricName": spec.name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in spec.dimensions.items()],
                    },
                    "Period": spec.period_seconds,
                    "Stat": spec.stat,
                },
            }
            for index, spec in enumerate(self._metrics)
        ]
        asked = {
            "metrics": [f"{s.namespace}/{s.name} {s.stat}" for s in self._metrics],
            "start": query.start.isoformat(),
            "end": query.end.isoformat(),
        }
        watch = Stopwatch()
        try:
            answer = self._client.get_metric_data(
                MetricDataQueries=queries, StartTime=query.start, EndTime=query.end
            )
            results = {
                r["Id"]: [float(v) for v in r.get("Values", [])]
                for r in answer["MetricDataResults"]
            }
        except (BotoCoreError, ClientError) as exc:
            return ToolResult(
                tool=self.name,
                source=self.source,
                status=ToolStatus.error,
                asked=asked,
                summary="CloudWatch get_metric_data failed",
                error=str(exc)[:500],
                latency_ms=watch.ms,
            )
        except (KeyError, TypeError, ValueError) as exc:
            return ToolResult(
                tool=self.name,
                source=self.source,
                status=ToolStatus.error,
                asked=asked,
                summary="CloudWatch gave a malformed answer",
                error=f"{type(exc).__name__}: {exc}"[:500],
                latency_ms=watch.ms,
            )
        return self._judge(results, asked, watch.ms)

    def _judge(
        self, results: dict[str, list[float]], asked: dict[str, Any], ms: float
    ) -> ToolResult:
        evidence: dict[str, Any] = {"metrics": []}
        over = []
        for index, spec in enumerate(self._metrics):
            values = results.get(f"m{index}", [])
            peak = max(values) if values else None
            breached = spec.threshold is not None and peak is not None and peak > spec.threshold
            evidence["metrics"].append(
                {
                    "name": spec.name,
                    "stat": spec.stat,
                    "points": len(values),
                    "peak": peak,
                    "threshold": spec.threshold,
                    "breached": breached,
                }
            )
            if breached:
                over.append(f"{spec.name} peaked at {peak:g} (> {spec.threshold:g})")
        if not any(m["points"] for m in evidence["metrics"]):
            return ToolResult(
                tool=self.name,
                source=self.source,
                status=ToolStatus.no_data,
                asked=asked,
                evidence=evidence,
                latency_ms=ms,
                summary="no datapoints for the configured metrics in the window",
            )
        status = ToolStatus.degraded if over else ToolStatus.ok
        summary = "; ".join(over) if over else "every configured metric within its threshold"
        return ToolResult(
            tool=self.name,
            source=self.source,
            status=status,
            asked=asked,
            evidence=evidence,
            latency_ms=ms,
            summary=re.sub(r"\s+", " ", summary),
        )
