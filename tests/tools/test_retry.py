"""Bounded retries: 429/5xx retried with Retry-After honoured, 4xx never, attempts capped."""

from __future__ import annotations

import pytest

from tools.retry import (
    RetryPolicy,
    Verdict,
    add_retry_hook,
    call_with_retry,
    verdict_for_status,
)


class Status(Exception):
    def __init__(self, status: int, retry_after: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = {"Retry-After": retry_after} if retry_after else {}


def classify(exc: BaseException) -> Verdict:
    assert isinstance(exc, Status)
    return verdict_for_status(exc.status, exc.headers)


def flaky(*failures: Status) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "ok"

    return calls, call


def test_429_then_success_waits_for_retry_after() -> None:
    waits: list[float] = []
    calls, call = flaky(Status(429, "7"))
    assert call_with_retry(call, classify=classify, sleep=waits.append) == "ok"  # type: ignore[arg-type]
    assert waits == [7.0]
    assert len(calls) == 2


def test_5xx_twice_then_success_backs_off_exponentially() -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, base_seconds=1, jitter=0)
    _, call = flaky(Status(503), Status(500))
    assert call_with_retry(call, classify=classify, policy=policy, sleep=waits.append) == "ok"  # type: ignore[arg-type]
    assert waits == [1, 2]


def test_4xx_is_not_retried() -> None:
    calls, call = flaky(Status(400))
    with pytest.raises(Status):
        call_with_retry(call, classify=classify, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    calls, call = flaky(*[Status(503)] * 10)
    with pytest.raises(Status):
        call_with_retry(
            call,
            classify=classify,
            policy=RetryPolicy(attempts=4),  # type: ignore[arg-type]
            sleep=lambda _: None,
        )
    assert len(calls) == 4


def test_retry_after_is_capped() -> None:
    assert RetryPolicy(max_seconds=5).wait(1, 3600) == 5


def test_each_retry_is_told_to_the_hooks_under_its_system() -> None:
    told: list[str] = []
    add_retry_hook(told.append)
    add_retry_hook(told.append)  # once per hook, however often it is added

    _, call = flaky(Status(503), Status(429, "0"))
    call_with_retry(call, classify=classify, sleep=lambda _: None, system="test")  # type: ignore[arg-type]
    _, refused = flaky(Status(400))
    with pytest.raises(Status):
        call_with_retry(refused, classify=classify, sleep=lambda _: None, system="test")  # type: ignore[arg-type]

    assert told == ["test", "test"]
