"""Vector DB health through `qdrant-client`: readiness, and a canary query with a known answer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from tools.probes.attempts import DEFAULT_POLICY, Attempts, ProbeReport, T, short
from tools.probes.canary import Canary
from tools.result import ToolResult, ToolStatus
from tools.retry import (
    NO_RETRY,
    RETRYABLE_STATUSES,
    RetryPolicy,
    Verdict,
    call_with_retry,
    verdict_for_status,
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
        return ToolStatus.error, f"malformed answer: {short(exc.source)}", None
    if isinstance(exc, json.JSONDecodeError | AssertionError):
        return ToolStatus.error, f"malformed answer: {short(exc)}", None
    # Local mode raises ValueError("Collection <name> not found") (qdrant_client/local).
    if isinstance(exc, ValueError) and "not found" in str(exc):
        return ToolStatus.down, f"collection `{collection}` not found: {exc}", None
    return ToolStatus.error, f"{type(exc).__name__}: {short(exc)}", None


def open_client(
    location: str, *, api_key: str | None = None, timeout_seconds: int = 5
) -> QdrantClient:
    """Open a client on a server URL, a local path or ":memory:".

    One client can serve every probe of the same Qdrant (each its own collection): each client
    holds its own copy of the SDK's model schemas (about 1.7 MB), and a local path opens once.
    """
    if location.startswith(("http://", "https://")):
        # The client has no retries of its own; the version check would add a request.
        return QdrantClient(
            url=location, api_key=api_key, timeout=timeout_seconds, check_compatibility=False
        )
    if location == ":memory:":
        return QdrantClient(location=location)
    return QdrantClient(path=location)


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
        """Open a client of its own (`open_client`) and probe through it."""
        client = open_client(location, api_key=api_key, timeout_seconds=timeout_seconds)
        return cls(client, canary, budget_ms=budget_ms, policy=policy)

    def close(self) -> None:
        """Close the client's connections (those of every probe that shares the client)."""
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
        report = ProbeReport(
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

        readiness = Attempts(lambda: self._client.get_collection(collection))
        try:
            info = self._retry(readiness)
        except Exception as exc:
            return failed(exc, "reading the collection", readiness.count)
        evidence.update({"points_count": info.points_count, "collection_status": str(info.status)})
        if info.points_count == 0:
            return finish(ToolStatus.down, f"collection `{collection}` is empty")

        query = Attempts(
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


def _qdrant_error(content: bytes) -> str:
    try:
        return str(json.loads(content)["status"]["error"])
    except (ValueError, KeyError, TypeError):
        return short(content.decode(errors="replace"))
