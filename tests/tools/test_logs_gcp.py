"""GCP Cloud Logging adapter: the real google-cloud-logging client against the sandbox emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials

from sandbox.gcp_logging import GcpLoggingState, create_gcp_logging_app
from sandbox.server import EmulatorServer
from tools.logs.gcp import GcpLogSource
from tools.protocols import LogQuery
from tools.retry import RetryPolicy

PROJECT = "sandbox-project"
NOW = datetime.now(UTC).replace(microsecond=0)
POD = {"type": "k8s_container", "labels": {"namespace_name": "serving", "container_name": "gw"}}


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[GcpLoggingState, str]]:
    state = GcpLoggingState(project=PROJECT)
    server = EmulatorServer(create_gcp_logging_app(state)).start()
    yield state, server.url
    server.stop()


@pytest.fixture
def emulator(running: tuple[GcpLoggingState, str]) -> tuple[GcpLoggingState, str]:
    running[0].reset()
    return running


def source(url: str, sleeps: list[float] | None = None, **changes: Any) -> GcpLogSource:
    options: dict[str, Any] = {
        "resource_type": "k8s_container",
        "resource_labels": {"namespace_name": "serving"},
        "credentials": AnonymousCredentials(),
        "api_endpoint": url,
        "timeout_seconds": 2.0,
        "retry_policy": RetryPolicy(attempts=3, base_seconds=0.01),
        "sleep": (sleeps if sleeps is not None else []).append,
    }
    options.update(changes)
    project = options.pop("project", PROJECT)
    return GcpLogSource(project, **options)


def window(**changes: Any) -> LogQuery:
    values: dict[str, Any] = {
        "start": NOW - timedelta(minutes=30),
        "end": NOW + timedelta(minutes=1),
        "model_id": "support-bot",
        "model_version": "v1",
    }
    values.update(changes)
    return LogQuery(**values)


def add(
    state: GcpLoggingState,
    minutes_ago: float,
    severity: str,
    model: str = "support-bot",
    **fields: Any,
) -> None:
    state.add_entry(
        timestamp=NOW - timedelta(minutes=minutes_ago),
        severity=severity,
        labels={"model_id": model, "model_version": "v1"},
        resource=fields.pop("resource", POD),
        **fields,
    )


def seed_incident(state: GcpLoggingState) -> None:
    for i in range(8):
        add(
            state,
            i + 1,
            "ERROR",
            text_payload=f"retrieval failed: vector store query timed out after {3000 + i} ms",
        )
    for i in range(3):
        add(state, i + 2, "CRITICAL", json_payload={"message": "upstream 503 from embeddings"})
    for i in range(10):
        add(state, i, "INFO", text_payload="completed", http_request={"latency": "0.4s"})
    for latency in ("4.2s", "2.5s"):
        add(
            state,
            3,
            "INFO",
            text_payload="completed",
            http_request={"latency": latency, "requestUrl": "/v1/chat", "status": 200},
        )
    add(state, 1, "ERROR", model="other-bot", text_payload="unrelated failure")
    add(state, 1, "ERROR", text_payload="other namespace failure", resource={"type": "global"})
    add(state, 120, "ERROR", text_payload="old failure before the window")


def test_errors_of_the_model_are_counted_grouped_and_slow_requests_shown(
    emulator: tuple[GcpLoggingState, str],
) -> None:
    state, url = emulator
    seed_incident(state)

    result = source(url).search(window())

    assert result.status == "degraded"
    assert result.evidence["error_lines"] == 11
    assert result.evidence["lines"] == 23
    assert result.evidence["top_errors"] == [
        {"count": 8, "message": "retrieval failed: vector store query timed out after 3000 ms"},
        {"count": 3, "message": "upstream 503 from embeddings"},
    ]
    slow = result.evidence["slow_requests"]
    assert (slow["count"], slow["max_seconds"]) == (2, 4.2)
    assert slow["examples"][0]["url"] == "/v1/chat"
    for absent in ("unrelated failure", "other namespace", "old failure"):
        assert absent not in json.dumps(result.evidence)
    assert "11 error entries" in result.summary and "2 slow request(s)" in result.summary


def test_healthy_entries_are_ok_and_nothing_is_no_data(
    emulator: tuple[GcpLoggingState, str],
) -> None:
    state, url = emulator
    adapter = source(url)
    assert adapter.search(window()).status == "no_data"

    add(state, 2, "WARNING", text_payload="slow tokenizer warm-up")
    result = adapter.search(window())

    assert result.status == "ok"
    assert (result.evidence["lines"], result.evidence["error_lines"]) == (1, 0)


def test_only_entries_inside_the_window_are_read(emulator: tuple[GcpLoggingState, str]) -> None:
    state, url = emulator
    query = window()
    for moment in (query.start - timedelta(seconds=1), query.end + timedelta(seconds=1)):
        state.add_entry(
            timestamp=moment,
            severity="ERROR",
            text_payload="outside",
            labels={"model_id": "support-bot", "model_version": "v1"},
            resource=POD,
        )
    assert source(url).search(query).status == "no_data"

    add(state, 5, "ERROR", text_payload="inside")
    result = source(url).search(query)

    assert result.evidence["error_lines"] == 1
    assert result.evidence["samples"][0]["message"] == "inside"


def test_sent_filter_is_exactly_the_adapters_with_an_explicit_window(
    emulator: tuple[GcpLoggingState, str],
) -> None:
    state, url = emulator

    result = source(url).search(window(path="/v1/chat"))

    sent = state.requests[0]
    assert sent["filter"] == result.asked["filter"]
    assert sent["orderBy"] == "timestamp desc"
    assert sent["resourceNames"] == [f"projects/{PROJECT}"]
    start = (NOW - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert f'timestamp>="{start}"' in sent["filter"]
    assert sent["filter"].count("timestamp") == 2
    assert 'httpRequest.requestUrl:"/v1/chat"' in sent["filter"]


def test_errors_are_read_across_pages_and_stop_at_the_limit(
    emulator: tuple[GcpLoggingState, str],
) -> None:
    state, url = emulator
    for i in range(30):
        add(state, i / 2, "ERROR", text_payload=f"boom {i}")

    full = source(url, page_size=7).search(window())
    pages = [r for r in state.requests if 'severity>="ERROR"' in r["filter"]]
    assert full.evidence["error_lines"] == 30
    assert len(pages) == 5 and all("pageToken" in r for r in pages[1:])

    state.requests.clear()
    capped = source(url, page_size=7).search(window(limit=10))
    pages = [r for r in state.requests if 'severity>="ERROR"' in r["filter"]]
    assert capped.evidence["error_lines"] == 10
    assert capped.evidence["error_lines_capped"] is True
    assert [r["pageSize"] for r in pages] == [7, 7]
    assert capped.evidence["samples"][0]["message"] == "boom 0"


def test_a_slow_answer_times_out_without_retrying(emulator: tuple[GcpLoggingState, str]) -> None:
    state, url = emulator
    state.delay_seconds = 1.0
    sleeps: list[float] = []

    result = source(url, sleeps, timeout_seconds=0.2).search(window())

    assert result.status == "error"
    assert "did not answer within 0.2 s" in result.summary
    assert result.latency_ms < 900
    assert sleeps == []


def test_429_is_retried_after_the_servers_retry_after(
    emulator: tuple[GcpLoggingState, str],
) -> None:
    state, url = emulator
    seed_incident(state)
    state.fail_next(429, retry_after=1)
    sleeps: list[float] = []

    result = source(url, sleeps).search(window())

    assert result.status == "degraded"
    assert result.evidence["error_lines"] == 11
    assert sleeps == [1.0]


def test_503_then_success_is_retried_with_backoff(emulator: tuple[GcpLoggingState, str]) -> None:
    state, url = emulator
    seed_incident(state)
    state.fail_next(503, times=2)
    sleeps: list[float] = []

    result = source(url, sleeps).search(window())

    assert result.status == "degraded"
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1] < 0.1


def test_persistent_5xx_gives_up_after_bounded_attempts(
    emulator: tuple[GcpLoggingState, str],
) -> None:
    state, url = emulator
    state.fail_next(500, times=10)

    result = source(url).search(window())

    assert result.status == "error"
    assert result.evidence["http_status"] == 500
    assert len(state.requests) == 3


@pytest.mark.parametrize(
    ("project", "fault", "status", "reason"),
    [
        (PROJECT, 400, 400, "injected fault"),
        ("someone-elses-project", None, 403, "does not have permission"),
    ],
)
def test_400_and_403_are_not_retried(
    emulator: tuple[GcpLoggingState, str],
    project: str,
    fault: int | None,
    status: int,
    reason: str,
) -> None:
    state, url = emulator
    if fault:
        state.fail_next(fault)
    sleeps: list[float] = []

    result = source(url, sleeps, project=project).search(window())

    assert result.status == "error"
    assert result.evidence["http_status"] == status
    assert reason in (result.error or "")
    assert len(state.requests) == 1 and sleeps == []


@pytest.mark.parametrize(
    "body",
    [b"<html>upstream proxy error</html>", b'{"entries":[{"textPayload":"no log name"}]}'],
)
def test_a_malformed_answer_is_an_error_result(
    emulator: tuple[GcpLoggingState, str], body: bytes
) -> None:
    state, url = emulator
    state.malformed_next(body)

    result = source(url).search(window())

    assert result.status == "error"
    assert result.summary == "Cloud Logging sent a malformed answer"
    assert len(state.requests) == 1


def test_an_unreachable_endpoint_is_down_and_fails_the_check() -> None:
    adapter = source("http://127.0.0.1:9")
    result = adapter.search(window())
    assert result.status == "down"
    assert result.error
    assert adapter.check()[0] is False


def test_check_passes_only_with_access_to_the_project(
    emulator: tuple[GcpLoggingState, str],
) -> None:
    _, url = emulator
    assert source(url).check() == (True, f"Cloud Logging answers for {PROJECT} (k8s_container)")
    ok, reason = source(url, project="other").check()
    assert ok is False and "403" in reason


def test_quotes_in_a_model_id_cannot_widen_the_filter(
    emulator: tuple[GcpLoggingState, str],
) -> None:
    state, url = emulator
    weird = 'bot" OR severity>="DEBUG'
    add(state, 1, "ERROR", model=weird, text_payload="the literal model")
    add(state, 1, "ERROR", model="support-bot", text_payload="another model")

    result = source(url).search(window(model_id=weird))

    assert [s["message"] for s in result.evidence["samples"]] == ["the literal model"]


def test_model_can_be_matched_in_the_json_payload(emulator: tuple[GcpLoggingState, str]) -> None:
    state, url = emulator
    for model in ("support-bot", "other-bot"):
        state.add_entry(
            timestamp=NOW - timedelta(minutes=1),
            severity="ERROR",
            json_payload={"model": model, "msg": f"{model} failed"},
            resource=POD,
        )

    result = source(url, model_field="jsonPayload.model").search(window(model_version=None))

    assert 'jsonPayload.model="support-bot"' in result.asked["filter"]
    assert result.evidence["top_errors"] == [{"count": 1, "message": "support-bot failed"}]


def test_a_bad_field_path_is_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="must be one of"):
        source("http://127.0.0.1:9", model_field="model")
