"""How the OpenAI-compatible adapters (endpoint and embeddings probes, analyst) call the SDK.

One bounded retry on 429/5xx/timeouts (Retry-After honoured), and one reading of what failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import openai

from tools.retry import NO_RETRY, RetryPolicy, Verdict, call_with_retry, verdict_for_status

T = TypeVar("T")

FailureKind = Literal[
    "timeout", "unreachable", "rate_limited", "server_error", "refused", "malformed"
]


UNAVAILABLE: frozenset[str] = frozenset({"timeout", "unreachable", "rate_limited", "server_error"})


@dataclass(frozen=True)
class Failure:
    """Why an SDK call failed, in the terms a probe reports."""

    kind: FailureKind
    http_status: int | None
    detail: str


def classify_openai_error(exc: BaseException) -> Verdict:
    """Retry 408/429/5xx answers (with the server's Retry-After); nothing else."""
    if isinstance(exc, openai.APIStatusError):
        return verdict_for_status(exc.status_code, exc.response.headers)
    return NO_RETRY


def describe_failure(exc: BaseException) -> Failure:
    """Name an SDK exception as a probe reports it (timeout, unreachable, refused, …)."""
    detail = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", None, detail)
    if isinstance(exc, openai.APIConnectionError):
        return Failure("unreachable", None, detail)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 408:
            return Failure("timeout", status, detail)
        if status == 429:
            return Failure("rate_limited", status, detail)
        return Failure("server_error" if status >= 500 else "refused", status, detail)
    return Failure("malformed", None, detail)


def call_openai(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    waits: list[float],
    system: str,
) -> T:
    """Run an SDK call with bounded retries, noting each pause in `waits`; raise the last error."""
    return call_with_retry(
        call,
        classify=classify_openai_error,
        policy=policy,
        sleep=sleep,
        on_retry=lambda _n, _exc, pause: waits.append(pause),
        system=system,
    )
