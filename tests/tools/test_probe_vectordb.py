"""Vector DB probes: the real qdrant-client against the sandbox's Qdrant emulator and local mode."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest
from qdrant_client import QdrantClient, models

from sandbox.server import EmulatorServer
from sandbox.vectordb import VectorDBState, create_vectordb_app
from tools.probes.canary import Canary, seed_canary
from tools.probes.http_readiness import HttpReadinessProbe
from tools.probes.qdrant import QdrantProbe
from tools.retry import RetryPolicy

QUERY = "/points/query"
FAST = RetryPolicy(attempts=3, base_seconds=0.01, max_seconds=5)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[VectorDBState, str]]:
    state = VectorDBState()
    running = EmulatorServer(create_vectordb_app(state)).start()
    yield state, running.url
    running.stop()


@pytest.fixture
def emulator(server: tuple[VectorDBState, str]) -> tuple[VectorDBState, str]:
    server[0].reset()
    return server


@pytest.fixture
def seeded(emulator: tuple[VectorDBState, str]) -> Iterator[tuple[VectorDBState, str, Canary]]:
    state, url = emulator
    client = QdrantClient(url=url, timeout=1, check_compatibility=False)
    canary = seed_canary(client, "canary", dim=8)
    client.close()
    state.received.clear()
    yield state, url, canary


def probe_at(url: str, canary: Canary, waits: list[float], **options: object) -> QdrantProbe:
    client = QdrantClient(url=url, timeout=1, check_compatibility=False, **options)  # type: ignore[arg-type]
    return QdrantProbe(client, canary, budget_ms=500, policy=FAST, sleep=waits.append)


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_healthy_collection_answers_the_canary_with_its_known_neighbour(
    seeded: tuple[VectorDBState, str, Canary],
) -> None:
    state, url, canary = seeded

    result = probe_at(url, canary, []).probe()

    assert result.status == "ok", result.summary
    assert result.evidence["points_count"] == 64
    assert result.evidence["top_ids"][0] == canary.expected_id
    assert result.evidence["top_score"] > 0.99
    sent = json.loads(state.requests_to(QUERY)[0]["body"])
    assert sent["query"] == {"nearest": list(canary.vector)}
    assert sent["limit"] == 3


def test_an_index_that_answers_the_wrong_neighbour_is_degraded(
    seeded: tuple[VectorDBState, str, Canary],
) -> None:
    state, url, canary = seeded
    state.corrupt_index = True

    result = probe_at(url, canary, []).probe()

    assert result.status == "degraded"
    assert "answers wrongly" in result.summary
    assert result.evidence["top_ids"][0] != canary.expected_id


def test_a_red_collection_is_degraded_even_when_the_canary_is_right(
    seeded: tuple[VectorDBState, str, Canary],
) -> None:
    state, url, canary = seeded
    state.collections["canary"].status = "red"

    result = probe_at(url, canary, []).probe()

    assert result.status == "degraded"
    assert "status is red" in result.summary
    assert result.evidence["top_ids"][0] == canary.expected_id


def test_a_canary_over_the_latency_budget_is_degraded(
    seeded: tuple[VectorDBState, str, Canary],
) -> None:
    state, url, canary = seeded
    state.delay_seconds = 0.12
    probe = probe_at(url, canary, [])
    probe.budget_ms = 50

    result = probe.probe()

    assert result.status == "degraded"
    assert "over the 50 ms budget" in result.summary
    assert result.evidence["query_ms"] >= 100


def test_a_query_that_times_out_is_retried(seeded: tuple[VectorDBState, str, Canary]) -> None:
    state, url, canary = seeded
    state.stall_next(1.3, path=QUERY)

    result = probe_at(url, canary, []).probe()

    assert result.status == "ok", result.summary
    assert result.evidence["attempts"] == 2
    assert "after 1 retry" in result.summary


@pytest.mark.parametrize("status", [429, 503])
def test_429_or_503_then_success_is_ok_and_honours_retry_after(
    seeded: tuple[VectorDBState, str, Canary], status: int
) -> None:
    state, url, canary = seeded
    state.fail_next(status, retry_after=2, path=QUERY)
    waits: list[float] = []

    result = probe_at(url, canary, waits).probe()

    assert result.status == "ok", result.summary
    assert waits == [2.0]
    assert len(state.requests_to(QUERY)) == 2


def test_5xx_on_every_attempt_is_down(seeded: tuple[VectorDBState, str, Canary]) -> None:
    state, url, canary = seeded
    state.fail_next(503, times=3, path=QUERY)
    waits: list[float] = []

    result = probe_at(url, canary, waits).probe()

    assert result.status == "down"
    assert "HTTP 503" in result.summary
    assert result.evidence == {**result.evidence, "attempts": 3, "http_status": 503}
    assert len(waits) == 2


def test_rate_limited_on_every_attempt_is_degraded(
    seeded: tuple[VectorDBState, str, Canary],
) -> None:
    state, url, canary = seeded
    state.fail_next(429, times=3, retry_after=1, path=QUERY)

    result = probe_at(url, canary, []).probe()

    assert result.status == "degraded"
    assert "rate limited" in result.summary


def test_missing_collection_is_down_with_qdrants_reason_and_not_retried(
    seeded: tuple[VectorDBState, str, Canary],
) -> None:
    state, url, canary = seeded
    waits: list[float] = []

    result = probe_at(url, replace(canary, collection="absent"), waits).probe()

    assert result.status == "down"
    assert "Not found: Collection `absent` doesn't exist!" in result.summary
    assert result.evidence["http_status"] == 404
    assert len(state.received) == 1
    assert waits == []


def test_a_canary_of_the_wrong_dimension_is_an_error_and_not_retried(
    seeded: tuple[VectorDBState, str, Canary],
) -> None:
    state, url, canary = seeded

    result = probe_at(url, replace(canary, vector=(0.1, 0.2, 0.3, 0.4)), []).probe()

    assert result.status == "error"
    assert "expected dim: 8, got 4" in result.summary
    assert len(state.requests_to(QUERY)) == 1


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_a_wrong_api_key_is_an_error_and_not_retried(
    seeded: tuple[VectorDBState, str, Canary],
) -> None:
    state, url, canary = seeded
    state.api_key = "right-key"

    refused = probe_at(url, canary, [], api_key="wrong-key").probe()
    accepted = probe_at(url, canary, [], api_key="right-key").probe()

    assert refused.status == "error"
    assert "HTTP 401" in refused.summary and "Invalid API key" in refused.summary
    assert accepted.status == "ok"
    assert len(state.received) == 1 + 2


@pytest.mark.parametrize(
    "body",
    [None, b'{"result":{"points":"none"},"status":"ok","time":0.1}', b'{"status":"ok"}'],
    ids=["truncated-json", "wrong-shape", "no-result"],
)
def test_a_malformed_answer_is_an_error(
    seeded: tuple[VectorDBState, str, Canary], body: bytes | None
) -> None:
    state, url, canary = seeded
    if body is None:
        state.malformed_next(path=QUERY)
    else:
        state.malformed_next(path=QUERY, body=body)

    result = probe_at(url, canary, []).probe()

    assert result.status == "error"
    assert "malformed answer" in result.summary
    assert len(state.requests_to(QUERY)) == 1


def test_an_empty_collection_is_down(emulator: tuple[VectorDBState, str]) -> None:
    state, url = emulator
    client = QdrantClient(url=url, check_compatibility=False)
    client.create_collection("empty", vectors_config=models.VectorParams(size=2, distance="Dot"))

    result = probe_at(url, Canary("empty", (1.0, 0.0), 1), []).probe()

    assert result.status == "down"
    assert "is empty" in result.summary


def test_an_unreachable_server_is_down_after_bounded_retries() -> None:
    waits: list[float] = []
    probe = probe_at(closed_port(), Canary("canary", (1.0,), 1), waits)

    result = probe.probe()

    assert result.status == "down"
    assert "unreachable" in result.summary
    assert result.evidence["attempts"] == 3
    assert probe.check()[0] is False


def test_check_reports_the_collection(seeded: tuple[VectorDBState, str, Canary]) -> None:
    _, url, canary = seeded
    assert probe_at(url, canary, []).check() == (True, "collection `canary` has 64 points")


def test_local_mode_healthy_and_overwritten_vectors() -> None:
    client = QdrantClient(":memory:")
    canary = seed_canary(client, "canary", dim=16, distance=models.Distance.DOT)
    probe = QdrantProbe(client, canary, policy=FAST)

    healthy = probe.probe()
    client.upsert(
        "canary",
        points=[models.PointStruct(id=canary.expected_id, vector=[-x for x in canary.vector])],
    )
    overwritten = probe.probe()

    assert healthy.status == "ok", healthy.summary
    assert overwritten.status == "degraded"
    assert overwritten.evidence["top_ids"][0] != canary.expected_id


def test_local_mode_missing_collection_is_down() -> None:
    probe = QdrantProbe.connect(":memory:", Canary("absent", (1.0, 0.0), 1))
    result = probe.probe()
    assert result.status == "down"
    assert "not found" in result.summary


def readiness(url: str, waits: list[float], **options: object) -> HttpReadinessProbe:
    return HttpReadinessProbe(url, policy=FAST, sleep=waits.append, timeout_seconds=1, **options)  # type: ignore[arg-type]


def test_http_readiness_ok_and_json_field(emulator: tuple[VectorDBState, str]) -> None:
    _, url = emulator
    title = "qdrant - vector search engine"

    ready = readiness(f"{url}/readyz", []).probe()
    banner = readiness(url + "/", [], json_field="title", json_value=title).probe()
    other = readiness(url + "/", [], json_field="title", json_value="weaviate").probe()
    missing = readiness(url + "/", [], json_field="cluster.status").probe()

    assert ready.status == "ok", ready.summary
    assert banner.status == "ok" and banner.evidence["json_value"] == title
    assert other.status == "degraded" and "expected 'weaviate'" in other.summary
    assert missing.status == "error" and "cluster.status" in missing.summary


def test_http_readiness_not_ready_is_down_after_retries(
    emulator: tuple[VectorDBState, str],
) -> None:
    state, url = emulator
    state.ready = False
    waits: list[float] = []

    result = readiness(f"{url}/readyz", waits).probe()

    assert result.status == "down"
    assert "HTTP 503" in result.summary and "not ready" in result.summary
    assert len(state.requests_to("/readyz")) == 3


@pytest.mark.parametrize("status", [429, 502])
def test_http_readiness_retries_then_succeeds(
    emulator: tuple[VectorDBState, str], status: int
) -> None:
    state, url = emulator
    state.fail_next(status, retry_after=3)
    waits: list[float] = []

    result = readiness(f"{url}/readyz", waits).probe()

    assert result.status == "ok"
    assert waits == [3.0]
    assert result.evidence["attempts"] == 2


def test_http_readiness_refusals_slowness_and_bad_bodies(
    emulator: tuple[VectorDBState, str],
) -> None:
    state, url = emulator

    wrong_path = readiness(f"{url}/ready", []).probe()
    state.malformed_next()
    malformed = readiness(url + "/", [], json_field="title").probe()
    state.delay_seconds = 0.08
    slow = readiness(f"{url}/readyz", [], budget_ms=40).probe()
    unreachable = readiness(f"{closed_port()}/readyz", []).probe()

    assert wrong_path.status == "error" and "HTTP 404" in wrong_path.summary
    assert malformed.status == "error" and "malformed answer" in malformed.summary
    assert slow.status == "degraded" and "over the 40 ms budget" in slow.summary
    assert unreachable.status == "down" and unreachable.evidence["attempts"] == 3
