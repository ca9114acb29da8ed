"""An Events v2 trigger opens a REST incident; the adapter finds it by incident_key and notes it."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.pagerduty import PagerDutyState, create_pagerduty_app
from sandbox.pagerduty_rest import ACCEPT
from sandbox.server import EmulatorServer
from sandbox.tls import make_self_signed
from tools.pager.pagerduty_events import PagerDutyEventsPager
from tools.pager.pagerduty_rest import PagerDutyRestPager
from tools.protocols import PageRequest

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
OTHER_ROUTING_KEY = "fedcba9876543210fedcba9876543210"
API_KEY = "u+sandbox-rest-key"
SERVICE = "PSERVICE1"
SENDER = "oncall-bot@example.com"
DEDUP = "remediator/incident/5f0c9a52-7d1e-4c1b-9a55-0b7f1f1f2a10"
SUMMARY = "p95 latency breach on support-bot"

Emulator = tuple[PagerDutyState, str, Path]


class Sleeps(list[float]):
    """An injected sleep that records its waits and can run a side effect on the first one."""

    def __init__(self, on_first: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.on_first = on_first

    def __call__(self, seconds: float) -> None:
        if not self and self.on_first is not None:
            self.on_first()
        self.append(seconds)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def emulator(tls: tuple[Path, Path]) -> Iterator[Emulator]:
    state = PagerDutyState(
        routing_keys={ROUTING_KEY, OTHER_ROUTING_KEY},
        routing_services={ROUTING_KEY: SERVICE},
        rest_api_keys={API_KEY},
    )
    cert, key = tls
    server = EmulatorServer(create_pagerduty_app(state), certfile=cert, keyfile=key).start()
    yield state, server.url, cert
    server.stop()


@pytest.fixture
def closing() -> Iterator[list[PagerDutyEventsPager | PagerDutyRestPager]]:
    made: list[PagerDutyEventsPager | PagerDutyRestPager] = []
    yield made
    # Open keep-alive connections would hold up the server's shutdown.
    for pager in made:
        pager.close()


@pytest.fixture
def events(
    emulator: Emulator, closing: list[PagerDutyEventsPager | PagerDutyRestPager]
) -> Callable[..., PagerDutyEventsPager]:
    _, url, cert = emulator

    def make(routing_key: str = ROUTING_KEY) -> PagerDutyEventsPager:
        pager = PagerDutyEventsPager(
            routing_key, base_url=url, ca_bundle=cert, retry_base_seconds=0.01
        )
        closing.append(pager)
        return pager

    return make


@pytest.fixture
def rest(
    emulator: Emulator, closing: list[PagerDutyEventsPager | PagerDutyRestPager]
) -> Callable[..., PagerDutyRestPager]:
    _, url, cert = emulator

    def make(api_key: str = API_KEY, **changes: Any) -> PagerDutyRestPager:
        options: dict[str, Any] = {
            "from_email": SENDER,
            "base_url": url,
            "ca_bundle": cert,
            "retry_base_seconds": 0.01,
            "timeout_seconds": 5.0,
            "sleep": Sleeps(),
        }
        pager = PagerDutyRestPager(api_key, **(options | changes))
        closing.append(pager)
        return pager

    return make


def page(pager: PagerDutyEventsPager, dedup_key: str = DEDUP) -> None:
    result = pager.trigger(
        PageRequest(dedup_key=dedup_key, summary=SUMMARY, source="support-bot", severity="critical")
    )
    assert result.status == "ok", result


def list_incidents(
    emulator: Emulator, params: dict[str, Any], headers: dict[str, str | None] | None = None
) -> httpx.Response:
    _, url, cert = emulator
    sent: dict[str, str | None] = {"Authorization": f"Token token={API_KEY}", "Accept": ACCEPT}
    sent.update(headers or {})
    return httpx.get(
        f"{url}/incidents",
        params=params,
        headers={k: v for k, v in sent.items() if v is not None},
        verify=ssl.create_default_context(cafile=str(cert)),
        timeout=5,
    )


def test_the_note_lands_on_the_incident_the_events_trigger_opened(
    emulator: Emulator, events: Callable[..., PagerDutyEventsPager], rest: Callable[..., Any]
) -> None:
    state, _, _ = emulator
    page(events())
    sleeps = Sleeps()

    result = rest(sleep=sleeps).note_for_dedup_key(DEDUP, "Failover to us-west-2 done.")

    assert result.status == "ok", result
    [incident] = state.incidents
    assert (incident["incident_key"], incident["service"]["id"]) == (DEDUP, SERVICE)
    assert (incident["title"], incident["status"]) == (SUMMARY, "triggered")
    assert [(n["incident_id"], n["content"]) for n in state.notes] == [
        (incident["id"], "Failover to us-west-2 done.")
    ]
    assert result.evidence["incident_id"] == incident["id"]
    assert result.evidence["incident_number"] == 1
    assert result.evidence["html_url"] == incident["html_url"]
    assert result.evidence["lookups"] == 1
    assert result.asked["dedup_key"] == DEDUP
    assert sleeps == []
    assert state.queries[0]["incident_key"] == [DEDUP]


def test_a_routing_key_without_a_configured_service_gets_one_generated_service(
    emulator: Emulator, events: Callable[..., PagerDutyEventsPager]
) -> None:
    state, _, _ = emulator
    other = events(OTHER_ROUTING_KEY)

    page(other, "remediator/incident/a")
    page(other, "remediator/incident/b")
    page(other, "remediator/incident/a")

    services = {i["service"]["id"] for i in state.incidents}
    assert len(state.incidents) == 2
    assert services == {state.routing_services[OTHER_ROUTING_KEY]}
    assert SERVICE not in services


def test_events_acknowledge_and_resolve_carry_over_and_a_new_trigger_opens_a_new_incident(
    emulator: Emulator, events: Callable[..., PagerDutyEventsPager], rest: Callable[..., Any]
) -> None:
    state, url, cert = emulator
    pager = events()
    page(pager)
    acknowledged = httpx.post(
        f"{url}/v2/enqueue",
        json={"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": DEDUP},
        verify=ssl.create_default_context(cafile=str(cert)),
    )
    status_after_ack = state.incidents[0]["status"]

    resolved = pager.resolve(DEDUP)
    page(pager)
    noted = rest().note_for_dedup_key(DEDUP, "Still failing after failover; escalated.")

    assert acknowledged.status_code == 202
    assert status_after_ack == "acknowledged"
    assert resolved.status == "ok"
    assert [i["status"] for i in state.incidents] == ["resolved", "triggered"]
    assert noted.status == "ok", noted
    assert [n["incident_id"] for n in state.notes] == [state.incidents[1]["id"]]
    only_resolved = list_incidents(
        emulator, {"incident_key": DEDUP, "statuses[]": ["resolved", "acknowledged"]}
    )
    assert [i["id"] for i in only_resolved.json()["incidents"]] == [state.incidents[0]["id"]]


def test_a_responder_resolving_the_incident_resolves_its_alert(
    emulator: Emulator, events: Callable[..., PagerDutyEventsPager]
) -> None:
    state, _, _ = emulator
    pager = events()
    page(pager)

    state.resolve_incident(state.incidents[0]["id"])
    page(pager)

    assert [a["status"] for a in state.alerts] == ["resolved", "triggered"]
    assert [i["status"] for i in state.incidents] == ["resolved", "triggered"]


def test_an_incident_that_appears_late_is_found_on_a_later_lookup(
    emulator: Emulator, events: Callable[..., PagerDutyEventsPager], rest: Callable[..., Any]
) -> None:
    state, _, _ = emulator
    sleeps = Sleeps(on_first=lambda: page(events()))

    result = rest(sleep=sleeps, lookup_base_seconds=0.5).note_for_dedup_key(DEDUP, "done")

    assert result.status == "ok", result
    assert result.evidence["lookups"] == 2
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 0.6
    assert [n["incident_id"] for n in state.notes] == [state.incidents[0]["id"]]


def test_an_unknown_key_is_no_data_after_bounded_lookups(
    emulator: Emulator, rest: Callable[..., Any]
) -> None:
    state, _, _ = emulator
    sleeps = Sleeps()

    result = rest(sleep=sleeps, lookup_attempts=3).note_for_dedup_key("remediator/x", "done")

    assert result.status == "no_data"
    assert "'remediator/x'" in result.summary and "3 lookups" in result.summary
    assert result.evidence == {"lookups": 3}
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1]
    assert [q["incident_key"] for q in state.queries] == [["remediator/x"]] * 3
    assert state.notes == []


def test_a_wrong_rest_token_is_an_error_without_any_retry(
    emulator: Emulator, events: Callable[..., PagerDutyEventsPager], rest: Callable[..., Any]
) -> None:
    state, _, _ = emulator
    page(events())
    sleeps = Sleeps()

    result = rest("not-the-key", sleep=sleeps).note_for_dedup_key(DEDUP, "done")

    assert result.status == "error"
    assert result.evidence == {"http_status": 401, "pagerduty_code": 2006}
    assert "incident lookup" in result.summary
    assert sleeps == []
    assert [(r["path"], r["status"]) for r in state.rest_rejected] == [("/incidents", 401)]
    assert state.notes == []


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_5xx_on_the_lookup_are_retried(
    emulator: Emulator,
    events: Callable[..., PagerDutyEventsPager],
    rest: Callable[..., Any],
    status: int,
) -> None:
    state, _, _ = emulator
    page(events())
    state.fail_next(status, times=2)

    result = rest().note_for_dedup_key(DEDUP, "done")

    assert result.status == "ok", result
    assert len(state.notes) == 1
    assert not state.faults


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        ('{"incidents": [', "could not be read"),
        ('{"total": null, "more": false}', "could not be read"),
        ('{"incidents": [{"status": "triggered"}], "more": false}', "lacks required fields"),
    ],
)
def test_a_malformed_listing_is_an_error_result(
    emulator: Emulator, rest: Callable[..., Any], body: str, summary: str
) -> None:
    state, _, _ = emulator
    state.answer_malformed_next(200, body=body)

    result = rest().note_for_dedup_key(DEDUP, "done")

    assert result.status == "error"
    assert summary in result.summary
    assert result.error
    assert state.notes == []


def test_a_slow_lookup_times_out_as_an_error_result(
    emulator: Emulator, rest: Callable[..., Any]
) -> None:
    state, _, _ = emulator
    state.delay_seconds = 0.3

    result = rest(timeout_seconds=0.05).note_for_dedup_key(DEDUP, "done")

    assert result.status == "error"
    assert "Timeout" in result.summary


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Authorization": None}, 401, 2006),
        ({"Authorization": f"Bearer {API_KEY}"}, 401, 2006),
        ({"Authorization": "Token token=wrong"}, 401, 2006),
        ({"Accept": None}, 400, 2001),
        ({"Accept": "application/json"}, 400, 2001),
    ],
)
def test_the_list_endpoint_refuses_requests_without_the_required_headers(
    emulator: Emulator, headers: dict[str, str | None], status: int, code: int
) -> None:
    state, _, _ = emulator

    answer = list_incidents(emulator, {"incident_key": DEDUP}, headers)

    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert state.queries == []


def test_the_list_endpoint_answers_an_unknown_key_with_an_empty_page_and_needs_no_from(
    emulator: Emulator,
) -> None:
    answer = list_incidents(emulator, {"incident_key": "remediator/nothing"})

    assert answer.status_code == 200
    assert answer.json() == {
        "incidents": [],
        "limit": 25,
        "offset": 0,
        "more": False,
        "total": None,
    }


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"limit": "0"}, "'limit' must be a positive integer"),
        ({"limit": "many"}, "'limit' must be a positive integer"),
        ({"offset": "-1"}, "'offset' must be a non-negative integer"),
        ({"statuses[]": ["open"]}, "'statuses[]' must be one of triggered, acknowledged, resolved"),
    ],
)
def test_the_list_endpoint_refuses_bad_parameters(
    emulator: Emulator, params: dict[str, Any], error: str
) -> None:
    answer = list_incidents(emulator, params)

    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "message": "Invalid Input Provided",
        "code": 2001,
        "errors": [error],
    }


def test_the_list_endpoint_pages_and_counts(
    emulator: Emulator, events: Callable[..., PagerDutyEventsPager]
) -> None:
    pager = events()
    for n in range(3):
        page(pager, f"remediator/incident/{n}")

    first = list_incidents(emulator, {"limit": 2, "total": "true"}).json()
    rest_of_it = list_incidents(emulator, {"limit": 2, "offset": 2}).json()
    capped = list_incidents(emulator, {"limit": 500}).json()

    assert [i["incident_number"] for i in first["incidents"]] == [1, 2]
    assert (first["more"], first["total"]) == (True, 3)
    assert [i["incident_number"] for i in rest_of_it["incidents"]] == [3]
    assert (rest_of_it["more"], rest_of_it["total"]) == (False, None)
    assert (capped["limit"], len(capped["incidents"])) == (100, 3)
