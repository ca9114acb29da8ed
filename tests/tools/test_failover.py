"""Failover backends: SSM on moto, the gateway through its emulator, and the local routing file."""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from sandbox.gateway import GatewayState, create_gateway_app
from sandbox.server import EmulatorServer
from tools.failover.document import route_to_json
from tools.failover.file import FileFailoverBackend
from tools.failover.gateway import GatewayFailoverBackend
from tools.failover.ssm import MAX_VALUE_CHARS, SsmFailoverBackend, make_ssm_client
from tools.protocols import FailoverBackend, Route

SERVICE = "support-bot"
PRIMARY = Route("openai", "gpt-4o", "us-east-1")
BACKUP = Route("openai", "gpt-4o", "eu-west-1")
FALLBACK = Route("anthropic", "claude-sonnet", None, {"max_tokens": 1024})
TOKEN = "sk-admin-test"
PARAMETER = f"/remediator/routes/{SERVICE}"


@dataclass
class Harness:
    """A backend seeded with PRIMARY for SERVICE, and a count of the changes its store saw."""

    backend: FailoverBackend
    changes: Callable[[], int]


@pytest.fixture(scope="module")
def ssm_client() -> Any:
    # Building a client is the slow part; moto intercepts it in each test's own mock_aws.
    return make_ssm_client("us-east-1")


@pytest.fixture
def ssm(ssm_client: Any) -> Iterator[Any]:
    with mock_aws():
        yield ssm_client


def start_gateway() -> tuple[GatewayState, EmulatorServer]:
    state = GatewayState(admin_token=TOKEN, routes={SERVICE: route_to_json(PRIMARY)})
    return state, EmulatorServer(create_gateway_app(state)).start()


@pytest.fixture(scope="module")
def shared_gateway() -> Iterator[tuple[GatewayState, str]]:
    state, server = start_gateway()
    yield state, server.url
    server.stop()


@pytest.fixture
def gateway(shared_gateway: tuple[GatewayState, str]) -> tuple[GatewayState, str]:
    state, url = shared_gateway
    state.reset({SERVICE: route_to_json(PRIMARY)})
    return state, url


def gateway_backend(url: str, *, token: str = TOKEN, **options: Any) -> GatewayFailoverBackend:
    options.setdefault("sleep", lambda _: None)
    return GatewayFailoverBackend(url, token, **options)


@pytest.fixture(params=["ssm", "file", "gateway"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if request.param == "ssm":
        client = request.getfixturevalue("ssm")
        ssm_backend = SsmFailoverBackend(client)
        assert ssm_backend.seed(SERVICE, PRIMARY).status == "ok"
        # Seeding made version 1; each change since adds one.
        return Harness(
            ssm_backend,
            lambda: int(client.get_parameter(Name=PARAMETER)["Parameter"]["Version"]) - 1,
        )
    if request.param == "file":
        path = tmp_path / "routes.json"
        file_backend = FileFailoverBackend(path)
        assert file_backend.seed(SERVICE, PRIMARY).status == "ok"
        return Harness(
            file_backend, lambda: json.loads(path.read_text())["services"][SERVICE]["version"] - 1
        )
    state, url = request.getfixturevalue("gateway")
    return Harness(gateway_backend(url), lambda: len(state.changes(SERVICE)))


def route_now(backend: FailoverBackend) -> dict[str, Any]:
    result = backend.current(SERVICE)
    assert result.status == "ok", result
    return dict(result.evidence["route"])


def test_current_reads_the_active_route(harness: Harness) -> None:
    result = harness.backend.current(SERVICE)

    assert result.status == "ok"
    assert result.evidence["route"] == route_to_json(PRIMARY)
    assert harness.backend.check()[0] is True


def test_switch_changes_the_route_and_confirms_it_by_reading_back(harness: Harness) -> None:
    result = harness.backend.switch(SERVICE, BACKUP, idempotency_key="inc-1/failover")

    assert result.status == "ok", result
    assert result.evidence["previous"] == route_to_json(PRIMARY)
    assert result.evidence["new"] == route_to_json(BACKUP)
    assert (result.evidence["confirmed"], result.evidence["changed"]) == (True, True)
    assert result.evidence["repeated"] is False
    assert route_now(harness.backend) == route_to_json(BACKUP)
    assert harness.changes() == 1


def test_switch_repeated_with_the_same_key_changes_nothing_and_keeps_the_previous(
    harness: Harness,
) -> None:
    first = harness.backend.switch(SERVICE, FALLBACK, idempotency_key="inc-1/failover")
    again = harness.backend.switch(SERVICE, FALLBACK, idempotency_key="inc-1/failover")

    assert (first.status, again.status) == ("ok", "ok")
    assert again.evidence["repeated"] is True
    assert again.evidence["changed"] is False
    assert again.evidence["previous"] == route_to_json(PRIMARY)
    assert again.evidence["confirmed"] is True
    assert harness.changes() == 1


def test_the_same_key_for_another_target_is_refused(harness: Harness) -> None:
    harness.backend.switch(SERVICE, BACKUP, idempotency_key="inc-1/failover")

    result = harness.backend.switch(SERVICE, FALLBACK, idempotency_key="inc-1/failover")

    assert result.status == "error"
    assert route_now(harness.backend) == route_to_json(BACKUP)
    assert harness.changes() == 1


def test_another_key_while_already_on_the_target_is_a_reported_no_op(harness: Harness) -> None:
    harness.backend.switch(SERVICE, BACKUP, idempotency_key="inc-1/failover")

    result = harness.backend.switch(SERVICE, BACKUP, idempotency_key="inc-2/failover")

    assert result.status == "ok"
    assert (result.evidence["changed"], result.evidence["repeated"]) == (False, False)
    assert "already routes to openai/gpt-4o@eu-west-1" in result.summary
    assert harness.changes() == 1


def test_restore_puts_back_the_route_before_the_switch_once(harness: Harness) -> None:
    harness.backend.switch(SERVICE, FALLBACK, idempotency_key="inc-1/failover")

    restored = harness.backend.restore(SERVICE, idempotency_key="inc-1/failover")
    again = harness.backend.restore(SERVICE, idempotency_key="inc-1/failover")

    assert restored.status == "ok", restored
    assert restored.evidence["new"] == route_to_json(PRIMARY)
    assert restored.evidence["previous"] == route_to_json(FALLBACK)
    assert (restored.evidence["changed"], restored.evidence["confirmed"]) == (True, True)
    assert again.status == "ok"
    assert (again.evidence["repeated"], again.evidence["changed"]) == (True, False)
    assert route_now(harness.backend) == route_to_json(PRIMARY)
    assert harness.changes() == 2


def test_restore_without_a_prior_switch_is_an_error_with_the_reason(harness: Harness) -> None:
    result = harness.backend.restore(SERVICE, idempotency_key="inc-9/failover")

    assert result.status == "error"
    assert result.error == "no switch of support-bot recorded with key 'inc-9/failover'"
    assert route_now(harness.backend) == route_to_json(PRIMARY)
    assert harness.changes() == 0


def test_restore_does_not_overwrite_a_later_switch(harness: Harness) -> None:
    harness.backend.switch(SERVICE, BACKUP, idempotency_key="inc-1/failover")
    harness.backend.switch(SERVICE, FALLBACK, idempotency_key="inc-2/failover")

    refused = harness.backend.restore(SERVICE, idempotency_key="inc-1/failover")
    assert refused.status == "error"
    assert "not overwriting" in (refused.error or "")

    assert harness.backend.restore(SERVICE, idempotency_key="inc-2/failover").status == "ok"
    assert harness.backend.restore(SERVICE, idempotency_key="inc-1/failover").status == "ok"
    assert route_now(harness.backend) == route_to_json(PRIMARY)
    assert harness.changes() == 4


def test_switching_an_unknown_service_is_an_error(harness: Harness) -> None:
    result = harness.backend.switch("nobody", BACKUP, idempotency_key="k")
    assert result.status == "error"
    assert "nobody" in (result.error or "")


def test_ssm_version_goes_up_once_per_change_and_the_value_holds_the_record(ssm: Any) -> None:
    backend = SsmFailoverBackend(ssm)
    backend.seed(SERVICE, PRIMARY)

    backend.switch(SERVICE, BACKUP, idempotency_key="inc-1/failover")
    backend.switch(SERVICE, BACKUP, idempotency_key="inc-1/failover")

    parameter = ssm.get_parameter(Name=PARAMETER)["Parameter"]
    assert parameter["Version"] == 2
    value = json.loads(parameter["Value"])
    assert value["route"] == route_to_json(BACKUP)
    assert value["switches"][0]["key"] == "inc-1/failover"
    assert value["switches"][0]["previous"] == route_to_json(PRIMARY)
    assert value["switches"][0]["from_version"] == 1


def test_ssm_accepts_a_bare_route_written_by_an_operator(ssm: Any) -> None:
    ssm.put_parameter(Name=PARAMETER, Value=json.dumps(route_to_json(PRIMARY)), Type="String")
    backend = SsmFailoverBackend(ssm)

    assert backend.current(SERVICE).evidence["route"] == route_to_json(PRIMARY)
    assert backend.switch(SERVICE, BACKUP, idempotency_key="k").status == "ok"
    assert backend.restore(SERVICE, idempotency_key="k").evidence["new"] == route_to_json(PRIMARY)


def test_ssm_value_stays_within_4kb_and_keeps_the_newest_records(ssm: Any) -> None:
    backend = SsmFailoverBackend(ssm)
    backend.seed(SERVICE, PRIMARY)
    big = {"note": "x" * 300}
    for n in range(12):
        target = Route("openai", f"model-{n}", "us-east-1", big)
        assert backend.switch(SERVICE, target, idempotency_key=f"k{n}").status == "ok"

    value = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    assert len(value) <= MAX_VALUE_CHARS
    assert backend.restore(SERVICE, idempotency_key="k11").status == "ok"
    assert "no switch" in (backend.restore(SERVICE, idempotency_key="k0").error or "")


def test_ssm_value_that_is_not_a_route_is_an_error_result(ssm: Any) -> None:
    ssm.put_parameter(Name=PARAMETER, Value='{"model": "gpt-4o"}', Type="String")
    result = SsmFailoverBackend(ssm).switch(SERVICE, BACKUP, idempotency_key="k")
    assert result.status == "error"
    assert f"parameter {PARAMETER} does not hold a route document" in (result.error or "")


def test_ssm_unreachable_is_a_down_result_and_fails_the_check() -> None:
    client = make_ssm_client(
        "us-east-1", endpoint_url="http://127.0.0.1:9", timeout_seconds=0.5, max_attempts=1
    )
    backend = SsmFailoverBackend(client)
    assert backend.current(SERVICE).status == "down"
    ok, reason = backend.check()
    assert not ok and "unreachable" in reason


def test_ssm_check_fails_when_no_route_is_stored(ssm: Any) -> None:
    assert SsmFailoverBackend(ssm).check() == (False, "no routes stored under /remediator/routes")


def test_file_concurrent_writers_lose_no_switch(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    FileFailoverBackend(path).seed(SERVICE, PRIMARY)
    results: list[Any] = []

    def switch(n: int) -> None:
        target = Route("openai", f"model-{n}")
        results.append(FileFailoverBackend(path).switch(SERVICE, target, idempotency_key=f"k{n}"))

    threads = [threading.Thread(target=switch, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status for r in results] == ["ok"] * 8
    entry = json.loads(path.read_text())["services"][SERVICE]
    assert entry["version"] == 9
    chain = [route_to_json(PRIMARY)] + [s["new"] for s in entry["switches"]]
    assert [s["previous"] for s in entry["switches"]] == chain[:-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["routes.json", "routes.json.lock"]


def test_file_held_lock_gives_a_down_result_after_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    backend = FileFailoverBackend(path, lock_timeout_seconds=0.05)
    backend.seed(SERVICE, PRIMARY)
    with open(tmp_path / "routes.json.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = backend.switch(SERVICE, BACKUP, idempotency_key="k")
    assert result.status == "down"
    assert "locked by another writer" in (result.error or "")
    assert route_now(backend) == route_to_json(PRIMARY)


def test_file_missing_or_corrupt_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "demo" / "routes.json"
    backend = FileFailoverBackend(path)
    assert backend.current(SERVICE).status == "no_data"
    assert backend.check() == (False, f"no routes in {path}")

    assert backend.seed(SERVICE, PRIMARY).status == "ok"
    path.write_text("{not json")
    result = backend.switch(SERVICE, BACKUP, idempotency_key="k")
    assert result.status == "error"
    assert "is not valid JSON" in (result.error or "")
    assert backend.check()[0] is False
