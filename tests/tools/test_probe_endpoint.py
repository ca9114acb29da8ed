"""The endpoint probe, through ChatOpenAI, against the sandbox OpenAI-compatible server."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from sandbox.openai_server import OpenAIServerState
from tools.probes.endpoint import DEFAULT_PROMPTS, DiagnosticPrompt, EndpointProbe
from tools.protocols import HealthProbe
from tools.retry import RetryPolicy

KEY = "sk-sandbox-endpoint"
MODEL = "support-bot-v1"
PRICES = {MODEL: {"input_per_1k": 0.5, "output_per_1k": 1.5}}
RIGHT = {"17 + 25": "42", "capital of France": "Paris.", "READY": "READY"}

Emulator = tuple[OpenAIServerState, str]


@pytest.fixture
def emulator(openai_server: Emulator) -> Emulator:
    state, url = openai_server
    state.reset()
    state.add_chat_model(MODEL, default="I do not know.", rules=dict(RIGHT))
    return state, url


def probe(url: str, **kwargs: Any) -> EndpointProbe:
    options: dict[str, Any] = {
        "base_url": f"{url}/v1",
        "api_key": KEY,
        "model": MODEL,
        "prices": PRICES,
        "timeout_seconds": 2.0,
        "retry": RetryPolicy(attempts=3, base_seconds=0.001),
    }
    options.update(kwargs)
    return EndpointProbe(**options)


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def outcomes(result: Any) -> list[str]:
    return [row["outcome"] for row in result.evidence["prompts"]]


def test_right_answers_are_ok_with_tokens_and_cost_from_usage(emulator: Emulator) -> None:
    state, url = emulator
    endpoint: HealthProbe = probe(url)

    result = endpoint.probe()

    assert result.status == "ok", result.summary
    assert outcomes(result) == ["ok", "ok", "ok"]
    served = [r.usage for r in state.received(model=MODEL)]
    assert all(u is not None for u in served)
    prompt_tokens = sum(u["prompt_tokens"] for u in served if u)
    completion_tokens = sum(u["completion_tokens"] for u in served if u)
    assert result.evidence["input_tokens"] == prompt_tokens
    assert result.evidence["output_tokens"] == completion_tokens
    expected = prompt_tokens / 1000 * 0.5 + completion_tokens / 1000 * 1.5
    assert result.evidence["cost_usd"] == pytest.approx(expected)
    assert all(row["latency_ms"] > 0 for row in result.evidence["prompts"])
    sent = state.received(model=MODEL)[0].body
    assert sent["temperature"] == 0 and sent["max_completion_tokens"] == 64


def test_cost_is_unknown_when_the_model_has_no_price(emulator: Emulator) -> None:
    _, url = emulator

    result = probe(url, prices={}).probe()

    assert result.status == "ok"
    assert result.evidence["cost_usd"] is None and result.evidence["input_tokens"] > 0


def test_a_wrong_answer_degrades_and_shows_the_answer(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).rules["capital of France"] = "Lyon"

    result = probe(url).probe()

    assert result.status == "degraded"
    assert outcomes(result) == ["ok", "wrong", "ok"]
    assert result.evidence["prompts"][1]["answer"] == "Lyon"
    assert "1 wrong" in result.summary


def test_a_slow_answer_over_the_budget_degrades(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).latency_seconds = 0.06

    result = probe(url, latency_budget_ms=40, prompts=DEFAULT_PROMPTS[:1]).probe()

    assert result.status == "degraded"
    assert outcomes(result) == ["slow"]
    assert result.evidence["prompts"][0]["latency_ms"] >= 60


def test_server_slower_than_the_client_timeout_is_down(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).latency_seconds = 0.5

    result = probe(url, timeout_seconds=0.1, prompts=DEFAULT_PROMPTS[:1]).probe()

    assert result.status == "down"
    assert outcomes(result) == ["timeout"]
    assert result.latency_ms < 450
    assert "timed out" in (result.error or "")
    assert len(state.received(model=MODEL)) == 0  # the server never finished answering


def test_429_is_retried_after_the_servers_retry_after(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).fail_next(429, retry_after=2)
    slept: list[float] = []

    result = probe(url, sleep=slept.append).probe()

    assert result.status == "ok"
    assert slept == [2.0]
    assert result.evidence["prompts"][0]["retry_waits"] == [2.0]
    assert [r.status for r in state.received(model=MODEL)] == [429, 200, 200, 200]


def test_5xx_is_retried_then_succeeds(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).fail_next(503, times=2)

    result = probe(url).probe()

    assert result.status == "ok"
    assert len(result.evidence["prompts"][0]["retry_waits"]) == 2
    assert [r.status for r in state.received(model=MODEL)][:3] == [503, 503, 200]


def test_5xx_on_every_attempt_is_down(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).fail_next(500, times=9)

    result = probe(url).probe()

    assert result.status == "down"
    assert outcomes(result) == ["server_error"] * 3
    assert result.evidence["prompts"][0]["http_status"] == 500
    assert len(state.received(model=MODEL)) == 9


def test_one_prompt_failing_after_retries_degrades(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).fail_next(502, times=3)

    result = probe(url).probe()

    assert result.status == "degraded"
    assert outcomes(result) == ["server_error", "ok", "ok"]


@pytest.mark.parametrize(
    ("changes", "http_status"),
    [({"api_key": "sk-wrong"}, 401), ({"model": "gpt-retired"}, 404)],
)
def test_4xx_is_not_retried_and_is_an_error(
    emulator: Emulator, changes: dict[str, Any], http_status: int
) -> None:
    state, url = emulator
    slept: list[float] = []

    result = probe(url, sleep=slept.append, prompts=DEFAULT_PROMPTS[:1], **changes).probe()

    assert result.status == "error"
    assert outcomes(result) == ["refused"]
    assert result.evidence["prompts"][0]["http_status"] == http_status
    assert slept == [] and [r.status for r in state.received()] == [http_status]


@pytest.mark.parametrize("kind", ["not_json", "missing_field"])
def test_malformed_answer_is_an_error(emulator: Emulator, kind: Any) -> None:
    state, url = emulator
    state.model(MODEL).malformed_next(kind=kind)

    result = probe(url).probe()

    assert result.status == "error"
    assert outcomes(result) == ["malformed", "ok", "ok"]
    assert result.error


def test_unreachable_endpoint_is_down() -> None:
    result = probe(dead_url()).probe()

    assert result.status == "down"
    assert outcomes(result) == ["unreachable"] * 3
    assert "did not answer any of 3" in result.summary


def test_check_reports_whether_the_model_is_served(emulator: Emulator) -> None:
    _, url = emulator

    assert probe(url).check()[0] is True
    served, reason = probe(url, model="gpt-retired").check()
    assert served is False and "refused" in reason
    assert probe(dead_url()).check()[0] is False


@pytest.mark.parametrize(
    ("match", "expected", "answer", "right"),
    [
        ("exact", "READY", "  READY\n", True),
        ("exact", "READY", "READY.", False),
        ("contains", "paris", "It is Paris.", True),
        ("contains", "Paris", "Lyon", False),
        ("regex", r"\b42\b", "The answer is 42.", True),
        ("regex", r"\b42\b", "420", False),
    ],
)
def test_diagnostic_prompt_matching(match: Any, expected: str, answer: str, right: bool) -> None:
    assert DiagnosticPrompt("p", "q", expected, match).accepts(answer) is right
