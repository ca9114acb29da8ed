"""filter_log_events with pagination, and get_metric_data, on moto."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sandbox.aws import demo_log_lines
from tools.logs.cloudwatch_events import CloudWatchEventsLogSource
from tools.logs.cloudwatch_metrics import CloudWatchMetricSource, MetricSpec
from tools.protocols import LogQuery

GROUP = "/llm/gateway"
NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW = LogQuery(
    start=NOW - timedelta(minutes=30),
    end=NOW + timedelta(minutes=1),
    model_id="support-bot",
    model_version="v1",
)


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
        yield logs, boto3.client("cloudwatch", region_name="us-east-1")


def test_filter_log_events_follows_every_page(aws: tuple[Any, Any]) -> None:
    logs, _ = aws
    lines = demo_log_lines("support-bot", "v1", NOW) * 5  # 125 events, more than one page
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="s",
        logEvents=[
            {"timestamp": int(t.timestamp() * 1000) + i, "message": m}
            for i, (t, m) in enumerate(sorted(lines))
        ],
    )
    calls: list[str | None] = []
    logs.meta.events.register(
        "provide-client-params.logs.FilterLogEvents",
        lambda params, **_: calls.append(params.get("nextToken")),
    )

    result = CloudWatchEventsLogSource(logs, [GROUP]).search(
        LogQuery(
            start=WINDOW.start, end=WINDOW.end, model_id="support-bot", model_version="v1", limit=50
        )
    )

    assert result.status == "degraded"
    assert result.evidence["lines"] == 120  # the other model's lines are left out
    assert result.evidence["top_errors"][0]["count"] == 40
    assert result.asked["query"] == '"support-bot"'
    assert len(calls) > 1 and calls[0] is None and all(calls[1:])


def test_filter_log_events_on_a_missing_group_is_an_error_result(aws: tuple[Any, Any]) -> None:
    logs, _ = aws
    result = CloudWatchEventsLogSource(logs, ["/missing"]).search(WINDOW)
    assert result.status == "error"
    assert "ResourceNotFoundException" in (result.error or "")


def put_metric(cloudwatch: Any, name: str, values: list[float]) -> None:
    cloudwatch.put_metric_data(
        Namespace="LLM",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "model", "Value": "support-bot"}],
                "Timestamp": NOW - timedelta(minutes=10 - i),
                "Value": value,
            }
            for i, value in enumerate(values)
        ],
    )


def test_metrics_over_their_threshold_are_degraded(aws: tuple[Any, Any]) -> None:
    _, cloudwatch = aws
    put_metric(cloudwatch, "LatencyP95", [900, 1200, 4800])
    put_metric(cloudwatch, "ErrorRate", [0.01, 0.02])
    source = CloudWatchMetricSource(
        cloudwatch,
        [
            MetricSpec("LLM", "LatencyP95", "Maximum", {"model": "support-bot"}, threshold=2000),
            MetricSpec("LLM", "ErrorRate", "Maximum", {"model": "support-bot"}, threshold=0.05),
        ],
    )

    result = source.search(WINDOW)

    assert result.status == "degraded"
    assert result.summary == "LatencyP95 peaked at 4800 (> 2000)"
    assert [m["breached"] for m in result.evidence["metrics"]] == [True, False]
    assert source.check()[0] is True


def test_metrics_without_datapoints_are_no_data(aws: tuple[Any, Any]) -> None:
    _, cloudwatch = aws
    result = CloudWatchMetricSource(cloudwatch, [MetricSpec("LLM", "Nothing")]).search(WINDOW)
    assert result.status == "no_data"
