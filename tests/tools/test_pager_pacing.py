"""PagerDuty triggers are paced per routing key only: N a minute, a 429's Retry-After honoured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.pagerduty import PagerDutyState, create_pagerduty_app
from sandbox.server import EmulatorServer
from sandbox.tls import make_self_signed
from tools.pager.pacing import KeyPacer
from tools.pager.pagerduty_events import PagerDutyEventsPager
from tools.protocols import PageRequest

TEAM_A = "a" * 32
TEAM_B = "b" * 32


class FakeTime:
    """A clock that sleeping moves forward, recording each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_key_sends_its_allowance_at_once_then_waits_for_the_window() -> None:
    clock = FakeTime()
    pacer = KeyPacer(3, clock.monotonic, clock.sleep)

    assert [pacer.wait(TEAM_A) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.wait(TEAM_B) == 0.0, "another team's key is never held by this one's"
    clock.now += 10
    assert pacer.wait(TEAM_A) == pytest.approx(50.0)


def test_a_block_holds_only_its_key() -> None:
    clock = FakeTime()
    pacer = KeyPacer(120, clock.monotonic, clock.sleep)

    pacer.block(TEAM_A, 7)

    assert pacer.wait(TEAM_B) == 0.0
    assert pacer.wait(TEAM_A) == pytest.approx(7.0)


@pytest.fixture
def pagerduty(tmp_path: Path) -> Iterator[tuple[PagerDutyState, str, Path]]:
    state = PagerDutyState(routing_keys={TEAM_A, TEAM_B})
    cert, key = make_self_signed(tmp_path)
    server = EmulatorServer(create_pagerduty_app(state), certfile=cert, keyfile=key).start()
    yield state, server.url, cert
    server.stop()


def page(n: int) -> PageRequest:
    return PageRequest(dedup_key=f"incident/{n}", summary="s", source="s", severity="critical")


def test_a_429_holds_the_key_for_its_retry_after_and_the_page_goes_out(
    pagerduty: tuple[PagerDutyState, str, Path],
) -> None:
    state, url, cert = pagerduty
    clock = FakeTime()
    pacer = KeyPacer(120, clock.monotonic, clock.sleep)
    team_a = PagerDutyEventsPager(TEAM_A, base_url=url, ca_bundle=cert, pacer=pacer)
    team_b = PagerDutyEventsPager(TEAM_B, base_url=url, ca_bundle=cert, pacer=pacer)
    state.fail_next(429, times=1, retry_after=4)

    assert team_a.trigger(page(1)).status == "ok"
    assert clock.sleeps == [pytest.approx(4.0)], "the Retry-After was not what it waited"
    assert team_b.trigger(page(2)).status == "ok"
    assert clock.sleeps == [pytest.approx(4.0)]
    assert [a["dedup_key"] for a in state.alerts] == ["incident/1", "incident/2"]


def test_a_429_that_lasts_gives_up_boundedly_with_the_status(
    pagerduty: tuple[PagerDutyState, str, Path],
) -> None:
    state, url, cert = pagerduty
    clock = FakeTime()
    pacer = KeyPacer(120, clock.monotonic, clock.sleep)
    pager = PagerDutyEventsPager(
        TEAM_A, base_url=url, ca_bundle=cert, pacer=pacer, rate_limit_retries=2
    )
    state.fail_next(429, times=10, retry_after=1)

    result = pager.trigger(page(1))

    assert result.status == "error" and result.evidence["http_status"] == 429
    assert len(state.faults) == 7
    assert state.alerts == []
