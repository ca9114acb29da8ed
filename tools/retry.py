"""Bounded retries for outside calls: back off on 429/5xx, honour Retry-After, never 4xx.

Adapters whose SDK has no retry policy of its own wrap their call in `call_with_retry` and give it a
`classify` function that says, for an exception, whether to retry and how long the server asked
to wait. Adapters whose SDK retries by itself call `count_retry` from that SDK's retry hook.
Either way each retry is told to the hooks added with `add_retry_hook`: the service adds one that
counts it in `remediator_outgoing_retries_total{system}` (agent/telemetry/metrics.py), so the
adapters need no metrics library of their own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
RetryHook = Callable[[str], None]
"""Told the name of the outside system each time a call to it is retried."""

_retry_hooks: list[RetryHook] = []

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Verdict:
    """Whether an error is worth another attempt, and the wait the server asked for (seconds)."""

    retry: bool
    retry_after: float | None = None


NO_RETRY = Verdict(False)


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and the backoff between them (exponential with jitter, capped)."""

    attempts: int = 3
    base_seconds: float = 0.5
    max_seconds: float = 10.0
    jitter: float = 0.1

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Return the pause before attempt number `attempt + 1` (attempt counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_seconds)
        backoff: float = self.base_seconds * 2.0 ** (attempt - 1)
        return min(backoff * (1 + self.jitter * random.random()), self.max_seconds)


def verdict_for_status(status: int | None, headers: Mapping[str, str] | None = None) -> Verdict:
    """Classify an HTTP status: 408/429/5xx are retried (with Retry-After), other 4xx are not."""
    if status is None or status not in RETRYABLE_STATUSES:
        return NO_RETRY
    return Verdict(True, parse_retry_after(headers or {}))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Return Retry-After in seconds when given as a number (the form these APIs use)."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(float(value), 0.0)
            except ValueError:
                return None
    return None


def add_retry_hook(hook: RetryHook) -> None:
    """Call `hook(system)` on every retry of a call to an outside system (once per hook)."""
    if hook not in _retry_hooks:
        _retry_hooks.append(hook)


def count_retry(system: str) -> None:
    """Tell the retry hooks about one retry of a call to the named outside system."""
    for hook in list(_retry_hooks):
        hook(system)


def call_with_retry(
    call: Callable[[], T],
    *,
    classify: Callable[[BaseException], Verdict],
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    system: str = "other",
) -> T:
    """Call until it succeeds, an error is not retryable, or attempts run out (then re-raise)."""
    attempt = 1
    while True:
        try:
            return call()
        except Exception as exc:
            verdict = classify(exc)
            if not verdict.retry or attempt >= policy.attempts:
                raise
            pause = policy.wait(attempt, verdict.retry_after)
            count_retry(system)
            if on_retry is not None:
                on_retry(attempt, exc, pause)
            sleep(pause)
            attempt += 1
