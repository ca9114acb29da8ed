"""Bad input gets a 4xx that says what is wrong, and writes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import RunningService, ServiceFactory
from tests.sample import arize_alert


@pytest.fixture
def bare(start_service: ServiceFactory) -> RunningService:
    """The service without integrations, with a small body limit."""
    return start_service(max_body_bytes=4096)


def post(
    running: RunningService, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = {"Content-Type": "application/json", **running.auth, **(headers or {})}
    return httpx.post(f"{running.url}/webhooks/arize", content=body, headers=sent, timeout=10)


def refused(running: RunningService, answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert running.rows() == (0, 0)


GOOD = json.dumps(arize_alert()).encode()


def test_missing_token_is_401(bare: RunningService) -> None:
    answer = httpx.post(
        f"{bare.url}/webhooks/arize",
        content=GOOD,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    refused(bare, answer, 401, "missing Authorization header")
    assert answer.headers["www-authenticate"] == "Bearer"


def test_wrong_token_is_401(bare: RunningService) -> None:
    refused(bare, post(bare, GOOD, {"Authorization": "Bearer not-the-token"}), 401, "invalid")


def test_basic_auth_instead_of_bearer_is_401(bare: RunningService) -> None:
    answer = post(bare, GOOD, {"Authorization": "Basic dXNlcjpwYXNz"})
    refused(bare, answer, 401, "must be 'Bearer")


def test_non_json_body_is_400(bare: RunningService) -> None:
    refused(bare, post(bare, b"monitor=latency&status=triggered"), 400, "malformed JSON")


def test_truncated_json_names_the_position(bare: RunningService) -> None:
    answer = post(bare, GOOD[:40])
    refused(bare, answer, 400, "line 1 column")


def test_nan_is_not_json(bare: RunningService) -> None:
    refused(
        bare, post(bare, b'{"monitor_id": "m", "status": "triggered", "value": NaN}'), 400, "NaN"
    )


def test_empty_body_is_400(bare: RunningService) -> None:
    refused(bare, post(bare, b""), 400, "empty body")


def test_wrong_content_type_is_415(bare: RunningService) -> None:
    answer = post(bare, GOOD, {"Content-Type": "text/plain"})
    refused(bare, answer, 415, "Content-Type must be application/json, got text/plain")


def test_body_over_the_limit_is_413(bare: RunningService) -> None:
    big = arize_alert(padding="x" * 5000)
    refused(bare, post(bare, json.dumps(big).encode()), 413, "limit of 4096 bytes")


def test_chunked_body_over_the_limit_is_413(bare: RunningService) -> None:
    def chunks() -> object:
        yield b'{"monitor_id": "m", "status": "triggered", "pad": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    answer = httpx.post(
        f"{bare.url}/webhooks/arize",
        content=chunks(),  # type: ignore[arg-type]
        headers={"Content-Type": "application/json", **bare.auth},
        timeout=10,
    )
    refused(bare, answer, 413, "limit")


def test_json_array_is_422(bare: RunningService) -> None:
    refused(bare, post(bare, b"[1, 2]"), 422, "must be a JSON object, got list")


def test_json_without_monitor_identity_names_the_missing_field(bare: RunningService) -> None:
    body = {"status": "Triggered", "metric": "latency_p95_ms"}
    answer = post(bare, json.dumps(body).encode())
    refused(bare, answer, 422, "monitor identity")
    assert answer.json()["missing"] == ["monitor identity (monitor_id or monitor_name)"]


def test_json_without_status_names_the_missing_field(bare: RunningService) -> None:
    answer = post(bare, json.dumps({"monitor_id": "mon-1"}).encode())
    refused(bare, answer, 422, "status")


def test_unknown_status_word_is_422(bare: RunningService) -> None:
    body = {"monitor_id": "mon-1", "status": "exploded"}
    refused(bare, post(bare, json.dumps(body).encode()), 422, "status 'exploded' is not one of")


def test_non_numeric_threshold_is_422(bare: RunningService) -> None:
    body = {"monitor_id": "mon-1", "status": "triggered", "threshold": "lots"}
    refused(bare, post(bare, json.dumps(body).encode()), 422, "threshold must be a number")


def test_get_unknown_alert_is_404_and_bad_id_is_422(bare: RunningService) -> None:
    missing = httpx.get(
        f"{bare.url}/alerts/00000000-0000-0000-0000-000000000000", headers=bare.auth
    )
    malformed = httpx.get(f"{bare.url}/alerts/not-a-uuid", headers=bare.auth)
    assert missing.status_code == 404
    assert malformed.status_code == 422
    assert "alert_id" in malformed.json()["detail"]


def test_health_endpoints_answer(bare: RunningService) -> None:
    assert httpx.get(f"{bare.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{bare.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["worker"] == "running"
    assert ready.json()["checks"]["integrations"] == {
        "logs": "dry-run",
        "pager": "dry-run",
        "chat": "dry-run",
    }
