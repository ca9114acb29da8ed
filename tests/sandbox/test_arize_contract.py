"""The Arize emulator driven by the real SDK (`arize` 8.61.0): if the emulator drifts from the
wire contract the SDK speaks (paths, ids, enums, errors, pagination), these fail.

No test patches the SDK: it is pointed at the emulator with its own settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.arize import ArizeState, create_arize_app
from sandbox.arize.ids import IdMinter, decode
from sandbox.server import EmulatorServer
from tools.arize.client import ArizeConnection, generated_api_client, load_sdk, make_client
from tools.arize.monitors import ArizeMonitors, is_monitor_id
from tools.result import ToolStatus

KEY = "ak-test-0123456789"
EU_FILTER = {
    "dimension": {"category": "SPAN_ATTRIBUTE", "name": "region"},
    "operator": "EQUALS",
    "values": ["eu-west-1"],
}


@pytest.fixture(scope="module")
def arize() -> Iterator[tuple[ArizeState, EmulatorServer]]:
    state = ArizeState(api_keys={KEY})
    server = EmulatorServer(create_arize_app(state)).start()
    yield state, server
    server.stop()


@pytest.fixture
def state(arize: tuple[ArizeState, EmulatorServer]) -> Iterator[ArizeState]:
    state = arize[0]
    yield state
    with state.lock:
        state.faults.clear()


def connection(server: EmulatorServer, state: ArizeState, key: str = KEY) -> ArizeConnection:
    return ArizeConnection(
        api_key=key, host=server.host, scheme="http", port=server.port, space_id=state.space_id
    )


@pytest.fixture(scope="module")
def apis(arize: tuple[ArizeState, EmulatorServer]) -> tuple[Any, Any]:
    state, server = arize
    sdk = load_sdk()
    client = generated_api_client(make_client(connection(server, state)))
    api = sdk._generated.api_client.api
    return api.MonitorsApi(client), api.TagsApi(client)


def latency_monitor(state: ArizeState, name: str = "support-bot p95 latency", **fields: Any) -> str:
    values: dict[str, Any] = {
        "metric": "P95",
        "dimension": {"category": "SPAN_ATTRIBUTE", "name": "latency_ms"},
        "threshold": {"type": "MANUAL_SINGLE", "operator": "GREATER_THAN", "value": 2000},
        "latest_computed_value": 4870.5,
        "evaluated_at": "2026-11-27T02:00:00Z",
        "filters": [EU_FILTER],
    }
    values.update(fields)
    return state.add_monitor(name, type="TRACING", **values)


def requests_to(state: ArizeState, path: str) -> list[dict[str, Any]]:
    return [r for r in state.snapshot()["requests"] if r["path"] == path]


def test_minted_ids_are_padded_base64_of_kind_number_suffix_without_slash_or_plus() -> None:
    minter = IdMinter()
    ids = [minter.mint("Monitor") for _ in range(300)]
    assert all("/" not in i and "+" not in i for i in ids)
    assert all(len(i) % 4 == 0 for i in ids)
    assert all(decode(i) is not None and decode(i)[0] == "Monitor" for i in ids)  # type: ignore[index]
    assert all(is_monitor_id(i) for i in ids)
    assert not is_monitor_id("mon-support-bot-latency-p95")


def test_get_monitor_reads_every_field_the_sdk_knows(state: ArizeState, apis: Any) -> None:
    monitor_id = latency_monitor(state)
    monitors, _ = apis

    answer = monitors.get_monitor_with_http_info(monitor_id, _request_timeout=5.0)

    monitor = answer.data.actual_instance
    assert type(monitor).__name__ == "TracingMonitor"
    assert monitor.status.value == "TRIGGERED"
    assert monitor.latest_computed_value == 4870.5
    assert monitor.evaluated_at.isoformat() == "2026-11-27T02:00:00+00:00"
    assert monitor.uri.endswith(monitor_id)
    assert monitor.threshold.actual_instance.value == 2000
    assert monitor.filters[0].dimension.name == "region"
    # to_dict() drops the read-only fields: the adapter reads attributes (or the raw JSON).
    assert b'"latest_computed_value":4870.5' in answer.raw_data
    # The SDK sends the id's padding percent-encoded; the emulator reads it decoded.
    [request] = requests_to(state, f"/v2/monitors/{monitor_id}")
    assert monitor_id.endswith("=") and "%3D" in request["raw_path"]


def test_list_monitors_pages_with_a_cursor_and_filters_by_status(
    state: ArizeState, apis: Any
) -> None:
    monitors, _ = apis
    ids = [
        state.add_monitor(f"paged-{n}", type="DRIFT", status="NO_DATA", metric="PSI")
        for n in range(3)
    ]
    sdk_models = load_sdk()._generated.api_client.models

    first = monitors.list_monitors(
        status=sdk_models.MonitorStatus.NO_DATA, name="paged-", limit=2, _request_timeout=5.0
    )
    second = monitors.list_monitors(
        status=sdk_models.MonitorStatus.NO_DATA,
        name="paged-",
        limit=2,
        cursor=first.pagination.next_cursor,
        _request_timeout=5.0,
    )

    assert first.pagination.has_more is True and first.pagination.next_cursor
    assert second.pagination.has_more is False and second.pagination.next_cursor is None
    seen = [m.actual_instance.id for m in first.monitors + second.monitors]
    assert seen == list(reversed(ids))  # newest first, each once


def test_a_malformed_or_unknown_id_is_a_problem_the_sdk_raises(
    state: ArizeState, apis: Any
) -> None:
    monitors, _ = apis
    sdk = load_sdk()
    unknown = IdMinter(start=90_000).mint("Monitor")

    with pytest.raises(sdk._generated.api_client.exceptions.NotFoundException) as missing:
        monitors.get_monitor(unknown, _request_timeout=5.0)
    with pytest.raises(sdk._generated.api_client.exceptions.BadRequestException):
        monitors.list_monitors(space_id="not-an-id", _request_timeout=5.0)

    problem = missing.value.data or missing.value.body
    text = problem if isinstance(problem, str) else str(problem)
    assert "not found" in text.lower()
    assert missing.value.headers["content-type"].startswith("application/problem+json")


def test_tags_are_created_once_attached_idempotently_and_detached(
    state: ArizeState, apis: Any
) -> None:
    monitors, tags = apis
    models = load_sdk()._generated.api_client.models
    exceptions = load_sdk()._generated.api_client.exceptions
    monitor_id = latency_monitor(state)

    tag = tags.create_tag(
        models.CreateTagRequest(name="remediator-incident-abc", space_id=state.space_id),
        _request_timeout=5.0,
    )
    with pytest.raises(exceptions.ConflictException):
        tags.create_tag(
            models.CreateTagRequest(name="REMEDIATOR-incident-ABC", space_id=state.space_id),
            _request_timeout=5.0,
        )
    for _ in range(2):
        listed = monitors.add_monitor_tags(
            monitor_id, models.AddTagsRequest(tag_ids=[tag.id]), _request_timeout=5.0
        )
    assert [t.name for t in listed.tags] == ["remediator-incident-abc"]
    removed = monitors.remove_monitor_tags(
        monitor_id, models.RemoveTagsRequest(tag_ids=[tag.id]), _request_timeout=5.0
    )
    again = monitors.remove_monitor_tags(
        monitor_id, models.RemoveTagsRequest(tag_ids=[tag.id]), _request_timeout=5.0
    )

    assert removed.completed is True and removed.deleted == [tag.id]
    assert again.completed is False and again.not_deleted == [tag.id]
    assert state.tag_names(monitor_id) == []


def test_a_wrong_key_is_401_and_no_key_too(arize: tuple[ArizeState, EmulatorServer]) -> None:
    state, server = arize
    monitor_id = latency_monitor(state)
    adapter = ArizeMonitors(connection(server, state, key="ak-wrong"), deadline_seconds=5)

    ok, detail = adapter.check()
    result = adapter.get_monitor(monitor_id)
    bare = httpx.get(f"{server.url}/v2/monitors/{monitor_id}")

    assert not ok and "refused the API key (401" in detail
    assert result.status == ToolStatus.error and result.error == "auth"
    assert bare.status_code == 401 and bare.json()["title"] == "Unauthorized"


@pytest.mark.parametrize(
    ("status", "tool_status", "code"),
    [
        (429, ToolStatus.degraded, "rate_limited"),
        (500, ToolStatus.down, "server_error"),
        (503, ToolStatus.down, "server_error"),
    ],
)
def test_errors_become_tool_results_and_are_not_retried(
    arize: tuple[ArizeState, EmulatorServer],
    state: ArizeState,
    status: int,
    tool_status: ToolStatus,
    code: str,
) -> None:
    _, server = arize
    monitor_id = latency_monitor(state)
    adapter = ArizeMonitors(connection(server, state), deadline_seconds=5)
    state.fail_next(status, path_prefix=f"/v2/monitors/{monitor_id}")

    result = adapter.get_monitor(monitor_id)
    after = adapter.get_monitor(monitor_id)

    assert (result.status, result.error) == (tool_status, code)
    assert str(status) in result.summary
    assert after.status == ToolStatus.ok  # one fault, one answer: the SDK did not retry
    assert len(requests_to(state, f"/v2/monitors/{monitor_id}")) == 2


def test_a_429_with_retry_after_is_waited_out_by_urllib3_so_our_deadline_ends_it(
    arize: tuple[ArizeState, EmulatorServer], state: ArizeState
) -> None:
    # urllib3 honours Retry-After on 413/429/503 (it sleeps, then sends again): a rate limit
    # with that header would hold the call for as long as Arize asks, but not past our deadline.
    _, server = arize
    monitor_id = latency_monitor(state)
    adapter = ArizeMonitors(connection(server, state), deadline_seconds=0.5)
    adapter.warm_up(wait=True)
    state.fail_next(429, retry_after=3, path_prefix=f"/v2/monitors/{monitor_id}")

    result = adapter.get_monitor(monitor_id)

    assert (result.status, result.error) == (ToolStatus.down, "deadline")


def test_a_slow_answer_meets_our_deadline_not_the_sdks(
    arize: tuple[ArizeState, EmulatorServer], state: ArizeState
) -> None:
    _, server = arize
    monitor_id = latency_monitor(state)
    adapter = ArizeMonitors(connection(server, state), deadline_seconds=0.3)
    adapter.warm_up(wait=True)
    state.slow_next(2.0, times=4, path_prefix=f"/v2/monitors/{monitor_id}")

    result = adapter.get_monitor(monitor_id)

    assert result.status == ToolStatus.down and result.error == "deadline"
    assert "within 0.3s" in result.summary


def test_the_sdk_retries_a_timed_out_get_and_ends_in_max_retry_error(
    state: ArizeState, apis: Any
) -> None:
    from urllib3.exceptions import MaxRetryError

    monitors, _ = apis
    monitor_id = latency_monitor(state)
    state.slow_next(1.0, times=4, path_prefix=f"/v2/monitors/{monitor_id}")

    with pytest.raises(MaxRetryError):
        monitors.get_monitor(monitor_id, _request_timeout=(0.2, 0.2))

    assert len(requests_to(state, f"/v2/monitors/{monitor_id}")) == 4


def test_an_unknown_enum_is_refused_by_the_sdk_and_fails_the_whole_page(
    arize: tuple[ArizeState, EmulatorServer], state: ArizeState, apis: Any
) -> None:
    _, server = arize
    monitors, _ = apis
    monitor_id = latency_monitor(state, name="muted-one")
    state.set_raw(monitor_id, "status", "MUTED")
    adapter = ArizeMonitors(connection(server, state), deadline_seconds=5)

    with pytest.raises(ValueError):
        monitors.get_monitor(monitor_id, _request_timeout=5.0)
    with pytest.raises(ValueError):
        monitors.list_monitors(name="muted-one", _request_timeout=5.0)
    result = adapter.get_monitor(monitor_id)

    assert result.status == ToolStatus.error and result.error == "unreadable"
    state.set_raw(monitor_id, "status", "CLEARED")  # the module's other lists stay readable


def test_the_emulator_never_stages_what_the_api_would_not_return(
    arize: tuple[ArizeState, EmulatorServer], state: ArizeState
) -> None:
    _, server = arize
    monitor_id = latency_monitor(state)
    control = f"{server.url}/_sandbox/monitors/{monitor_id}"
    auth = {"Authorization": f"Bearer {KEY}"}

    assert httpx.patch(control, json={"status": "MUTED"}).status_code == 400
    assert httpx.patch(control, json={"metric": "PSI"}).status_code == 400  # not a tracing one
    assert httpx.patch(control, json={"model_versions": ["v1"]}).status_code == 400
    bad_body = httpx.post(
        f"{server.url}/v2/monitors/{monitor_id}/tags", json={"tags": ["x"]}, headers=auth
    )
    assert bad_body.status_code == 400 and "Unrecognized fields: tags" in bad_body.json()["detail"]
    assert httpx.patch(control, json={"status": "CLEARED"}).json()["status"] == "CLEARED"


def test_the_adapter_reads_a_monitor_as_the_agent_uses_it(
    arize: tuple[ArizeState, EmulatorServer], state: ArizeState
) -> None:
    _, server = arize
    monitor_id = state.add_monitor(
        "answer quality",
        type="PERFORMANCE",
        metric="ACCURACY",
        threshold={"type": "MANUAL_SINGLE", "operator": "LESS_THAN", "value": 0.8},
        latest_computed_value=0.61,
        evaluated_at="2026-11-27T02:00:00Z",
        model_versions=["2026-11-20"],
        filters=[
            EU_FILTER,
            {
                "dimension": {"category": "FEATURE_LABEL", "name": "tier"},
                "operator": "NOT_EQUALS",
                "values": ["free"],
            },
        ],
    )
    adapter = ArizeMonitors(connection(server, state), deadline_seconds=5)

    result = adapter.get_monitor(monitor_id)

    reading = result.evidence["monitor"]
    assert result.status == ToolStatus.ok
    assert reading["status"] == "TRIGGERED" and reading["metric"] == "ACCURACY"
    assert (reading["operator"], reading["threshold"]) == ("<", 0.8)
    assert reading["latest_computed_value"] == 0.61
    assert reading["evaluated_at"] == "2026-11-27T02:00:00+00:00"
    assert reading["segment"] == {"region": "eu-west-1", "tier": "NOT_EQUALS free"}
    assert reading["model_versions"] == ["2026-11-20"]
    assert reading["uri"].endswith(monitor_id)
    assert result.evidence["raw"]["id"] == monitor_id


def test_a_name_is_not_read_as_an_id(
    arize: tuple[ArizeState, EmulatorServer], state: ArizeState
) -> None:
    _, server = arize
    adapter = ArizeMonitors(connection(server, state), deadline_seconds=5)
    before = len(state.snapshot()["requests"])

    result = adapter.get_monitor("support-bot p95 latency")

    assert result.error == "not_an_id"
    assert len(state.snapshot()["requests"]) == before


def test_a_scheme_in_the_host_is_refused() -> None:
    with pytest.raises(ValueError, match="without a scheme"):
        ArizeConnection(api_key=KEY, host="http://api.arize.com")


def test_bad_input_to_the_emulator_is_a_4xx_never_a_5xx(
    arize: tuple[ArizeState, EmulatorServer], state: ArizeState
) -> None:
    _, server = arize
    auth = {"Authorization": f"Bearer {KEY}"}

    no_route = httpx.get(f"{server.url}/v2/monitors/a%2Fb/tags/x", headers=auth)
    wrong_method = httpx.put(f"{server.url}/v2/tags", headers=auth)
    bad_limit = httpx.get(f"{server.url}/v2/monitors", params={"limit": "0"}, headers=auth)
    bad_cursor = httpx.get(f"{server.url}/v2/monitors", params={"cursor": "x"}, headers=auth)
    bad_fault = httpx.post(f"{server.url}/_sandbox/faults", json={"delay_seconds": "soon"})
    not_json = httpx.post(f"{server.url}/v2/tags", content=b"{", headers=auth)

    assert no_route.status_code == 404 and no_route.json()["status"] == 404
    assert wrong_method.status_code == 405 and wrong_method.json()["title"]
    assert bad_limit.status_code == 400 and bad_cursor.status_code == 400
    assert bad_fault.status_code == 400
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["detail"]
