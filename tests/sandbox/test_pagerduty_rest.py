"""The emulator enforces the REST incidents/notes contract; the adapter obeys it and retries."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.pagerduty import PagerDutyState, create_pagerduty_app
from sandbox.pagerduty_rest import ACCEPT
from sandbox.server import EmulatorServer
from sandbox.tls import make_self_signed
from tools.pager.pagerduty_rest import PagerDutyRestPager

API_KEY = "u+sandbox-rest-key"
SERVICE = "PSERVICE1"
SENDER = "oncall-bot@example.com"

Emulator = tuple[PagerDutyState, str, Path]
MakePager = Callable[..., PagerDutyRestPager]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed(tmp_path_factory.mktemp("tls"))


def serve(tls: tuple[Path, Path]) -> Iterator[Emulator]:
    state = PagerDutyState(rest_api_keys={API_KEY}, service_ids={SERVICE})
    cert, key = tls
    server = EmulatorServer(create_pagerduty_app(state), certfile=cert, keyfile=key).start()
    yield state, server.url, cert
    server.stop()


@pytest.fixture
def emulator(tls: tuple[Path, Path]) -> Iterator[Emulator]:
    """A fresh emulator, for tests that read its whole state."""
    yield from serve(tls)


@pytest.fixture(scope="module")
def shared(tls: tuple[Path, Path]) -> Iterator[Emulator]:
    """One emulator for the refusal tests, which only check that nothing was added."""
    yield from serve(tls)


@pytest.fixture
def make_pager(emulator: Emulator) -> Iterator[MakePager]:
    _, url, cert = emulator
    made: list[PagerDutyRestPager] = []

    def make(api_key: str = API_KEY, **changes: Any) -> PagerDutyRestPager:
        options: dict[str, Any] = {
            "from_email": SENDER,
            "base_url": url,
            "ca_bundle": cert,
            "retry_base_seconds": 0.01,
            "timeout_seconds": 5.0,
        }
        pager = PagerDutyRestPager(api_key, **(options | changes))
        made.append(pager)
        return pager

    yield make
    # Open keep-alive connections would hold up the server's shutdown.
    for pager in made:
        pager.close()


def open_incident(pager: PagerDutyRestPager, key: str = "remediator/incident/1") -> Any:
    return pager.create_incident(
        title="p95 latency breach on support-bot",
        service_id=SERVICE,
        urgency="high",
        incident_key=key,
        details="p95 latency 4.2 s > 2 s for 10 min; vector DB canary timed out",
    )


def rest(
    emulator: Emulator,
    path: str,
    body: Any = None,
    *,
    method: str = "POST",
    content: bytes | None = None,
    headers: dict[str, str | None] | None = None,
) -> httpx.Response:
    _, url, cert = emulator
    sent: dict[str, str | None] = {
        "Authorization": f"Token token={API_KEY}",
        "Accept": ACCEPT,
        "From": SENDER,
    }
    sent.update(headers or {})
    return httpx.request(
        method,
        f"{url}{path}",
        json=body if content is None else None,
        content=content,
        headers={k: v for k, v in sent.items() if v is not None},
        verify=ssl.create_default_context(cafile=str(cert)),
        timeout=5,
    )


def incident(**changes: Any) -> dict[str, Any]:
    wanted: dict[str, Any] = {
        "type": "incident",
        "title": "breach",
        "service": {"id": SERVICE, "type": "service_reference"},
        "urgency": "high",
        "incident_key": uuid.uuid4().hex,
        "body": {"type": "incident_body", "details": "details"},
    }
    wanted.update(changes)
    return {"incident": wanted}


def test_adapter_opens_an_incident_through_the_sdk(
    emulator: Emulator, make_pager: MakePager
) -> None:
    state, _, _ = emulator

    result = make_pager().create_incident(
        title="p95 latency breach",
        service_id=SERVICE,
        urgency="low",
        incident_key="remediator/incident/7",
        details="p95 4.2 s",
        escalation_policy_id="PPOLICY",
    )

    assert result.status == "ok", result
    stored = state.incidents[0]
    assert result.evidence == {
        "id": stored["id"],
        "incident_number": 1,
        "html_url": stored["html_url"],
        "status": "triggered",
    }
    assert stored["incident_key"] == "remediator/incident/7"
    assert stored["urgency"] == "low"
    assert stored["body"] == {"type": "incident_body", "details": "p95 4.2 s"}
    assert stored["escalation_policy"]["id"] == "PPOLICY"


def test_adapter_adds_a_note_signed_by_the_from_user(
    emulator: Emulator, make_pager: MakePager
) -> None:
    state, _, _ = emulator
    pager = make_pager()
    incident_id = open_incident(pager).evidence["id"]

    result = pager.add_note(incident_id, "Failover to us-west-2 done; probe green.")

    assert result.status == "ok", result
    assert result.evidence["incident_id"] == incident_id
    assert [(n["incident_id"], n["content"]) for n in state.notes] == [
        (incident_id, "Failover to us-west-2 done; probe green.")
    ]
    assert state.notes[0]["user"]["summary"] == SENDER


def test_note_on_an_unknown_incident_is_a_404_error(
    emulator: Emulator, make_pager: MakePager
) -> None:
    state, _, _ = emulator

    result = make_pager().add_note("QNOSUCHINCIDENT", "hello")

    assert result.status == "error"
    assert result.evidence == {"http_status": 404, "pagerduty_code": 2100}
    assert result.error == "Not Found (code 2100)"
    assert len(state.rest_rejected) == 1
    assert state.notes == []


def test_missing_from_is_a_400_with_pagerdutys_message_and_no_retry(
    emulator: Emulator, make_pager: MakePager
) -> None:
    state, _, _ = emulator

    result = open_incident(make_pager(from_email=""))

    assert result.status == "error"
    assert result.evidence == {"http_status": 400, "pagerduty_code": 2016}
    assert result.error is not None and '"From" header' in result.error
    assert len(state.rest_rejected) == 1
    assert state.incidents == []


def test_an_open_incident_key_is_refused_until_that_incident_is_resolved(
    emulator: Emulator, make_pager: MakePager
) -> None:
    state, _, _ = emulator
    pager = make_pager()
    first = open_incident(pager)

    duplicate = open_incident(pager)
    state.resolve_incident(first.evidence["id"])
    after_resolve = open_incident(pager)

    assert duplicate.status == "error"
    assert duplicate.evidence == {"http_status": 400, "pagerduty_code": 2001}
    assert duplicate.error is not None and "already exists" in duplicate.error
    assert after_resolve.status == "ok"
    assert [i["status"] for i in state.incidents] == ["resolved", "triggered"]


def test_a_wrong_api_key_is_a_401_without_retry(emulator: Emulator, make_pager: MakePager) -> None:
    state, _, _ = emulator

    result = open_incident(make_pager(api_key="not-the-key"))

    assert result.status == "error"
    assert result.evidence == {"http_status": 401, "pagerduty_code": 2006}
    assert [r["status"] for r in state.rest_rejected] == [401]
    assert make_pager(api_key="not-the-key").check()[0] is False
    assert make_pager().check()[0] is True


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_retried_and_open_one_incident(
    emulator: Emulator, make_pager: MakePager, status: int
) -> None:
    state, _, _ = emulator
    state.fail_next(status, times=2)

    result = open_incident(make_pager())

    assert result.status == "ok", result
    assert len(state.incidents) == 1
    assert not state.faults


def test_the_adapter_gives_up_after_bounded_retries(
    emulator: Emulator, make_pager: MakePager
) -> None:
    state, _, _ = emulator
    state.fail_next(429, times=20)

    result = open_incident(make_pager())

    assert result.status == "error"
    assert result.evidence == {"http_status": 429, "pagerduty_code": 2020}
    assert len(state.faults) == 16
    assert state.incidents == []


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        ("<html>502 Bad Gateway</html>", "could not be read"),
        ('{"incident": {"id": ', "could not be read"),
        ('{"incident": {"id": "Q1"}}', "lacks required fields"),
    ],
)
def test_a_malformed_answer_is_an_error_result(
    emulator: Emulator, make_pager: MakePager, body: str, summary: str
) -> None:
    state, _, _ = emulator
    state.answer_malformed_next(201, body=body)

    result = open_incident(make_pager())

    assert result.status == "error"
    assert summary in result.summary
    assert result.error


def test_a_slow_pagerduty_times_out_as_an_error_result(
    emulator: Emulator, make_pager: MakePager
) -> None:
    state, _, _ = emulator
    state.delay_seconds = 0.4

    result = open_incident(make_pager(timeout_seconds=0.1))

    assert result.status == "error"
    assert "Timeout" in result.summary


def test_an_unreachable_pagerduty_is_an_error_result(make_pager: MakePager) -> None:
    result = open_incident(make_pager(base_url="https://127.0.0.1:9"))
    assert result.status == "error"
    assert result.summary.startswith("PagerDuty unreachable")


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Authorization": None}, 401, 2006),
        ({"Authorization": f"Bearer {API_KEY}"}, 401, 2006),
        ({"Authorization": "Token token=wrong"}, 401, 2006),
        ({"Accept": "application/json"}, 400, 2001),
        ({"From": None}, 400, 2016),
        ({"From": "not-an-email"}, 400, 1028),
    ],
)
def test_emulator_refuses_requests_without_the_required_headers(
    shared: Emulator, headers: dict[str, str | None], status: int, code: int
) -> None:
    state, _, _ = shared
    before = len(state.incidents)

    answer = rest(shared, "/incidents", incident(), headers=headers)

    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert len(state.incidents) == before


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"title": "no wrapper"}, "'incident' is required"),
        (incident(type="incident_reference"), "'type' must be incident"),
        (incident(title="  "), "Title cannot be empty."),
        (incident(service={"id": SERVICE}), "'service' must be {id, type: service_reference}"),
        (incident(service={"id": "POTHER", "type": "service_reference"}), "POTHER not found"),
        (incident(urgency="medium"), "'urgency' must be one of high, low"),
        (incident(incident_key="k" * 256), "'incident_key' must be a string of 1 to 255"),
        (incident(body={"type": "incident_body", "details": {"a": 1}}), "details: <string>"),
        (incident(body={"details": "x"}), "'body' must be {type: incident_body"),
        (incident(escalation_policy={"id": "P1", "type": "x"}), "escalation_policy_reference"),
        (incident(severity="critical"), "'severity' is not a known incident field"),
    ],
)
def test_emulator_refuses_incidents_that_break_the_contract(
    shared: Emulator, body: dict[str, Any], error: str
) -> None:
    state, _, _ = shared
    before = len(state.incidents)

    answer = rest(shared, "/incidents", body)

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Invalid Input Provided"
    assert any(error in e for e in answer.json()["error"]["errors"]), answer.json()
    assert len(state.incidents) == before


def test_emulator_refuses_a_body_that_is_not_json(shared: Emulator) -> None:
    answer = rest(shared, "/incidents", content=b"{nope")
    assert answer.status_code == 400
    assert answer.json()["error"]["errors"] == ["'incident' is required and must be an object"]


def test_emulator_refuses_notes_that_break_the_contract(shared: Emulator) -> None:
    state, _, _ = shared
    created = rest(shared, "/incidents", incident())
    assert created.status_code == 201
    incident_id = created.json()["incident"]["id"]
    notes = f"/incidents/{incident_id}/notes"

    empty = rest(shared, notes, {"note": {"content": ""}})
    too_long = rest(shared, notes, {"note": {"content": "x" * 25_001}})
    unwrapped = rest(shared, notes, {"content": "x"})
    no_from = rest(shared, notes, {"note": {"content": "x"}}, headers={"From": None})
    unknown = rest(shared, "/incidents/QNOPE/notes", {"note": {"content": "x"}})

    assert [a.status_code for a in (empty, too_long, unwrapped, no_from, unknown)] == [
        400,
        400,
        400,
        400,
        404,
    ]
    assert empty.json()["error"]["errors"] == ["Content cannot be empty."]
    assert unknown.json() == {"error": {"message": "Not Found", "code": 2100}}
    assert [n for n in state.notes if n["incident_id"] == incident_id] == []


def test_emulator_serves_an_incident_back_and_404s_an_unknown_one(shared: Emulator) -> None:
    created = rest(shared, "/incidents", incident()).json()["incident"]

    found = rest(shared, f"/incidents/{created['id']}", method="GET", headers={"From": None})
    missing = rest(shared, "/incidents/QNOPE", method="GET", headers={"From": None})

    assert found.status_code == 200
    assert found.json()["incident"]["incident_number"] == created["incident_number"]
    assert missing.status_code == 404
