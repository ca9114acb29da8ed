"""CloudWatch Logs Insights adapter on moto (wiring) and botocore's Stubber (query states)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber
from moto import mock_aws

from sandbox.aws import demo_log_lines, start_moto
from sandbox.fault_proxy import FaultProxyState, create_fault_proxy
from sandbox.server import EmulatorServer
from tools.logs.cloudwatch_insights import CloudWatchLogSource
from tools.protocols import LogQuery

GROUP = "/llm/gateway"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def logs() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=GROUP)
        client.create_log_stream(logGroupName=GROUP, logStreamName="s")
        yield client


def put(client: Any, lines: list[tuple[datetime, str]]) -> None:
    client.put_log_events(
        logGroupName=GROUP,
        logStreamName="s",
        logEvents=[
            {"timestamp": int(t.timestamp() * 1000), "message": m} for t, m in sorted(lines)
        ],
    )


def window(model: str | None = "support-bot", version: str | None = "v1") -> LogQuery:
    return LogQuery(
        start=NOW - timedelta(minutes=30),
        end=NOW + timedelta(minutes=1),
        model_id=model,
        model_version=version,
    )


def test_errors_of_the_model_are_counted_and_grouped(logs: Any) -> None:
    put(logs, demo_log_lines("support-bot", "v1", NOW))

    result = CloudWatchLogSource(logs, [GROUP]).search(window())

    assert result.status == "degraded"
    assert result.evidence["lines"] == 24
    assert result.evidence["error_lines"] == 11
    top = result.evidence["top_errors"]
    assert top[0] == {
        "count": 8,
        "message": "retrieval failed: vector store query timed out after 3000 ms",
    }
    assert top[1]["message"] == "upstream 503 from embeddings service"
    assert "unrelated failure" not in json.dumps(result.evidence)
    assert "filter @message like 'support-bot'" in result.asked["query"]


def test_healthy_logs_are_ok(logs: Any) -> None:
    put(logs, [(NOW - timedelta(minutes=1), "support-bot v1 completed in 900 ms")])
    result = CloudWatchLogSource(logs, [GROUP]).search(window())
    assert result.status == "ok"
    assert result.evidence["error_lines"] == 0


def test_no_lines_for_the_model_is_no_data(logs: Any) -> None:
    put(logs, [(NOW - timedelta(minutes=1), "other-bot v1 ERROR boom")])
    assert CloudWatchLogSource(logs, [GROUP]).search(window()).status == "no_data"


def test_lines_outside_the_window_are_not_read(logs: Any) -> None:
    put(logs, [(NOW - timedelta(hours=2), "support-bot v1 ERROR old failure")])
    assert CloudWatchLogSource(logs, [GROUP]).search(window()).status == "no_data"


def test_unsafe_model_names_are_matched_on_our_side_only(logs: Any) -> None:
    put(logs, [(NOW - timedelta(minutes=1), "model='x' | y ERROR injected")])
    result = CloudWatchLogSource(logs, [GROUP]).search(window(model="'x' | y", version=None))
    assert "injected" not in result.asked["query"]
    assert result.status == "degraded"


def test_missing_log_group_is_an_error_result_and_fails_the_check(logs: Any) -> None:
    source = CloudWatchLogSource(logs, ["/does/not/exist"])
    result = source.search(window())
    assert result.status == "error"
    assert "ResourceNotFoundException" in (result.error or "")
    assert source.check() == (False, "log group /does/not/exist not found")
    assert CloudWatchLogSource(logs, [GROUP]).check()[0] is True


def test_a_query_still_running_at_the_deadline_is_stopped_and_reported() -> None:
    client = boto3.client("logs", region_name="us-east-1")
    ticks = iter(range(100))
    with Stubber(client) as stub:
        stub.add_response(
            "start_query",
            {"queryId": "q-1"},
            {
                "logGroupNames": [GROUP],
                "startTime": ANY,
                "endTime": ANY,
                "queryString": ANY,
                "limit": 200,
            },
        )
        # Polled at t=1 (before the 2 s deadline) and t=2 (at it), then stopped.
        for _ in range(2):
            stub.add_response(
                "get_query_results", {"status": "Running", "results": []}, {"queryId": "q-1"}
            )
        stub.add_response("stop_query", {"success": True}, {"queryId": "q-1"})
        source = CloudWatchLogSource(
            client,
            [GROUP],
            timeout_seconds=2,
            sleep=lambda _: None,
            monotonic=lambda: float(next(ticks)),
        )

        result = source.search(window())

        stub.assert_no_pending_responses()
    assert result.status == "error"
    assert result.summary == "CloudWatch Logs query ended Timeout"


def test_a_failed_query_is_an_error_result() -> None:
    client = boto3.client("logs", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("start_query", {"queryId": "q-2"})
        stub.add_response("get_query_results", {"status": "Failed", "results": []})
        result = CloudWatchLogSource(client, [GROUP]).search(window())
    assert result.status == "error"
    assert "Failed" in result.summary


@pytest.fixture(scope="module")
def proxied() -> Iterator[tuple[Any, FaultProxyState]]:
    """A logs client that talks to moto's server through a fault-injecting proxy."""
    server, url = start_moto()
    state = FaultProxyState(upstream=url)
    proxy = EmulatorServer(create_fault_proxy(state)).start()
    client = boto3.client(
        "logs",
        region_name="us-east-1",
        endpoint_url=proxy.url,
        config=Config(
            retries={"mode": "standard", "max_attempts": 3}, read_timeout=2, connect_timeout=2
        ),
    )
    client.create_log_group(logGroupName=GROUP)
    client.create_log_stream(logGroupName=GROUP, logStreamName="s")
    put(client, [(NOW - timedelta(minutes=1), "support-bot v1 ERROR upstream 503")])
    yield client, state
    proxy.stop()
    server.stop()


THROTTLED = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
UNAVAILABLE = b'{"__type":"ServiceUnavailableException","message":"try again"}'
DENIED = b'{"__type":"AccessDeniedException","message":"not allowed"}'


@pytest.mark.parametrize(("status", "body"), [(400, THROTTLED), (503, UNAVAILABLE), (500, b"{}")])
def test_throttling_and_5xx_are_retried_by_the_sdk_then_succeed(
    proxied: tuple[Any, FaultProxyState], status: int, body: bytes
) -> None:
    client, state = proxied
    state.fail_next(status, body, times=2)
    before = state.faulted

    result = CloudWatchLogSource(client, [GROUP]).search(window())

    assert result.status == "degraded"
    assert state.faulted - before == 2


def test_access_denied_is_not_retried(proxied: tuple[Any, FaultProxyState]) -> None:
    client, state = proxied
    state.fail_next(400, DENIED, times=3)
    before = state.faulted

    result = CloudWatchLogSource(client, [GROUP]).search(window())

    assert result.status == "error" and "AccessDeniedException" in (result.error or "")
    assert state.faulted - before == 1
    state.faults.clear()


def test_a_malformed_answer_is_an_error_result(proxied: tuple[Any, FaultProxyState]) -> None:
    client, state = proxied
    state.fail_next(200, b"<html>gateway error</html>", times=1)

    result = CloudWatchLogSource(client, [GROUP]).search(window())

    assert result.status == "error"
