"""Probe an OpenAI-compatible LLM endpoint with diagnostic prompts whose answers are known.

Built on langchain-openai's `ChatOpenAI` with its own retries off (`max_retries=0`); 408/429/5xx
are retried here with `call_with_retry`, honouring Retry-After. Timeouts are findings, not retried.
The helpers that classify openai SDK errors are shared with the embeddings probe.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from tools.openai_calls import (
    UNAVAILABLE,
    call_openai,
    describe_failure,
)
from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import RetryPolicy

MatchKind = Literal["exact", "contains", "regex"]
Prices = Mapping[str, Mapping[str, float]]
DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class DiagnosticPrompt:
    """A prompt with a known answer, and how the answer must match it."""

    name: str
    prompt: str
    expected: str
    match: MatchKind = "contains"
    system: str | None = None

    def accepts(self, answer: str) -> bool:
        """Return whether the answer is right: exact (trimmed), contains (any case) or regex."""
        if self.match == "exact":
            return answer.strip() == self.expected.strip()
        if self.match == "contains":
            return self.expected.casefold() in answer.casefold()
        return re.search(self.expected, answer) is not None


DEFAULT_PROMPTS: tuple[DiagnosticPrompt, ...] = (
    DiagnosticPrompt(
        "arithmetic", "What is 17 + 25? Answer with the number only.", r"\b42\b", "regex"
    ),
    DiagnosticPrompt("capital", "What is the capital of France? Answer with one word.", "Paris"),
    DiagnosticPrompt(
        "echo", "Reply with the single word READY and nothing else.", "READY", "exact"
    ),
)


def check_model(
    base_url: str, api_key: str, model: str, timeout_seconds: float
) -> tuple[bool, str]:
    """Ask GET /models/{model} whether the endpoint serves the model."""
    client = openai.OpenAI(
        base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_seconds
    )
    try:
        client.models.retrieve(model)
    except openai.OpenAIError as exc:
        failure = describe_failure(exc)
        return False, f"{model} at {base_url}: {failure.kind} ({failure.detail})"
    finally:
        client.close()
    return True, f"{model} served at {base_url}"


def cost_usd(prices: Prices, model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Return the cost of the tokens from the price table, or None when the model has no price."""
    price = prices.get(model)
    if price is None:
        return None
    cost = (
        input_tokens / 1000 * price["input_per_1k"] + output_tokens / 1000 * price["output_per_1k"]
    )
    return round(cost, 8)


class EndpointProbe:
    """Ask an LLM endpoint questions with known answers; report correctness, latency and cost."""

    name = "endpoint"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        prompts: Sequence[DiagnosticPrompt] = DEFAULT_PROMPTS,
        prices: Prices | None = None,
        latency_budget_ms: float = 5000.0,
        timeout_seconds: float = 10.0,
        max_tokens: int = 64,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not prompts:
            raise ValueError("an endpoint probe needs at least one diagnostic prompt")
        self._max_tokens = max_tokens
        self._base_url, self._api_key, self._model = base_url, api_key, model
        self._prompts = tuple(prompts)
        self._prices: Prices = prices or {}
        self._budget_ms = latency_budget_ms
        self._timeout = timeout_seconds
        self._retry, self._sleep = retry, sleep
        self._llm = ChatOpenAI(
            model=model,
            base_url=base_url,
            api_key=SecretStr(api_key),
            max_retries=0,
            use_responses_api=False,
            timeout=timeout_seconds,
            temperature=0,
            max_completion_tokens=max_tokens,
        )

    def check(self) -> tuple[bool, str]:
        """Return whether the endpoint lists the configured model."""
        return check_model(self._base_url, self._api_key, self._model, self._timeout)

    def for_model(self, model: str) -> EndpointProbe:
        """Return the same probe (prompts, budgets, prices, retries) asking another model name,
        e.g. one route of a gateway addressed directly."""
        if model == self._model:
            return self
        return EndpointProbe(
            base_url=self._base_url,
            api_key=self._api_key,
            model=model,
            prompts=self._prompts,
            prices=self._prices,
            latency_budget_ms=self._budget_ms,
            timeout_seconds=self._timeout,
            max_tokens=self._max_tokens,
            retry=self._retry,
            sleep=self._sleep,
        )

    def probe(self) -> ToolResult:
        """Run every diagnostic prompt once and judge the endpoint from the answers."""
        watch = Stopwatch()
        results = [self._ask(p) for p in self._prompts]
        status, summary = self._verdict(results)
        input_tokens = sum(r.get("input_tokens") or 0 for r in results)
        output_tokens = sum(r.get("output_tokens") or 0 for r in results)
        first_failure = next((r["error"] for r in results if r.get("error")), None)
        return ToolResult(
            tool=self.name,
            status=status,
            summary=summary,
            asked={
                "base_url": self._base_url,
                "model": self._model,
                "prompts": [p.name for p in self._prompts],
                "latency_budget_ms": self._budget_ms,
                "timeout_seconds": self._timeout,
            },
            evidence={
                "model": self._model,
                "prompts": results,
                "correct": sum(1 for r in results if r["outcome"] == "ok"),
                "total": len(results),
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cost_usd": cost_usd(self._prices, self._model, input_tokens, output_tokens),
            },
            latency_ms=watch.ms,
            error=first_failure if status in (ToolStatus.down, ToolStatus.error) else None,
        )

    def _ask(self, prompt: DiagnosticPrompt) -> dict[str, Any]:
        messages: list[BaseMessage] = [HumanMessage(prompt.prompt)]
        if prompt.system:
            messages.insert(0, SystemMessage(prompt.system))
        attempt = Stopwatch()
        waits: list[float] = []

        def call() -> BaseMessage:
            nonlocal attempt
            attempt = Stopwatch()
            return self._llm.invoke(messages)

        row: dict[str, Any] = {
            "name": prompt.name,
            "match": prompt.match,
            "expected": prompt.expected,
        }
        try:
            message = call_openai(
                call, policy=self._retry, sleep=self._sleep, waits=waits, system=self.name
            )
        except Exception as exc:
            failure = describe_failure(exc)
            row.update(outcome=failure.kind, http_status=failure.http_status, error=failure.detail)
            row.update(latency_ms=attempt.ms, retry_waits=waits)
            return row
        answer = message.text if isinstance(message, AIMessage) else str(message.content)
        usage = message.usage_metadata if isinstance(message, AIMessage) else None
        correct = prompt.accepts(answer)
        slow = attempt.ms > self._budget_ms
        row.update(
            outcome="wrong" if not correct else "slow" if slow else "ok",
            answer=answer[:200],
            latency_ms=attempt.ms,
            retry_waits=waits,
            input_tokens=usage["input_tokens"] if usage else None,
            output_tokens=usage["output_tokens"] if usage else None,
        )
        if usage:
            tokens = (usage["input_tokens"], usage["output_tokens"])
            row["cost_usd"] = cost_usd(self._prices, self._model, *tokens)
        return row

    def _verdict(self, results: list[dict[str, Any]]) -> tuple[ToolStatus, str]:
        outcomes = [r["outcome"] for r in results]
        total = len(outcomes)
        counts = {kind: outcomes.count(kind) for kind in dict.fromkeys(outcomes)}
        told = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        if all(o in UNAVAILABLE for o in outcomes):
            return ToolStatus.down, f"{self._model} did not answer any of {total} prompts ({told})"
        if any(o in ("refused", "malformed") for o in outcomes):
            return ToolStatus.error, f"{self._model} gave unusable answers ({told})"
        if counts.get("ok") != total:
            return ToolStatus.degraded, f"{self._model}: {told} of {total} diagnostic prompts"
        slowest = max(r["latency_ms"] for r in results)
        return (
            ToolStatus.ok,
            f"{self._model} answered all {total} prompts right, slowest {slowest} ms",
        )
