"""GCP Cloud Logging through google-cloud-logging: error counts, top errors and slow requests.

The model id and version are matched as entry labels by default (`labels.model_id`,
`labels.model_version`); set `model_field` / `version_field` to e.g. `jsonPayload.model` when the
service logs them in its JSON payload instead. Each search sends two filtered `entries:list` calls:
the errors (`severity>="ERROR"`) and a sample of all entries, which tells "healthy" from "silent"
and shows slow requests. Both carry an explicit timestamp window, so the client adds no 24 h window
of its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import google.auth
import requests
from google.api_core.exceptions import GoogleAPICallError
from google.auth.credentials import Credentials
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import AuthorizedSession
from google.cloud.logging import DESCENDING, Client

from tools.logs.cloudwatch_insights import MESSAGE_CHARS, top_errors
from tools.protocols import LogQuery
from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import NO_RETRY, RetryPolicy, Verdict, call_with_retry, verdict_for_status

READ_SCOPES = ("https://www.googleapis.com/auth/logging.read",)
MAX_PAGE_SIZE = 1000
DEFAULT_RETRY = RetryPolicy(attempts=3, base_seconds=0.5, max_seconds=5.0)
SAMPLES = 5
PLAIN_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FIELD_ROOTS = frozenset({"labels", "jsonPayload", "resource", "httpRequest"})
DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
MESSAGE_KEYS = ("message", "msg", "error", "err")
# What an outside failure can raise through the client: answers, transport, auth, bad bodies.
FAILURES = (
    GoogleAPICallError,
    GoogleAuthError,
    requests.RequestException,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
)


class _BoundedSession(AuthorizedSession):
    """An authorised requests session that gives every request this adapter's timeout."""

    def __init__(self, credentials: Credentials, timeout_seconds: float) -> None:
        super().__init__(credentials)  # type: ignore[no-untyped-call]
        self._timeout = timeout_seconds

    def request(self, *args: Any, **kwargs: Any) -> Any:
        """Send the request with the configured timeout (the client would wait 60 s)."""
        kwargs["timeout"] = self._timeout
        return super().request(*args, **kwargs)  # type: ignore[no-untyped-call]


def make_client(
    project: str,
    *,
    credentials: Credentials | None = None,
    api_endpoint: str | None = None,
    timeout_seconds: float = 10.0,
) -> Client:
    """Build a Cloud Logging client on the HTTP transport, with a timeout on every request."""
    if credentials is None:
        credentials, _ = google.auth.default(scopes=READ_SCOPES)
    # The HTTP transport never retries by itself, so call_with_retry is the only retry loop; the
    # gRPC transport retries internally for up to 60 s and takes no per-call timeout here.
    return Client(  # type: ignore[no-untyped-call]
        project=project,
        credentials=credentials,
        _http=_BoundedSession(credentials, timeout_seconds),
        _use_grpc=False,
        client_options={"api_endpoint": api_endpoint} if api_endpoint else None,
    )


class GcpLogSource:
    """Read a service's Cloud Logging entries around a breach and summarise the errors."""

    name = "gcp_logging"

    def __init__(
        self,
        project: str,
        *,
        resource_type: str,
        resource_labels: Mapping[str, str] | None = None,
        entry_labels: Mapping[str, str] | None = None,
        model_field: str = "labels.model_id",
        version_field: str = "labels.model_version",
        credentials: Credentials | None = None,
        api_endpoint: str | None = None,
        client_factory: Callable[[], Client] | None = None,
        timeout_seconds: float = 10.0,
        page_size: int = 100,
        slow_request_seconds: float = 2.0,
        retry_policy: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._project = project
        self._resource_type = resource_type
        self._resource_labels = dict(resource_labels or {})
        self._entry_labels = dict(entry_labels or {})
        self._model_field = _field_path(model_field)
        self._version_field = _field_path(version_field)
        self._factory = client_factory or (
            lambda: make_client(
                project,
                credentials=credentials,
                api_endpoint=api_endpoint,
                timeout_seconds=timeout_seconds,
            )
        )
        self._client: Client | None = None
        self._timeout = timeout_seconds
        self._page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self._slow = slow_request_seconds
        self._policy = retry_policy
        self._sleep = sleep

    @property
    def source(self) -> str:
        """Return where this source reads, for people: `GCP acme-prod (k8s_container)`."""
        return f"GCP {self._project} ({self._resource_type})"

    def check(self) -> tuple[bool, str]:
        """List at most one recent entry of the resource type: proves access and reachability."""
        now = datetime.now(UTC)
        probe = LogQuery(start=now - timedelta(hours=1), end=now, limit=1)
        try:
            self._list(self.build_filter(probe, errors_only=False), 1)
        except FAILURES as exc:
            return False, f"Cloud Logging unreachable for {self._project}: {_describe(exc)}"
        return True, f"Cloud Logging answers for {self._project} ({self._resource_type})"

    def build_filter(self, query: LogQuery, *, errors_only: bool) -> str:
        """Return the Logging query-language filter for the query, window always explicit."""
        clauses = [f"resource.type={_quote(self._resource_type)}"]
        for key, value in sorted(self._resource_labels.items()):
            clauses.append(f"resource.labels.{_segment(key)}={_quote(value)}")
        for key, value in sorted(self._entry_labels.items()):
            clauses.append(f"labels.{_segment(key)}={_quote(value)}")
        if query.model_id:
            clauses.append(f"{self._model_field}={_quote(query.model_id)}")
        if query.model_version:
            clauses.append(f"{self._version_field}={_quote(query.model_version)}")
        if query.path:
            clauses.append(f"httpRequest.requestUrl:{_quote(query.path)}")
        if errors_only:
            clauses.append('severity>="ERROR"')
        clauses.append(f"timestamp>={_quote(_rfc3339(query.start))}")
        clauses.append(f"timestamp<={_quote(_rfc3339(query.end))}")
        return " AND ".join(clauses)

    def search(self, query: LogQuery) -> ToolResult:
        """Fetch the window's errors and a sample of all entries, then summarise them."""
        errors_filter = self.build_filter(query, errors_only=True)
        asked: dict[str, Any] = {
            "project": self._project,
            "resource_type": self._resource_type,
            "start": query.start.isoformat(),
            "end": query.end.isoformat(),
            "model_id": query.model_id,
            "model_version": query.model_version,
            "path": query.path,
            "filter": errors_filter,
        }
        watch = Stopwatch()
        limit = max(1, query.limit)
        try:
            errors = self._list(errors_filter, limit)
            sample = self._list(self.build_filter(query, errors_only=False), limit)
        except FAILURES as exc:
            return self._failure(exc, asked, watch.ms)
        return self._summarise(errors, sample, query, asked, watch.ms)

    def _list(self, filter_: str, limit: int) -> list[Any]:
        if self._client is None:
            self._client = self._factory()
        client = self._client

        def call() -> list[Any]:
            entries = client.list_entries(  # type: ignore[no-untyped-call]
                filter_=filter_,
                order_by=DESCENDING,
                max_results=limit,
                page_size=min(self._page_size, limit),
            )
            # islice stops before the pager would fetch one page more than needed.
            return list(islice(entries, limit))

        return call_with_retry(
            call, classify=_classify, policy=self._policy, sleep=self._sleep, system=self.name
        )

    def _failure(self, exc: Exception, asked: dict[str, Any], latency: float) -> ToolResult:
        status = ToolStatus.error
        evidence: dict[str, Any] = {}
        if isinstance(exc, GoogleAPICallError):
            summary = f"Cloud Logging answered HTTP {exc.code}"
            evidence["http_status"] = exc.code
        elif isinstance(exc, requests.Timeout):
            summary = f"Cloud Logging did not answer within {self._timeout} s"
        elif isinstance(exc, requests.ConnectionError):
            status, summary = ToolStatus.down, "Cloud Logging is unreachable"
        elif isinstance(exc, GoogleAuthError):
            summary = "no usable GCP credentials"
        elif isinstance(exc, ValueError | KeyError | TypeError | AttributeError):
            summary = "Cloud Logging sent a malformed answer"
        else:
            summary = "Cloud Logging call failed"
        return ToolResult(
            tool=self.name,
            source=self.source,
            status=status,
            summary=summary,
            asked=asked,
            evidence=evidence,
            latency_ms=latency,
            error=_describe(exc)[:1000],
        )

    def _summarise(
        self,
        errors: list[Any],
        sample: list[Any],
        query: LogQuery,
        asked: dict[str, Any],
        latency: float,
    ) -> ToolResult:
        limit = max(1, query.limit)
        # Scrubbed before anything is grouped or cut: a secret cut in two is not recognised.
        top = top_errors([query.clean(_message(entry)) for entry in errors])
        slow = self._slow_requests([*errors, *sample], query)
        evidence: dict[str, Any] = {
            "lines": len(sample),
            "error_lines": len(errors),
            "error_lines_capped": len(errors) >= limit,
            "top_errors": top,
            "samples": [_sample(entry, query) for entry in errors[:SAMPLES]],
            "slow_requests": slow,
        }
        slow_note = f"; {slow['count']} slow request(s)" if slow["count"] else ""
        if errors:
            status = ToolStatus.degraded
            summary = f"{len(errors)} error entries; top: {top[0]['message'][:120]}{slow_note}"
        elif sample:
            status = ToolStatus.ok
            summary = f"{len(sample)} log entries, none with errors{slow_note}"
        else:
            status, summary = ToolStatus.no_data, "no log entries for this model in the window"
        return ToolResult(
            tool=self.name,
            source=self.source,
            status=status,
            summary=summary,
            asked=asked,
            evidence=evidence,
            latency_ms=latency,
        )

    def _slow_requests(self, entries: list[Any], query: LogQuery) -> dict[str, Any]:
        seen: dict[tuple[Any, Any], tuple[float, Any]] = {}
        for entry in entries:
            seconds = _latency_seconds(entry.http_request)
            if seconds is not None and seconds >= self._slow:
                seen[(entry.insert_id, entry.timestamp)] = (seconds, entry)
        slowest = sorted(seen.values(), key=lambda pair: pair[0], reverse=True)
        return {
            "threshold_seconds": self._slow,
            "count": len(slowest),
            "max_seconds": slowest[0][0] if slowest else None,
            "examples": [
                {
                    "latency_seconds": seconds,
                    "url": _clean_url(entry.http_request, query),
                    "status": (entry.http_request or {}).get("status"),
                    "timestamp": _iso(entry.timestamp),
                }
                for seconds, entry in slowest[:SAMPLES]
            ],
        }


def _classify(exc: BaseException) -> Verdict:
    """Retry 408/429/5xx answers (honouring Retry-After); never 400/403, timeouts or bad bodies."""
    if isinstance(exc, GoogleAPICallError):
        headers = getattr(exc.response, "headers", None)
        return verdict_for_status(exc.code, dict(headers) if headers else None)
    return NO_RETRY


def _quote(value: str) -> str:
    """Return a filter string literal; control characters become spaces."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]", " ", value)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _segment(key: str) -> str:
    return key if PLAIN_SEGMENT.match(key) else _quote(key)


def _field_path(path: str) -> str:
    """Return a configured field path (e.g. `jsonPayload.model`) in filter syntax."""
    parts = path.split(".")
    if parts[0] not in FIELD_ROOTS or len(parts) < 2 or not all(parts):
        raise ValueError(f"field {path!r} must be one of {sorted(FIELD_ROOTS)} then a key")
    return ".".join([parts[0], *map(_segment, parts[1:])])


def _rfc3339(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else None


def _message(entry: Any) -> str:
    """Return an entry's human message: the text, a JSON payload's message field, or the JSON."""
    payload = entry.payload
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        for key in MESSAGE_KEYS:
            value = payload.get(key)
            if isinstance(value, str):
                return value
    return str(payload)


def _sample(entry: Any, query: LogQuery) -> dict[str, Any]:
    return {
        "timestamp": _iso(entry.timestamp),
        "severity": entry.severity,
        "message": query.clean(_message(entry))[:MESSAGE_CHARS],
        "insert_id": entry.insert_id,
        "trace": entry.trace,
    }


def _clean_url(http_request: Any, query: LogQuery) -> str | None:
    url = (http_request or {}).get("requestUrl")
    return query.clean(url) if isinstance(url, str) else None


def _latency_seconds(http_request: Any) -> float | None:
    if not isinstance(http_request, dict):
        return None
    match = DURATION.match(str(http_request.get("latency", "")))
    return float(match.group(1)) if match else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
