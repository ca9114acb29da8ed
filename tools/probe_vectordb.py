"""Vector DB health: Qdrant readiness plus a canary query with a known nearest neighbour.

An index that answers wrongly is broken even if it is up: the probe stores a canary vector and the
id that exact search returns first for it, and reports `degraded` when the index answers another
one. Other vector DBs get a plain HTTP readiness probe.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import (
    NO_RETRY,
    RETRYABLE_STATUSES,
    RetryPolicy,
    Verdict,
    call_with_retry,
    verdict_for_status,
)

T = TypeVar("T")

DEFAULT_POLICY = RetryPolicy(attempts=3, base_seconds=0.2, max_seconds=2.0)
ERROR_TEXT_LIMIT = 300


@dataclass(frozen=True)
class Canary:
    """A stored query vector and the point id that must come back first for it."""

    collection: str
    vector: tuple[float, ...]
    expected_id: int | str


class _Attempts(Generic[T]):
    """Wrap a call to count its attempts and time the last one."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._call = call
        self.count = 0
        self.last_ms = 0.0

    def __call__(self) -> T:
        self.count += 1
        watch = Stopwatch()
        try:
            return self._call()
        finally:
            self.last_ms = watch.ms


class _Report:
    """What a probe asked and found so far; `finish` turns it into the probe's ToolResult."""

    def __init__(self, tool: str, **asked: Any) -> None:
        self.tool = tool
        self.asked = asked
        self.evidence: dict[str, Any] = {}
        self._watch = Stopwatch()

    def finish(self, status: ToolStatus, summary: str, error: str | None = None) -> ToolResult:
        """Return the result with the latency of the whole probe."""
        return ToolResult(
            tool=self.tool,
            status=status,
            summary=summary,
            asked=self.asked,
            evidence=self.evidence,
            latency_ms=self._watch.ms,
            error=error,
        )


def classify_qdrant(exc: BaseException) -> Verdict:
    """Retry qdrant-client's 408/429/5xx answers and transport errors (timeouts, refusals)."""
    if isinstance(exc, ResourceExhaustedResponse):
        return Verdict(True, float(exc.retry_after_s))
    if isinstance(exc, UnexpectedResponse):
        return verdict_for_status(exc.status_code, exc.headers)
    if isinstance(exc, ResponseHandlingException) and isinstance(exc.source, httpx.TransportError):
        return Verdict(True)
    return NO_RETRY


def describe_qdrant_failure(
    exc: BaseException, collection: str
) -> tuple[ToolStatus, str, int | None]:
    """Return the status, reason and HTTP status for a call that failed for good."""
    if isinstance(exc, ResourceExhaustedResponse):
        return ToolStatus.degraded, f"rate limited (HTTP 429): {exc.message}", 429
    if isinstance(exc, UnexpectedResponse):
        code, reason = exc.status_code, _qdrant_error(exc.content)
        if code == 404:
            return ToolStatus.down, f"collection `{collection}` not found: {reason}", code
        if code == 429:
            return ToolStatus.degraded, f"rate limited (HTTP 429): {reason}", code
        if code in RETRYABLE_STATUSES:
            return ToolStatus.down, f"HTTP {code} from Qdrant: {reason}", code
        return ToolStatus.error, f"Qdrant refused the request (HTTP {code}): {reason}", code
    if isinstance(exc, ResponseHandlingException):
        if isinstance(exc.source, httpx.TransportError):
            return ToolStatus.down, f"unreachable: {type(exc.source).__name__} {exc.source}", None
        return ToolStatus.error, f"malformed answer: {_short(exc.source)}", None
    if isinstance(exc, json.JSONDecodeError | AssertionError):
        return ToolStatus.error, f"malformed answer: {_short(exc)}", None
    # Local mode raises ValueError("Collection <name> not found") (qdrant_client/local).
    if isinstance(exc, ValueError) and "not found" in str(exc):
        return ToolStatus.down, f"collection `{collection}` not found: {exc}", None
    return ToolStatus.error, f"{type(exc).__name__}: {_short(exc)}", None


class QdrantProbe:
    """Probe a Qdrant collection: it exists, holds points, and answers the canary correctly."""

    name = "vector_db"

    def __init__(
        self,
        client: QdrantClient,
        canary: Canary,
        *,
        budget_ms: float = 300.0,
        top_k: int = 3,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.canary = canary
        self.budget_ms = budget_ms
        self.top_k = top_k
        self._policy = policy
        self._sleep = sleep

    @classmethod
    def connect(
        cls,
        location: str,
        canary: Canary,
        *,
        api_key: str | None = None,
        timeout_seconds: int = 5,
        budget_ms: float = 300.0,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> QdrantProbe:
        """Open a client on a server URL, a local path or ":memory:", and probe through it."""
        if location.startswith(("http://", "https://")):
            # The client has no retries of its own; the version check would add a request.
            client = QdrantClient(
                url=location, api_key=api_key, timeout=timeout_seconds, check_compatibility=False
            )
        elif location == ":memory:":
            client = QdrantClient(location=location)
        else:
            client = QdrantClient(path=location)
        return cls(client, canary, budget_ms=budget_ms, policy=policy)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def check(self) -> tuple[bool, str]:
        """Read the collection once, without retries."""
        try:
            info = self._client.get_collection(self.canary.collection)
        except Exception as exc:
            return False, describe_qdrant_failure(exc, self.canary.collection)[1]
        return True, f"collection `{self.canary.collection}` has {info.points_count} points"

    def probe(self) -> ToolResult:
        """Check readiness, then run the canary query against its known answer and budget."""
        collection = self.canary.collection
        report = _Report(
            self.name,
            collection=collection,
            expected_id=self.canary.expected_id,
            dim=len(self.canary.vector),
            top_k=self.top_k,
            budget_ms=self.budget_ms,
        )
        evidence, finish = report.evidence, report.finish

        def failed(exc: Exception, step: str, attempts: int) -> ToolResult:
            status, reason, http_status = describe_qdrant_failure(exc, collection)
            evidence.update({"step": step, "http_status": http_status, "attempts": attempts})
            return finish(status, f"{step} failed after {attempts} attempt(s): {reason}", reason)

        readiness = _Attempts(lambda: self._client.get_collection(collection))
        try:
            info = self._retry(readiness)
        except Exception as exc:
            return failed(exc, "reading the collection", readiness.count)
        evidence.update({"points_count": info.points_count, "collection_status": str(info.status)})
        if info.points_count == 0:
            return finish(ToolStatus.down, f"collection `{collection}` is empty")

        query = _Attempts(
            lambda: self._client.query_points(
                collection, query=list(self.canary.vector), limit=self.top_k, with_payload=False
            )
        )
        try:
            answer = self._retry(query)
        except Exception as exc:
            return failed(exc, "the canary query", query.count)
        ids = [point.id for point in answer.points]
        evidence.update(
            {
                "top_ids": ids,
                "top_score": answer.points[0].score if answer.points else None,
                "query_ms": query.last_ms,
                "attempts": query.count,
            }
        )
        problems = self._judge(ids, query.last_ms, info.status)
        if problems:
            return finish(ToolStatus.degraded, "; ".join(problems))
        retries = query.count - 1
        retried = f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""
        return finish(
            ToolStatus.ok,
            f"collection `{collection}` ({info.points_count} points) returned the canary's "
            f"neighbour {ids[0]!r} first in {query.last_ms} ms{retried}",
        )

    def _retry(self, call: Callable[[], T]) -> T:
        return call_with_retry(
            call,
            classify=classify_qdrant,
            policy=self._policy,
            sleep=self._sleep,
            system=self.name,
        )

    def _judge(
        self, ids: Sequence[object], query_ms: float, status: models.CollectionStatus
    ) -> list[str]:
        problems = []
        expected = self.canary.expected_id
        if not ids:
            problems.append("the canary query returned no neighbours")
        elif str(ids[0]).lower() != str(expected).lower():
            problems.append(
                f"the canary's nearest neighbour is {ids[0]!r}, expected {expected!r}: "
                "the index answers wrongly"
            )
        if query_ms > self.budget_ms:
            problems.append(
                f"the canary query took {query_ms} ms, over the {self.budget_ms} ms budget"
            )
        if status == models.CollectionStatus.RED:
            problems.append("the collection's status is red (an operation failed)")
        return problems


class HttpReadinessProbe:
    """GET a vector DB's readiness URL: expected status, optional JSON field, latency budget.

    `json_field` is a dotted path into the JSON answer; with `json_value` None only its presence
    is checked.
    """

    name = "vector_db_http"

    def __init__(
        self,
        url: str,
        *,
        expect_status: int = 200,
        json_field: str | None = None,
        json_value: Any = None,
        headers: dict[str, str] | None = None,
        budget_ms: float = 300.0,
        timeout_seconds: float = 5.0,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.expect_status = expect_status
        self.json_field = json_field
        self.json_value = json_value
        self.budget_ms = budget_ms
        self._http = httpx.Client(headers=headers, timeout=timeout_seconds)
        self._policy = policy
        self._sleep = sleep

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def check(self) -> tuple[bool, str]:
        """GET the URL once, without retries."""
        try:
            response = self._http.get(self.url)
        except httpx.HTTPError as exc:
            return False, f"unreachable: {type(exc).__name__} {exc}"
        if response.status_code != self.expect_status:
            return False, f"HTTP {response.status_code}, expected {self.expect_status}"
        return True, f"{self.url} answers HTTP {response.status_code}"

    def probe(self) -> ToolResult:
        """GET the URL with bounded retries and judge status, JSON field and latency."""
        report = _Report(
            self.name,
            url=self.url,
            expect_status=self.expect_status,
            json_field=self.json_field,
            json_value=self.json_value,
            budget_ms=self.budget_ms,
        )
        evidence, finish = report.evidence, report.finish

        attempts = _Attempts(self._get)
        try:
            response = call_with_retry(
                attempts,
                classify=_classify_http,
                policy=self._policy,
                sleep=self._sleep,
                system=self.name,
            )
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            reason = f"HTTP {code} after {attempts.count} attempt(s): {_short(exc.response.text)}"
            evidence.update({"http_status": code, "attempts": attempts.count})
            status = ToolStatus.degraded if code == 429 else ToolStatus.down
            return finish(status, reason, reason)
        except httpx.HTTPError as exc:
            reason = f"unreachable after {attempts.count} attempt(s): {type(exc).__name__} {exc}"
            evidence["attempts"] = attempts.count
            return finish(ToolStatus.down, reason, reason)
        evidence.update(
            {
                "http_status": response.status_code,
                "attempts": attempts.count,
                "ms": attempts.last_ms,
            }
        )
        if response.status_code != self.expect_status:
            reason = f"HTTP {response.status_code}, expected {self.expect_status}"
            return finish(ToolStatus.error, reason, _short(response.text))
        problems = []
        if self.json_field is not None:
            try:
                found = _field(response.json(), self.json_field)
            except (ValueError, KeyError, TypeError) as exc:
                reason = f"malformed answer: no JSON field `{self.json_field}` ({_short(exc)})"
                return finish(ToolStatus.error, reason, reason)
            evidence["json_value"] = found
            if self.json_value is not None and found != self.json_value:
                problems.append(f"`{self.json_field}` is {found!r}, expected {self.json_value!r}")
        if attempts.last_ms > self.budget_ms:
            problems.append(
                f"answered in {attempts.last_ms} ms, over the {self.budget_ms} ms budget"
            )
        if problems:
            return finish(ToolStatus.degraded, "; ".join(problems))
        return finish(ToolStatus.ok, f"ready: HTTP {response.status_code} in {attempts.last_ms} ms")

    def _get(self) -> httpx.Response:
        response = self._http.get(self.url)
        if (
            response.status_code != self.expect_status
            and response.status_code in RETRYABLE_STATUSES
        ):
            raise httpx.HTTPStatusError("retryable", request=response.request, response=response)
        return response


def _classify_http(exc: BaseException) -> Verdict:
    if isinstance(exc, httpx.HTTPStatusError):
        return verdict_for_status(exc.response.status_code, exc.response.headers)
    if isinstance(exc, httpx.TransportError):
        return Verdict(True)
    return NO_RETRY


def _field(body: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(body, dict):
            raise TypeError(f"`{key}` is not inside an object")
        body = body[key]
    return body


def seed_canary(
    client: QdrantClient,
    collection: str,
    dim: int,
    *,
    points: int = 64,
    distance: models.Distance = models.Distance.COSINE,
    seed: int = 7,
) -> Canary:
    """Fill a collection with deterministic vectors (ids 1..points) and return its canary.

    The canary is a slightly moved copy of one stored vector; its expected id is computed by exact
    search here, so it is right by construction. Creates the collection when missing; upserting the
    same ids again is harmless. Raises the client's errors: this is set-up, not a probe.
    """
    rng = random.Random(seed)
    vectors = [[rng.gauss(0.0, 1.0) for _ in range(dim)] for _ in range(points)]
    query = tuple(x + rng.gauss(0.0, 0.05) for x in vectors[points // 2])
    scores = [_similarity(distance, query, vector) for vector in vectors]
    expected = 1 + max(range(points), key=scores.__getitem__)
    if not client.collection_exists(collection):
        client.create_collection(
            collection, vectors_config=models.VectorParams(size=dim, distance=distance)
        )
    client.upsert(
        collection,
        points=[
            models.PointStruct(id=i + 1, vector=vector, payload={"canary_seed": seed})
            for i, vector in enumerate(vectors)
        ],
        wait=True,
    )
    return Canary(collection, query, expected)


def capture_canary(client: QdrantClient, collection: str) -> Canary:
    """Take a stored point as the canary and record the id its vector finds first, today.

    Run while the index is known good (`remediator baseline capture`): later probes compare
    against this answer. Raises the client's errors, or ValueError when there is no usable point.
    """
    records, _ = client.scroll(collection, limit=1, with_vectors=True)
    stored = records[0].vector if records else None
    if not isinstance(stored, list) or not all(isinstance(x, float | int) for x in stored):
        raise ValueError(f"collection {collection} has no point with a plain vector to use")
    vector = [float(x) for x in stored]  # type: ignore[arg-type]
    hits = client.query_points(collection, query=vector, limit=1).points
    if not hits:
        raise ValueError(f"collection {collection} answered no neighbour for its own point")
    found = hits[0].id
    return Canary(collection, tuple(vector), found if isinstance(found, int) else str(found))


def _similarity(distance: models.Distance, a: Sequence[float], b: Sequence[float]) -> float:
    """Return a score where larger is nearer, for each of Qdrant's distances."""
    pairs = list(zip(a, b, strict=True))
    if distance == models.Distance.EUCLID:
        return -math.sqrt(sum((x - y) ** 2 for x, y in pairs))
    if distance == models.Distance.MANHATTAN:
        return -sum(abs(x - y) for x, y in pairs)
    dot = sum(x * y for x, y in pairs)
    if distance == models.Distance.DOT:
        return dot
    return dot / (math.hypot(*a) * math.hypot(*b))


def _qdrant_error(content: bytes) -> str:
    try:
        return str(json.loads(content)["status"]["error"])
    except (ValueError, KeyError, TypeError):
        return _short(content.decode(errors="replace"))


def _short(value: object) -> str:
    return " ".join(str(value).split())[:ERROR_TEXT_LIMIT]
