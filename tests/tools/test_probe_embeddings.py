"""The embeddings probe, through OpenAIEmbeddings, against the sandbox OpenAI-compatible server."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from sandbox.openai_server import OpenAIServerState
from tools.probes.embeddings import (
    DEFAULT_CANARIES,
    EmbeddingProbe,
    GoldenCaptureError,
    capture_golden_vectors,
    load_golden_vectors,
    save_golden_vectors,
)
from tools.protocols import HealthProbe
from tools.retry import RetryPolicy

KEY = "sk-sandbox-embeddings"
MODEL = "embed-small"
FAST_RETRY = RetryPolicy(attempts=3, base_seconds=0.001)

Emulator = tuple[OpenAIServerState, str]


@pytest.fixture
def emulator(openai_server: Emulator) -> Emulator:
    state, url = openai_server
    state.reset()
    state.add_embedding_model(MODEL, dimension=16)
    return state, url


def connection(url: str, **changes: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"base_url": f"{url}/v1", "api_key": KEY, "model": MODEL}
    options.update(changes)
    return options


def golden_of(url: str) -> dict[str, Any]:
    return capture_golden_vectors(**connection(url), retry=FAST_RETRY)


def probe(url: str, golden: dict[str, Any] | None, **kwargs: Any) -> EmbeddingProbe:
    options: dict[str, Any] = {"timeout_seconds": 2.0, "retry": FAST_RETRY, **kwargs}
    return EmbeddingProbe(
        **connection(url, **options.pop("connection", {})), golden=golden, **options
    )


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_healthy_service_matches_its_golden_vectors(emulator: Emulator, tmp_path: Path) -> None:
    state, url = emulator
    path = tmp_path / "baseline" / "golden.json"
    save_golden_vectors(golden_of(url), path)
    embeddings: HealthProbe = probe(url, load_golden_vectors(path))

    result = embeddings.probe()

    assert result.status == "ok", result.summary
    assert result.evidence["dimension"] == 16 and result.evidence["golden"] is True
    assert set(result.evidence["similarity"]) == set(DEFAULT_CANARIES)
    assert result.evidence["min_similarity"] > 0.9999
    assert result.evidence["problems"] == []
    assert state.received(model=MODEL)[-1].body["input"] == list(DEFAULT_CANARIES)


def test_golden_file_round_trips_with_model_dimension_and_time(
    emulator: Emulator, tmp_path: Path
) -> None:
    _, url = emulator
    golden = golden_of(url)
    path = tmp_path / "golden.json"

    save_golden_vectors(golden, path)

    assert load_golden_vectors(path) == golden
    assert golden["model"] == MODEL and golden["dimension"] == 16
    assert golden["captured_at"].endswith("+00:00")
    assert list(golden["vectors"]) == list(DEFAULT_CANARIES)


def test_drift_lowers_similarity_and_degrades(emulator: Emulator) -> None:
    state, url = emulator
    golden = golden_of(url)
    state.model(MODEL).set_drift(0.3)

    result = probe(url, golden).probe()

    assert result.status == "degraded"
    assert result.evidence["min_similarity"] < 0.98
    assert "similarity to golden vectors fell to" in result.summary


def test_the_similarity_threshold_is_configurable(emulator: Emulator) -> None:
    state, url = emulator
    golden = golden_of(url)
    state.model(MODEL).set_drift(0.3)

    result = probe(url, golden, min_similarity=0.5).probe()

    assert result.status == "ok"
    assert 0.5 < result.evidence["min_similarity"] < 0.98


def test_dimension_change_degrades(emulator: Emulator) -> None:
    state, url = emulator
    golden = golden_of(url)
    state.model(MODEL).dimension = 12

    result = probe(url, golden).probe()

    assert result.status == "degraded"
    assert result.evidence["dimension"] == 12 and result.evidence["expected_dimension"] == 16
    assert "dimension changed from 16 to 12" in result.summary


def test_latency_over_budget_degrades(emulator: Emulator) -> None:
    state, url = emulator
    golden = golden_of(url)
    state.model(MODEL).latency_seconds = 0.06

    result = probe(url, golden, latency_budget_ms=40).probe()

    assert result.status == "degraded"
    assert result.evidence["latency_ms"] >= 60
    assert "over the 40 ms budget" in result.summary


def test_server_slower_than_the_client_timeout_is_down(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).latency_seconds = 0.5

    result = probe(url, None, timeout_seconds=0.1).probe()

    assert result.status == "down"
    assert result.evidence["failure"] == "timeout"
    assert result.latency_ms < 450


def test_429_is_retried_after_the_servers_retry_after(emulator: Emulator) -> None:
    state, url = emulator
    golden = golden_of(url)
    state.model(MODEL).fail_next(429, retry_after=1.5)
    slept: list[float] = []

    result = probe(url, golden, sleep=slept.append).probe()

    assert result.status == "ok"
    assert slept == [1.5] and result.evidence["retry_waits"] == [1.5]
    assert [r.status for r in state.received(model=MODEL)][-2:] == [429, 200]


def test_429_on_every_attempt_degrades(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).fail_next(429, times=3, retry_after=0)

    result = probe(url, None).probe()

    assert result.status == "degraded"
    assert result.evidence == {"failure": "rate_limited", "http_status": 429}


def test_5xx_is_retried_then_succeeds(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).fail_next(503, times=2)

    result = probe(url, None).probe()

    assert result.status == "ok"
    assert len(result.evidence["retry_waits"]) == 2
    assert [r.status for r in state.received(model=MODEL)] == [503, 503, 200]


def test_5xx_on_every_attempt_is_down(emulator: Emulator) -> None:
    state, url = emulator
    state.model(MODEL).fail_next(500, times=3)

    result = probe(url, None).probe()

    assert result.status == "down"
    assert result.evidence == {"failure": "server_error", "http_status": 500}
    assert len(state.received(model=MODEL)) == 3


@pytest.mark.parametrize(
    ("changes", "http_status"),
    [({"api_key": "sk-wrong"}, 401), ({"model": "embed-retired"}, 404)],
)
def test_4xx_is_not_retried_and_is_an_error(
    emulator: Emulator, changes: dict[str, Any], http_status: int
) -> None:
    state, url = emulator
    slept: list[float] = []

    result = probe(url, None, sleep=slept.append, connection=changes).probe()

    assert result.status == "error"
    assert result.evidence == {"failure": "refused", "http_status": http_status}
    assert slept == [] and [r.status for r in state.received()] == [http_status]


@pytest.mark.parametrize("kind", ["not_json", "missing_field"])
def test_malformed_answer_is_an_error(emulator: Emulator, kind: Any) -> None:
    state, url = emulator
    state.model(MODEL).malformed_next(kind=kind)

    result = probe(url, None).probe()

    assert result.status == "error"
    assert result.evidence["failure"] == "malformed"


def test_unreachable_service_is_down() -> None:
    result = probe(dead_url(), None).probe()

    assert result.status == "down"
    assert result.evidence["failure"] == "unreachable"


def test_without_golden_vectors_only_shape_and_latency_are_judged(emulator: Emulator) -> None:
    _, url = emulator

    result = probe(url, None, canaries=["one canary"]).probe()

    assert result.status == "ok"
    assert result.evidence["golden"] is False and "similarity" not in result.evidence


def test_golden_vectors_of_another_model_are_an_error_without_a_call(emulator: Emulator) -> None:
    state, url = emulator
    golden = golden_of(url)
    calls = len(state.received())

    result = probe(url, golden, connection={"model": "embed-large"}).probe()

    assert result.status == "error"
    assert "golden vectors are of embed-small" in result.summary
    assert len(state.received()) == calls


def test_capture_failure_raises_with_the_reason(emulator: Emulator) -> None:
    _, url = emulator

    with pytest.raises(GoldenCaptureError, match="refused"):
        capture_golden_vectors(**connection(url, api_key="sk-wrong"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{nope", "is not JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"model": "m", "dimension": 2, "captured_at": "t"}), "'vectors'"),
        (
            json.dumps({"model": "m", "dimension": 2, "captured_at": "t", "vectors": {"a": [1]}}),
            "is not 2 numbers",
        ),
        (
            json.dumps({"model": "m", "dimension": 1, "captured_at": "t", "vectors": {"a": ["x"]}}),
            "not a number",
        ),
    ],
)
def test_bad_golden_files_are_refused_by_name(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "golden.json"
    path.write_text(content)

    with pytest.raises(ValueError, match=message) as raised:
        load_golden_vectors(path)
    assert str(path) in str(raised.value)


def test_check_reports_whether_the_model_is_served(emulator: Emulator) -> None:
    _, url = emulator

    assert probe(url, None).check()[0] is True
    assert probe(url, None, connection={"model": "embed-retired"}).check()[0] is False
