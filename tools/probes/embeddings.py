"""Probe an embedding service: canary texts, latency, vector dimension, cosine to golden vectors.

Built on langchain-openai's `OpenAIEmbeddings` with raw text (`check_embedding_ctx_length=False`,
so no tokenizer download) and its own retries off; 408/429/5xx are retried here with
`call_with_retry`. Golden vectors are captured once from a healthy service
(`capture_golden_vectors`, driven by `remediator baseline capture`) and kept as a JSON file.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr

from tools.openai_calls import call_openai, describe_failure
from tools.probes.endpoint import DEFAULT_RETRY, check_model
from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import RetryPolicy

DEFAULT_CANARIES: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "Customers may return unused items within 30 days for a full refund.",
    "Error 503: the upstream model is temporarily unavailable.",
)
DOWN_KINDS = frozenset({"timeout", "unreachable", "server_error"})


class MalformedEmbeddings(ValueError):
    """The service answered, but not with one finite vector of one dimension per text."""


class GoldenCaptureError(RuntimeError):
    """Golden vectors could not be captured; the message says why."""


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Return the cosine similarity of two vectors of the same length."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


def validate_golden(data: Any) -> dict[str, Any]:
    """Return golden vectors data when well formed: model, dimension, captured_at, vectors."""
    if not isinstance(data, dict):
        raise ValueError("golden vectors must be a JSON object")
    for key, kind in (("model", str), ("dimension", int), ("captured_at", str), ("vectors", dict)):
        if not isinstance(data.get(key), kind):
            raise ValueError(f"golden vectors need '{key}' of type {kind.__name__}")
    if not data["vectors"]:
        raise ValueError("golden vectors hold no canary texts")
    for text, vector in data["vectors"].items():
        if not isinstance(vector, list) or len(vector) != data["dimension"]:
            raise ValueError(f"golden vector of {text!r} is not {data['dimension']} numbers")
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in vector):
            raise ValueError(f"golden vector of {text!r} holds a value that is not a number")
    return data


def load_golden_vectors(path: Path) -> dict[str, Any]:
    """Read and check a golden vectors file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    try:
        return validate_golden(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def save_golden_vectors(golden: Mapping[str, Any], path: Path) -> None:
    """Check golden vectors and write them as JSON, creating the parent folder."""
    validate_golden(dict(golden))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(golden, indent=1) + "\n", encoding="utf-8")


def capture_golden_vectors(
    *,
    base_url: str,
    api_key: str,
    model: str,
    texts: Sequence[str] = DEFAULT_CANARIES,
    timeout_seconds: float = 10.0,
    retry: RetryPolicy = DEFAULT_RETRY,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Embed the canary texts now and return them as golden vectors; raise GoldenCaptureError."""
    probe = EmbeddingProbe(
        base_url=base_url,
        api_key=api_key,
        model=model,
        canaries=texts,
        timeout_seconds=timeout_seconds,
        retry=retry,
        sleep=sleep,
    )
    try:
        vectors, _ = probe.embed()
    except Exception as exc:
        failure = describe_failure(exc)
        raise GoldenCaptureError(
            f"{model} at {base_url}: {failure.kind}: {failure.detail}"
        ) from exc
    return {
        "model": model,
        "dimension": len(vectors[0]),
        "captured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "vectors": dict(zip(probe.canaries, vectors, strict=True)),
    }


class EmbeddingProbe:
    """Embed canary texts and compare them with golden vectors captured from a healthy service."""

    name = "embeddings"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        golden: Mapping[str, Any] | None = None,
        canaries: Sequence[str] = DEFAULT_CANARIES,
        min_similarity: float = 0.98,
        latency_budget_ms: float = 2000.0,
        timeout_seconds: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._golden = validate_golden(dict(golden)) if golden is not None else None
        self.canaries = tuple(self._golden["vectors"] if self._golden else canaries)
        if not self.canaries:
            raise ValueError("an embeddings probe needs at least one canary text")
        self._base_url, self._api_key, self._model = base_url, api_key, model
        self._min_similarity = min_similarity
        self._budget_ms = latency_budget_ms
        self._timeout = timeout_seconds
        self._retry, self._sleep = retry, sleep
        self._client = OpenAIEmbeddings(
            model=model,
            openai_api_base=base_url,
            openai_api_key=SecretStr(api_key),
            check_embedding_ctx_length=False,
            max_retries=0,
            request_timeout=timeout_seconds,
        )

    def check(self) -> tuple[bool, str]:
        """Return whether the service lists the configured model."""
        return check_model(self._base_url, self._api_key, self._model, self._timeout)

    def embed(self) -> tuple[list[list[float]], dict[str, Any]]:
        """Embed the canaries (retrying 408/429/5xx); return the vectors and how the call went."""
        attempt = Stopwatch()
        waits: list[float] = []

        def call() -> list[list[float]]:
            nonlocal attempt
            attempt = Stopwatch()
            return self._client.embed_documents(list(self.canaries))

        vectors = call_openai(
            call, policy=self._retry, sleep=self._sleep, waits=waits, system=self.name
        )
        _check_shape(vectors, len(self.canaries))
        return vectors, {"latency_ms": attempt.ms, "retry_waits": waits}

    def probe(self) -> ToolResult:
        """Embed the canaries once and judge the service: latency, dimension, similarity."""
        watch = Stopwatch()
        asked = {
            "base_url": self._base_url,
            "model": self._model,
            "canaries": len(self.canaries),
            "min_similarity": self._min_similarity,
            "latency_budget_ms": self._budget_ms,
        }
        if self._golden is not None and self._golden["model"] != self._model:
            return ToolResult(
                tool=self.name,
                status=ToolStatus.error,
                summary=f"golden vectors are of {self._golden['model']}, not {self._model}",
                asked=asked,
                error="golden vectors captured from another model; capture them again",
            )
        try:
            vectors, call = self.embed()
        except Exception as exc:
            failure = describe_failure(exc)
            status = (
                ToolStatus.down
                if failure.kind in DOWN_KINDS
                else ToolStatus.degraded
                if failure.kind == "rate_limited"
                else ToolStatus.error
            )
            return ToolResult(
                tool=self.name,
                status=status,
                summary=f"{self._model} embeddings failed: {failure.kind}"
                + (f" (HTTP {failure.http_status})" if failure.http_status else ""),
                asked=asked,
                evidence={"failure": failure.kind, "http_status": failure.http_status},
                latency_ms=watch.ms,
                error=failure.detail,
            )
        evidence, problems = self._compare(vectors)
        evidence.update(call)
        if call["latency_ms"] > self._budget_ms:
            problems.append(
                f"latency {call['latency_ms']} ms over the {self._budget_ms:g} ms budget"
            )
        evidence["problems"] = problems
        summary = "; ".join(problems) or (
            f"{len(vectors)} canaries embedded in {call['latency_ms']} ms, dimension "
            f"{evidence['dimension']}"
            + (f", similarity ≥ {evidence['min_similarity']}" if self._golden else "")
        )
        return ToolResult(
            tool=self.name,
            status=ToolStatus.degraded if problems else ToolStatus.ok,
            summary=f"{self._model}: {summary}",
            asked=asked,
            evidence=evidence,
            latency_ms=watch.ms,
        )

    def _compare(self, vectors: list[list[float]]) -> tuple[dict[str, Any], list[str]]:
        dimension = len(vectors[0])
        evidence: dict[str, Any] = {"model": self._model, "dimension": dimension, "golden": False}
        if self._golden is None:
            return evidence, []
        expected = self._golden["dimension"]
        evidence.update(golden=True, expected_dimension=expected, threshold=self._min_similarity)
        evidence["golden_captured_at"] = self._golden["captured_at"]
        if dimension != expected:
            return evidence, [f"dimension changed from {expected} to {dimension}"]
        golden = self._golden["vectors"]
        similarity = {
            t: round(cosine(v, golden[t]), 4) for t, v in zip(self.canaries, vectors, strict=True)
        }
        lowest = min(similarity.values())
        evidence.update(similarity=similarity, min_similarity=lowest)
        if lowest < self._min_similarity:
            return evidence, [
                f"similarity to golden vectors fell to {lowest} (threshold {self._min_similarity})"
            ]
        return evidence, []


def _check_shape(vectors: Any, count: int) -> None:
    if not isinstance(vectors, list) or len(vectors) != count:
        raise MalformedEmbeddings(f"expected {count} vectors, got {_size(vectors)}")
    dimensions = {len(v) if isinstance(v, list) else -1 for v in vectors}
    if len(dimensions) != 1 or min(dimensions) < 1:
        raise MalformedEmbeddings(f"vectors of unequal or empty dimension: {sorted(dimensions)}")
    for vector in vectors:
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in vector):
            raise MalformedEmbeddings("a vector holds a value that is not a finite number")


def _size(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else type(value).__name__
