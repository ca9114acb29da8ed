"""The PagerDuty emulator enforces the Events v2 contract; the adapter obeys it and retries."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.pagerduty import PagerDutyState, create_pagerduty_app
from sandbox.server import EmulatorServer
from sandbox.tls import make_self_signed
from tools.pager.pagerduty_events import PagerDutyEventsPager
from tools.protocols import PageRequest

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[PagerDutyState, str, Path]]:
    state = PagerDutyState(routing_keys={KEY})
    cert, key = make_self_signed(tmp_path)
    server = EmulatorServer(create_pagerduty_app(state), certfile=cert, keyfile=key).start()
    yield state, server.url, cert
    server.stop()


def enqueue(url: str, cert: Path, event: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/v2/enqueue",
        json=event,
        verify=ssl.create_default_context(cafile=str(cert)),
        timeout=5,
    )


def trigger(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "remediator/incident/1",
        "payload": {"summary": "p95 latency breach", "source": "support-bot", "severity": "error"},
    }
    event.update(changes)
    return event


def pager(url: str, cert: Path, key: str = KEY) -> PagerDutyEventsPager:
    return PagerDutyEventsPager(key, base_url=url, ca_bundle=cert, retry_base_seconds=0.01)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (trigger(routing_key="short"), "'routing_key' must be a string of 32 characters"),
        (trigger(event_action="escalate"), "'event_action' must be one of"),
        (trigger(dedup_key="k" * 256), "'dedup_key' must be a string of 1 to 255"),
        (trigger(payload={"source": "s", "severity": "error"}), "'payload.summary' is required"),
        (
            trigger(payload={"summary": "s" * 1025, "source": "s", "severity": "error"}),
            "at most 1024",
        ),
        (
            trigger(payload={"summary": "s", "source": "s", "severity": "high"}),
            "'payload.severity' must be one of",
        ),
        (trigger(payload=None), "'payload' is required to trigger"),
        ({"routing_key": KEY, "event_action": "resolve"}, "'dedup_key' is required to resolve"),
        (trigger(images=[{"src": "http://x/y.png"}]), "https 'src'"),
        (trigger(priority="P1"), "'priority' is not a known event field"),
    ],
)
def test_emulator_refuses_events_that_break_the_contract(
    emulator: tuple[PagerDutyState, str, Path], event: dict[str, Any], error: str
) -> None:
    state, url, cert = emulator

    answer = enqueue(url, cert, event)

    assert answer.status_code == 400
    assert answer.json()["status"] == "invalid event"
    assert any(error in e for e in answer.json()["errors"]), answer.json()
    assert state.accepted == []


def test_emulator_refuses_non_json(emulator: tuple[PagerDutyState, str, Path]) -> None:
    state, url, cert = emulator
    answer = httpx.post(
        f"{url}/v2/enqueue", content=b"{nope", verify=ssl.create_default_context(cafile=str(cert))
    )
    assert answer.status_code == 400
    assert answer.json()["errors"] == ["Event body is not valid JSON"]


def test_same_dedup_key_updates_one_alert_and_a_trigger_after_resolve_opens_another(
    emulator: tuple[PagerDutyState, str, Path],
) -> None:
    state, url, cert = emulator
    for event in (
        trigger(),
        trigger(),
        {"routing_key": KEY, "event_action": "resolve", "dedup_key": "remediator/incident/1"},
        trigger(),
    ):
        assert enqueue(url, cert, event).status_code == 202

    assert [(a["status"], a["events"]) for a in state.alerts] == [("resolved", 3), ("triggered", 1)]


def test_a_hold_after_records_the_event_then_keeps_the_answer(
    emulator: tuple[PagerDutyState, str, Path],
) -> None:
    state, url, cert = emulator
    state.hold_next(30, when="after")

    with pytest.raises(httpx.ReadTimeout):  # the sender gives up (or dies) while it waits
        httpx.post(
            f"{url}/v2/enqueue",
            json=trigger(),
            verify=ssl.create_default_context(cafile=str(cert)),
            timeout=httpx.Timeout(5, read=1),
        )
    answer = enqueue(url, cert, trigger())  # the hold was for one event only

    assert answer.status_code == 202
    assert [a["events"] for a in state.alerts] == [2]  # the held event took effect


def test_a_hold_before_drops_the_event_whose_sender_went_away(
    emulator: tuple[PagerDutyState, str, Path],
) -> None:
    state, url, cert = emulator
    state.hold_next(30, when="before")

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{url}/v2/enqueue",
            json=trigger(),
            verify=ssl.create_default_context(cafile=str(cert)),
            timeout=httpx.Timeout(5, read=1),
        )
    deadline = time.monotonic() + 30
    while state.held and time.monotonic() < deadline:
        time.sleep(0.05)

    assert state.held == 0
    assert state.accepted == []


def test_adapter_triggers_and_resolves_through_the_sdk(
    emulator: tuple[PagerDutyState, str, Path],
) -> None:
    state, url, cert = emulator
    request = PageRequest(
        dedup_key="remediator/incident/7",
        summary="breach",
        source="bot",
        severity="critical",
        links=[{"href": "https://arize.example/m", "text": "m"}],
    )

    opened = pager(url, cert).trigger(request)
    closed = pager(url, cert).resolve("remediator/incident/7")

    assert (opened.status, closed.status) == ("ok", "ok")
    assert opened.evidence == {"dedup_key": "remediator/incident/7"}
    assert state.alerts[0]["status"] == "resolved"
    assert state.accepted[0]["links"] == [{"href": "https://arize.example/m", "text": "m"}]


def test_adapter_does_not_retry_a_400_and_returns_pagerdutys_reason(
    emulator: tuple[PagerDutyState, str, Path],
) -> None:
    state, url, cert = emulator
    wrong_key = "f" * 32

    result = pager(url, cert, key=wrong_key).trigger(
        PageRequest(dedup_key="k", summary="s", source="s", severity="error")
    )

    assert result.status == "error"
    assert result.evidence["http_status"] == 400
    assert result.error is not None and "not an integration key" in result.error
    assert len(state.rejected) == 1


@pytest.mark.parametrize("status", [500, 503, 429])
def test_adapter_retries_5xx_and_429_with_the_same_dedup_key(
    emulator: tuple[PagerDutyState, str, Path], status: int
) -> None:
    state, url, cert = emulator
    state.fail_next(status, times=2)

    result = pager(url, cert).trigger(
        PageRequest(dedup_key="remediator/incident/9", summary="s", source="s", severity="error")
    )

    assert result.status == "ok"
    assert [a["dedup_key"] for a in state.alerts] == ["remediator/incident/9"]
    assert state.faults == type(state.faults)()


def test_adapter_gives_up_after_bounded_retries(
    emulator: tuple[PagerDutyState, str, Path],
) -> None:
    state, url, cert = emulator
    state.fail_next(503, times=20)

    result = pager(url, cert).trigger(
        PageRequest(dedup_key="k", summary="s", source="s", severity="error")
    )

    assert result.status == "error"
    assert len(state.faults) == 16
    assert state.alerts == []


def test_adapter_reports_an_unreachable_pagerduty_as_an_error_result(tmp_path: Path) -> None:
    cert, _ = make_self_signed(tmp_path)
    result = pager("https://127.0.0.1:9", cert).trigger(
        PageRequest(dedup_key="k", summary="s", source="s", severity="error")
    )
    assert result.status == "error"
    assert result.error
