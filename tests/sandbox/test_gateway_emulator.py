"""The gateway emulator enforces its admin API; the failover adapter obeys it and retries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.gateway import GatewayState, create_gateway_app
from sandbox.server import EmulatorServer
from tools.failover.document import route_to_json
from tools.failover.gateway import GatewayFailoverBackend
from tools.protocols import Route
from tools.retry import RetryPolicy

TOKEN = "sk-admin-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PRIMARY = {"provider": "openai", "model": "gpt-4o", "region": "us-east-1"}
BACKUP = {"provider": "openai", "model": "gpt-4o", "region": "eu-west-1"}
SERVICE = "support-bot"
PRIMARY_ROUTE = Route("openai", "gpt-4o", "us-east-1")
BACKUP_ROUTE = Route("openai", "gpt-4o", "eu-west-1")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[GatewayState, EmulatorServer]]:
    state = GatewayState(admin_token=TOKEN)
    running = EmulatorServer(create_gateway_app(state)).start()
    yield state, running
    running.stop()


@pytest.fixture
def gateway(server: tuple[GatewayState, EmulatorServer]) -> Iterator[tuple[GatewayState, Any]]:
    state, running = server
    state.reset({"support-bot": PRIMARY})
    with httpx.Client(base_url=running.url, timeout=5) as client:
        yield state, client


def put(client: httpx.Client, body: Any, key: str | None = "k1", **headers: str) -> httpx.Response:
    sent = dict(AUTH, **headers)
    if key is not None:
        sent["Idempotency-Key"] = key
    return client.put("/routes/support-bot", json=body, headers=sent)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "no admin key passed in"),
        ({"Authorization": "Bearer sk-other"}, "invalid admin key"),
        ({"Authorization": f"Basic {TOKEN}"}, "no admin key passed in"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/routes"), ("GET", "/routes/support-bot"), ("PUT", "/routes/support-bot")],
)
def test_emulator_refuses_a_missing_or_wrong_admin_token(
    gateway: tuple[GatewayState, httpx.Client],
    headers: dict[str, str],
    message: str,
    method: str,
    path: str,
) -> None:
    state, client = gateway

    answer = client.request(
        method, path, json=BACKUP, headers=dict(headers, **{"Idempotency-Key": "k"})
    )

    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "auth_error"
    assert message in answer.json()["error"]["message"]
    assert state.changes() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/routes/nobody"), ("GET", "/routes/nobody/history"), ("PUT", "/routes/nobody")],
)
def test_emulator_answers_404_for_an_unknown_service(
    gateway: tuple[GatewayState, httpx.Client], method: str, path: str
) -> None:
    _, client = gateway
    answer = client.request(
        method, path, json=BACKUP, headers=dict(AUTH, **{"Idempotency-Key": "k"})
    )
    assert answer.status_code == 404
    assert answer.json()["error"] == {
        "message": "no route for service 'nobody'",
        "type": "not_found_error",
        "param": None,
        "code": "404",
    }


@pytest.mark.parametrize("key", [None, "", "k" * 256])
def test_emulator_refuses_a_put_without_a_usable_idempotency_key(
    gateway: tuple[GatewayState, httpx.Client], key: str | None
) -> None:
    state, client = gateway
    answer = put(client, BACKUP, key=key)
    assert answer.status_code == 400
    assert "Idempotency-Key header" in answer.json()["error"]["message"]
    assert state.changes() == []


def test_emulator_refuses_a_body_that_is_not_json(
    gateway: tuple[GatewayState, httpx.Client],
) -> None:
    state, client = gateway
    answer = client.put(
        "/routes/support-bot", content=b"{nope", headers=dict(AUTH, **{"Idempotency-Key": "k"})
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "the body is not valid JSON"
    assert state.changes() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "gpt-4o"}, "'provider' is required"),
        ({"provider": "openai", "model": " "}, "'model' is required"),
        ({"provider": "openai", "model": "m" * 201}, "'model' must be at most 200"),
        ({"provider": "openai", "model": "gpt-4o", "region": 3}, "'region' must be null or"),
        ({"provider": "openai", "model": "gpt-4o", "extra": []}, "'extra' must be an object"),
        ({"provider": "openai", "model": "gpt-4o", "weight": 1}, "'weight' is not a route field"),
        (["openai", "gpt-4o"], "the body must be a JSON object"),
    ],
)
def test_emulator_refuses_a_body_that_is_not_a_route(
    gateway: tuple[GatewayState, httpx.Client], body: Any, message: str
) -> None:
    state, client = gateway
    answer = put(client, body)
    assert answer.status_code == 422
    assert message in answer.json()["error"]["message"]
    assert state.changes() == []


def test_a_refused_put_is_not_remembered_under_its_key(
    gateway: tuple[GatewayState, httpx.Client],
) -> None:
    state, client = gateway
    assert put(client, {"model": "gpt-4o"}, key="k1").status_code == 422
    assert put(client, BACKUP, key="k1").json()["changed"] is True
    assert len(state.changes()) == 1


def test_a_repeated_key_gets_the_first_answer_and_changes_nothing(
    gateway: tuple[GatewayState, httpx.Client],
) -> None:
    state, client = gateway

    first = put(client, BACKUP)
    again = put(client, BACKUP)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["previous"] == dict(PRIMARY, extra={})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [c["version"] for c in state.changes()] == [2]


def test_a_key_reused_for_another_body_is_refused(
    gateway: tuple[GatewayState, httpx.Client],
) -> None:
    state, client = gateway
    put(client, BACKUP)

    answer = put(client, {"provider": "anthropic", "model": "claude"})

    assert answer.status_code == 422
    assert "already used with a different request" in answer.json()["error"]["message"]
    assert state.routes["support-bot"]["region"] == "eu-west-1"


def test_a_new_key_for_the_active_route_changes_nothing(
    gateway: tuple[GatewayState, httpx.Client],
) -> None:
    state, client = gateway
    answer = put(client, PRIMARY, key="k2")
    assert answer.json()["changed"] is False
    assert answer.json()["version"] == 1
    assert state.changes() == []


def test_history_lists_each_change_with_its_key(
    gateway: tuple[GatewayState, httpx.Client],
) -> None:
    _, client = gateway
    put(client, BACKUP, key="inc-1/failover")
    put(client, PRIMARY, key="inc-1/failover/restore")

    history = client.get("/routes/support-bot/history", headers=AUTH).json()

    assert [c["idempotency_key"] for c in history["changes"]] == [
        "inc-1/failover",
        "inc-1/failover/restore",
    ]
    assert history["changes"][0]["previous"]["region"] == "us-east-1"
    assert (history["version"], history["route"]["region"]) == (3, "us-east-1")


def test_injected_status_carries_retry_after_and_skips_the_request(
    gateway: tuple[GatewayState, httpx.Client],
) -> None:
    state, client = gateway
    state.fail_next(429, retry_after=3)

    answer = put(client, BACKUP)

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert state.changes() == []
    assert put(client, BACKUP).json()["changed"] is True


def test_injected_malformed_answer_is_cut_but_the_request_is_processed(
    gateway: tuple[GatewayState, httpx.Client],
) -> None:
    state, client = gateway
    state.malform_next()

    answer = put(client, BACKUP)

    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    assert len(state.changes()) == 1


def test_injected_delay_holds_the_request(gateway: tuple[GatewayState, httpx.Client]) -> None:
    state, client = gateway
    state.delay_next(0.2)

    started = time.monotonic()
    answer = client.get("/routes/support-bot", headers=AUTH)

    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_state_refuses_an_invalid_starting_route() -> None:
    with pytest.raises(ValueError, match="route of bot: 'provider' is required"):
        GatewayState(admin_token=TOKEN, routes={"bot": {"model": "m"}})


@pytest.fixture
def adapter_gateway(server: tuple[GatewayState, EmulatorServer]) -> tuple[GatewayState, str]:
    state, running = server
    state.reset({SERVICE: PRIMARY})
    return state, running.url


@pytest.fixture
def slow_gateway() -> Iterator[tuple[GatewayState, str]]:
    """A gateway of its own: a delayed request may still be processed after the test ends."""
    state = GatewayState(admin_token=TOKEN, routes={SERVICE: PRIMARY})
    running = EmulatorServer(create_gateway_app(state)).start()
    yield state, running.url
    running.stop()


def gateway_backend(url: str, *, token: str = TOKEN, **options: Any) -> GatewayFailoverBackend:
    options.setdefault("sleep", lambda _: None)
    return GatewayFailoverBackend(url, token, **options)


def test_gateway_timeout_is_a_down_result_after_bounded_attempts(
    slow_gateway: tuple[GatewayState, str],
) -> None:
    state, url = slow_gateway
    state.delay_next(0.3, times=2)
    backend = gateway_backend(url, timeout_seconds=0.05, retry=RetryPolicy(attempts=2))

    result = backend.current(SERVICE)

    assert result.status == "down"
    assert "did not answer GET /routes/support-bot within 0.05s" in (result.error or "")
    assert len(state.snapshot()["received"]) == 2


def test_gateway_put_that_timed_out_is_retried_under_its_key_and_applied_once(
    slow_gateway: tuple[GatewayState, str],
) -> None:
    state, url = slow_gateway
    state.delay_next(0.5)
    backend = gateway_backend(url, timeout_seconds=0.2)

    result = backend.switch(SERVICE, BACKUP_ROUTE, idempotency_key="inc-1/failover")

    assert result.status == "ok", result
    assert result.evidence["previous"] == route_to_json(PRIMARY_ROUTE)
    assert len(state.changes()) == 1


def test_gateway_429_then_success_waits_for_retry_after(
    adapter_gateway: tuple[GatewayState, str],
) -> None:
    state, url = adapter_gateway
    state.fail_next(429, retry_after=2)
    waits: list[float] = []

    result = gateway_backend(url, sleep=waits.append).switch(
        SERVICE, BACKUP_ROUTE, idempotency_key="inc-1/failover"
    )

    assert result.status == "ok"
    assert waits == [2.0]
    assert len(state.changes()) == 1


def test_gateway_5xx_then_success(adapter_gateway: tuple[GatewayState, str]) -> None:
    state, url = adapter_gateway
    state.fail_next(503, times=2)

    result = gateway_backend(url).switch(SERVICE, BACKUP_ROUTE, idempotency_key="inc-1/failover")

    assert result.status == "ok"
    puts = [r for r in state.snapshot()["received"] if r["method"] == "PUT"]
    assert [p["idempotency_key"] for p in puts] == ["inc-1/failover"] * 3
    assert len(state.changes()) == 1


def test_gateway_5xx_beyond_the_attempts_is_an_error(
    adapter_gateway: tuple[GatewayState, str],
) -> None:
    state, url = adapter_gateway
    state.fail_next(502, times=5)

    result = gateway_backend(url).switch(SERVICE, BACKUP_ROUTE, idempotency_key="k")

    assert result.status == "error"
    assert result.evidence["http_status"] == 502
    assert len(state.faults) == 2
    assert state.changes() == []


def test_gateway_4xx_is_not_retried_and_the_token_never_shows(
    adapter_gateway: tuple[GatewayState, str],
) -> None:
    state, url = adapter_gateway
    backend = gateway_backend(url, token="sk-wrong-token")

    result = backend.switch(SERVICE, BACKUP_ROUTE, idempotency_key="k")

    assert result.status == "error"
    assert result.evidence["http_status"] == 401
    assert "invalid admin key" in (result.error or "")
    assert len(state.snapshot()["received"]) == 1
    assert "sk-wrong-token" not in result.model_dump_json()
    assert backend.check()[0] is False


def test_gateway_malformed_answer_is_an_error_and_a_retry_with_the_key_recovers(
    adapter_gateway: tuple[GatewayState, str],
) -> None:
    state, url = adapter_gateway
    backend = gateway_backend(url)
    state.malform_next()
    assert backend.current(SERVICE).status == "error"

    state.malform_next()
    broken = backend.switch(SERVICE, BACKUP_ROUTE, idempotency_key="inc-1/failover")
    again = backend.switch(SERVICE, BACKUP_ROUTE, idempotency_key="inc-1/failover")

    assert broken.status == "error"
    assert "malformed body" in (broken.error or "")
    assert again.status == "ok"
    assert again.evidence["repeated"] is True
    assert again.evidence["previous"] == route_to_json(PRIMARY_ROUTE)
    assert len(state.changes()) == 1


def test_gateway_unreachable_is_a_down_result() -> None:
    backend = gateway_backend("http://127.0.0.1:9", retry=RetryPolicy(attempts=1))
    result = backend.current(SERVICE)
    assert result.status == "down"
    assert "gateway unreachable" in (result.error or "")
