"""Bad input gets a 4xx that says what is wrong, and writes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from agent.alerts.models import Alert
from sandbox.stack import SandboxStack
from tests.conftest import RunningService, ServiceFactory, sandbox_overrides
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


def test_readiness_shows_how_the_service_is_wired_only_to_a_token_holder(
    sandbox: SandboxStack, start_service: ServiceFactory
) -> None:
    running = start_service(
        **sandbox_overrides(sandbox), viewer_token="v" * 32, metrics_token="m" * 32
    )
    anonymous = httpx.get(f"{running.url}/readyz", timeout=30)
    viewer = httpx.get(
        f"{running.url}/readyz", headers={"Authorization": f"Bearer {'v' * 32}"}, timeout=30
    )
    scraper = httpx.get(
        f"{running.url}/readyz", headers={"Authorization": f"Bearer {'m' * 32}"}, timeout=30
    )

    assert anonymous.status_code == viewer.status_code == scraper.status_code == 200
    summary = anonymous.json()["checks"]["adapters"]
    assert summary["ok"] + summary["failing"] == len(viewer.json()["checks"]["adapters"]) > 0
    for leak in (sandbox.slack_url, sandbox.pagerduty_url, "127.0.0.1", "http"):
        assert leak not in anonymous.text
    assert any(
        sandbox.slack_url in str(row) or "http" in str(row)
        for row in viewer.json()["checks"]["adapters"]
    )
    assert scraper.json()["checks"]["adapters"] == viewer.json()["checks"]["adapters"]


def nested(depth: int) -> bytes:
    """An Arize alert carrying arrays nested `depth` deep in an unmapped field."""
    return b'{"monitor_id":"m","status":"Triggered","x":' + b"[" * depth + b"]" * depth + b"}"


def test_a_deeply_nested_body_is_400_naming_the_limit_and_the_next_alert_is_stored(
    bare: RunningService,
) -> None:
    answer = post(bare, nested(490))

    refused(bare, answer, 400, "nested deeper than the limit of 64 levels")
    assert "REMEDIATOR_MAX_JSON_DEPTH" in answer.json()["detail"]
    assert post(bare, GOOD).status_code == 202


def test_nesting_up_to_the_limit_is_accepted(start_service: ServiceFactory) -> None:
    running = start_service(max_json_depth=8)
    assert post(running, nested(7)).status_code == 202  # the object itself is the 8th level
    refused_answer = post(running, nested(8))
    assert refused_answer.status_code == 400
    assert "limit of 8 levels" in refused_answer.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"model_id": "bot\u0000"}, "model_id contains a NUL character"),
        ({"environment": "prod\u0000"}, "environment contains a NUL character"),
        ({"monitor_id": "\u0000mon"}, "monitor_id contains a NUL character"),
        ({"notes": {"who": ["ok", "\ud800"]}}, "notes.who[1] contains a lone surrogate"),
        ({"dimensions": {"\udfff": "eu"}}, "a key of dimensions contains a lone surrogate"),
        ({"environment": "e" * 129}, "environment is 129 characters long; at most 128"),
        ({"service": "s" * 201}, "service is 201 characters long; at most 200"),
        ({"threshold": int("9" * 400)}, "threshold must be a finite number"),
        ({"current_value": -int("9" * 400)}, "value must be a finite number"),
        ({"current_value": "9" * 400}, "value must be a finite number"),
        ({"triggered_at": "0001-01-01T00:00:00+14:00"}, "triggered_at is not a time"),
        ({"triggered_at": 10**15}, "triggered_at is not a time"),
    ],
)
def test_a_value_no_database_could_store_is_422_naming_the_field(
    bare: RunningService, changes: dict[str, object], words: str
) -> None:
    body = json.dumps(arize_alert(**changes)).encode()  # json escapes NUL and surrogates

    answer = post(bare, body)

    refused(bare, answer, 422, words)
    assert post(bare, GOOD).status_code == 202


def test_a_number_beyond_a_double_is_400(bare: RunningService) -> None:
    body = b'{"monitor_id": "m", "status": "triggered", "current_value": 1e400}'
    refused(bare, post(bare, body), 400, "number 1e400 is out of range")


def test_a_surrogate_in_an_alertmanager_alertname_is_422(bare: RunningService) -> None:
    from tests.agent.test_alertmanager import group

    body = group()
    body["alerts"][1]["labels"]["alertname"] = "LLM\ud800Errors"

    answer = httpx.post(
        f"{bare.url}/webhooks/alertmanager",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **bare.auth},
        timeout=10,
    )

    refused(bare, answer, 422, "alerts[1].labels.alertname contains a lone surrogate")


def test_a_deeply_nested_alertmanager_group_is_400(bare: RunningService) -> None:
    body = (
        b'{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A","x":'
        + b"[" * 490
        + b"]" * 490
        + b"}}]}"
    )
    answer = httpx.post(
        f"{bare.url}/webhooks/alertmanager",
        content=body,
        headers={"Content-Type": "application/json", **bare.auth},
        timeout=10,
    )
    refused(bare, answer, 400, "nested deeper than the limit")


# Values at and past every limit of what is stored: each is refused at the door (4xx, naming the
# field) or accepted and then investigated, never accepted and then refused by the database.
EDGE_VALUES: list[tuple[dict[str, object], int]] = [
    ({"environment": "e" * 128}, 202),
    ({"environment": "e" * 129}, 422),
    ({"service": "s" * 200}, 202),
    ({"service": "s" * 201}, 422),
    ({"model_id": "m" * 600}, 202),  # kept to its first 512 characters, as every text field
    ({"monitor_id": "i" * 600}, 202),
    ({"model_id": "bot\u0000x"}, 422),
    ({"environment": "\u0000"}, 422),
    ({"monitor_id": "mon\u0000"}, 422),
    ({"metric": "lat\ud83dency"}, 422),
    ({"model_id": "bot-\U0001f600-\u2028-\u0001-\u007f-\ufeff"}, 202),
    ({"dimensions": {"ré\u0007gion": "eu\u001f", "k" * 300: "v" * 600}}, 202),
    ({"current_value": 1.7976931348623157e308, "threshold": -5e-324}, 202),
    ({"current_value": int("9" * 400)}, 422),
    ({"triggered_at": "9998-12-31T23:59:59+00:00"}, 202),
    ({"triggered_at": "9999-12-31T23:59:59-14:00"}, 422),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The database URL the service runs on: SQLite, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    return str(request.getfixturevalue("postgres_url"))


def test_every_accepted_value_is_stored_and_investigated_on_both_backends(
    backend: str, start_service: ServiceFactory
) -> None:
    running = start_service(**({"database_url": backend} if backend else {}))
    accepted = []
    for changes, expected in EDGE_VALUES:
        answer = post(running, json.dumps(arize_alert(**changes)).encode())
        assert answer.status_code == expected, (changes, answer.text)
        if expected == 202:
            accepted.append(answer.json()["alert_id"])
        else:
            assert next(iter(changes)).replace("current_value", "value") in answer.json()["detail"]

    for alert_id in accepted:
        shown = running.wait_alert(alert_id, timeout=60)
        assert shown["state"] == "done", shown
        assert shown["incident_run_state"] in ("completed", "skipped"), shown
    assert running.count(Alert) == len(accepted)
