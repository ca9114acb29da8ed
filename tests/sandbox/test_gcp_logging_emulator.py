"""The Cloud Logging emulator applies the filter subset for real and refuses everything else."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox.gcp_logging import GcpLoggingState, create_gcp_logging_app
from sandbox.server import EmulatorServer
from tools.logs.gcp import GcpLogSource
from tools.protocols import LogQuery

PROJECT = "sandbox-project"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[GcpLoggingState, httpx.Client]]:
    state = GcpLoggingState(project=PROJECT)
    server = EmulatorServer(create_gcp_logging_app(state)).start()
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield state, client
    server.stop()


@pytest.fixture
def emulator(
    running: tuple[GcpLoggingState, httpx.Client],
) -> tuple[GcpLoggingState, httpx.Client]:
    state, http = running
    state.reset()
    pod = {"type": "k8s_container", "labels": {"namespace_name": "serving"}}
    for minute, severity, text, labels in (
        (1, "INFO", "request served", {"model_id": "support-bot"}),
        (2, "ERROR", "Vector store TIMEOUT", {"model_id": "support-bot"}),
        (3, "CRITICAL", "out of memory", {"model_id": "other-bot"}),
        (4, "WARNING", "retrying embeddings", {}),
    ):
        state.add_entry(
            timestamp=NOW - timedelta(minutes=minute),
            severity=severity,
            text_payload=text,
            labels=labels,
            resource=pod,
        )
    state.add_entry(timestamp=NOW - timedelta(minutes=5), json_payload={"msg": "no severity"})
    return state, http


def entries_list(http: httpx.Client, body: Any = None, **fields: Any) -> httpx.Response:
    payload = {"resourceNames": [f"projects/{PROJECT}"], **fields} if body is None else body
    return http.post("/v2/entries:list", json=payload)


def texts(http: httpx.Client, filter_: str, order: str = "timestamp desc") -> list[str]:
    answer = entries_list(http, filter=filter_, orderBy=order)
    assert answer.status_code == 200, answer.text
    return [e.get("textPayload", "json") for e in answer.json().get("entries", [])]


@pytest.mark.parametrize(
    ("filter_", "texts_found"),
    [
        ('severity>="ERROR"', ["Vector store TIMEOUT", "out of memory"]),
        ("severity<WARNING", ["request served", "json"]),
        ('labels.model_id="SUPPORT-BOT"', ["request served", "Vector store TIMEOUT"]),
        ('textPayload:"timeout"', ["Vector store TIMEOUT"]),
        ('NOT labels.model_id="support-bot"', ["out of memory", "retrying embeddings", "json"]),
        (
            'labels.model_id="other-bot" OR (severity=INFO AND textPayload=~"^req")',
            ["request served", "out of memory"],
        ),
        ("jsonPayload.msg:*", ["json"]),
        ('resource.labels."namespace_name"!="serving"', []),
        (
            f'timestamp>"{(NOW - timedelta(minutes=3)).isoformat()}"',
            ["request served", "Vector store TIMEOUT"],
        ),
    ],
)
def test_filters_are_applied_to_the_stored_entries(
    emulator: tuple[GcpLoggingState, httpx.Client], filter_: str, texts_found: list[str]
) -> None:
    _, http = emulator
    assert texts(http, filter_) == texts_found


def test_order_and_pages_cover_every_entry_once(
    emulator: tuple[GcpLoggingState, httpx.Client],
) -> None:
    _, http = emulator
    seen: list[str] = []
    token = None
    while True:
        extra = {"pageToken": token} if token else {}
        body = entries_list(http, orderBy="timestamp asc", pageSize=2, **extra).json()
        seen += [e["insertId"] for e in body.get("entries", [])]
        token = body.get("nextPageToken")
        if token is None:
            break
    assert seen == ["00000005", "00000004", "00000003", "00000002", "00000001"]
    assert texts(http, "")[0] == "request served"


@pytest.mark.parametrize(
    ("filter_", "named"),
    [
        ("severity>=ERROR && textPayload:x", "unsupported character '&'"),
        ("severity<>ERROR", "expected a value after '<', got '>'"),
        ("-severity>=ERROR", "'-' negation is not supported"),
        ("severity>=ERROR textPayload:x", "implicit AND before 'textPayload'"),
        ('sample(insertId, 0.1) AND severity>="ERROR"', "function sample() is not supported"),
        ('"timeout"', "global restriction 'timeout' is not supported"),
        ('resource.type=("a" OR "b")', "value lists in parentheses are not supported"),
        ('payload.model="x"', "unknown field 'payload'"),
        ("severity>=LOUD", "unknown severity 'LOUD'"),
        ('timestamp>="yesterday"', "timestamp 'yesterday' is not RFC 3339"),
        ('textPayload=~"("', "invalid regular expression"),
        ("(severity>=ERROR", "missing ')'"),
    ],
)
def test_filters_outside_the_subset_are_refused_naming_the_part(
    emulator: tuple[GcpLoggingState, httpx.Client], filter_: str, named: str
) -> None:
    _, http = emulator
    answer = entries_list(http, filter=filter_)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert named in error["message"]


def other_query_token(http: httpx.Client) -> str:
    return str(entries_list(http, pageSize=1, filter="severity>=INFO").json()["nextPageToken"])


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"resourceNames": None}, 400, "resourceNames is required"),
        ({"resourceNames": []}, 400, "resourceNames is required"),
        ({"resourceNames": ["organizations/1"]}, 400, "'organizations/1' is not supported"),
        ({"resourceNames": ["projects/elsewhere"]}, 403, "does not have permission"),
        ({"orderBy": "severity desc"}, 400, "orderBy 'severity desc' is invalid"),
        ({"pageSize": 5000}, 400, "pageSize 5000 must be between 0 and 1000"),
        ({"pageToken": "not-a-token"}, 400, "page_token is invalid"),
        ({"pageToken": "OTHER"}, 400, "page_token is invalid"),
        ({"projectIds": [PROJECT]}, 400, 'Unknown name "projectIds"'),
        ({"filter": "x" * 20_001}, 400, "at most 20000"),
        ([1, 2], 400, "Expected an object"),
    ],
)
def test_requests_outside_the_contract_are_refused(
    emulator: tuple[GcpLoggingState, httpx.Client], body: Any, status: int, named: str
) -> None:
    _, http = emulator
    if isinstance(body, dict):
        body = {"resourceNames": [f"projects/{PROJECT}"], **body}
        if body["resourceNames"] is None:
            del body["resourceNames"]
        if body.get("pageToken") == "OTHER":
            body["pageToken"] = other_query_token(http)
    answer = entries_list(http, body)
    assert answer.status_code == status
    assert named in answer.json()["error"]["message"]


def test_non_json_body_is_refused(emulator: tuple[GcpLoggingState, httpx.Client]) -> None:
    _, http = emulator
    answer = http.post("/v2/entries:list", content=b"{nope")
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Invalid JSON payload received."


def test_the_page_token_is_opaque_but_tied_to_its_query(
    emulator: tuple[GcpLoggingState, httpx.Client],
) -> None:
    _, http = emulator
    token = entries_list(http, pageSize=1).json()["nextPageToken"]
    forged = json.loads(base64.urlsafe_b64decode(token))
    forged["offset"] = -1
    bad = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
    assert entries_list(http, pageSize=1, pageToken=token).status_code == 200
    assert entries_list(http, pageSize=1, pageToken=bad).status_code == 400


def test_injected_faults_answer_in_googles_shape_then_clear(
    emulator: tuple[GcpLoggingState, httpx.Client],
) -> None:
    state, http = emulator
    state.fail_next(429, retry_after=3)
    state.malformed_next(b"not json")

    limited = entries_list(http)
    malformed = entries_list(http)

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert (malformed.status_code, malformed.content) == (200, b"not json")
    assert entries_list(http).status_code == 200
    assert len(state.requests) == 3


def test_the_adapters_filter_is_accepted_and_carries_an_explicit_window(
    emulator: tuple[GcpLoggingState, httpx.Client],
) -> None:
    _, http = emulator
    adapter = GcpLogSource(
        PROJECT,
        resource_type="k8s_container",
        resource_labels={"namespace_name": "serving"},
        entry_labels={"k8s-pod/app": "gateway"},
        api_endpoint=str(http.base_url),
        client_factory=lambda: pytest.fail("the filter is built without calling Cloud Logging"),
    )
    query = LogQuery(
        start=NOW - timedelta(minutes=30),
        end=NOW,
        model_id="support-bot",
        model_version="v1",
        path="/v1/chat",
    )

    for errors_only in (True, False):
        filter_ = adapter.build_filter(query, errors_only=errors_only)
        assert entries_list(http, filter=filter_).status_code == 200, filter_
        assert 'timestamp>="2026-03-01T11:30:00.000000Z"' in filter_
        assert 'timestamp<="2026-03-01T12:00:00.000000Z"' in filter_
        assert 'labels."k8s-pod/app"="gateway"' in filter_
        assert ('severity>="ERROR"' in filter_) is errors_only
