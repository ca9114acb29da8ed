"""CloudWatch Logs Insights through boto3: error counts and top errors around a breach."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.protocols import LogQuery
from tools.result import Stopwatch, ToolResult, ToolStatus

TERMINAL_STATUSES = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})
ERROR_PATTERN = re.compile(
    r"\b(error|exception|fatal|critical|timed? ?out|traceback|5\d\d)\b", re.IGNORECASE
)
# Safe to embed in an Insights string literal; anything else is matched on our side only.
SAFE_TERM = re.compile(r"^[A-Za-z0-9._:/@+-]{1,200}$")
VOLATILE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b\d[\d.:TZ-]*\b", re.IGNORECASE
)
MESSAGE_CHARS = 240
TOP_ERRORS = 5


class CloudWatchLogSource:
    """Run a Logs Insights query over the catalogued log groups and summarise the errors."""

    name = "cloudwatch_logs"

    def __init__(
        self,
        client: Any,
        log_groups: Sequence[str],
        *,
        timeout_seconds: float = 10.0,
        poll_seconds: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._log_groups = list(log_groups)
        self._timeout = timeout_seconds
        self._poll = poll_seconds
        self._sleep = sleep
        self._monotonic = monotonic

    @property
    def source(self) -> str:
        """Return where this source reads, for people: `CloudWatch /llm/gateway`."""
        return f"CloudWatch {', '.join(self._log_groups) or '(no log groups)'}"

    def check(self) -> tuple[bool, str]:
        """Confirm that every configured log group exists."""
        if not self._log_groups:
            return False, "no log groups configured"
        try:
            for group in self._log_groups:
                found = self._client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
                if not any(g["logGroupName"] == group for g in found):
                    return False, f"log group {group} not found"
        except (BotoCoreError, ClientError) as exc:
            return False, f"CloudWatch Logs unreachable: {exc}"
        return True, f"{len(self._log_groups)} log group(s) found"

    def search(self, query: LogQuery) -> ToolResult:
        """Query the window, then count and group the error lines for the query's model."""
        query_string = self._query_string(query)
        asked: dict[str, Any] = {
            "log_groups": self._log_groups,
            "start": query.start.isoformat(),
            "end": query.end.isoformat(),
            "model_id": query.model_id,
            "model_version": query.model_version,
            "query": query_string,
        }
        watch = Stopwatch()
        if not self._log_groups:
            return ToolResult(
                tool=self.name,
                source=self.source,
                status=ToolStatus.no_data,
                summary="no CloudWatch log groups configured",
                asked=asked,
            )
        try:
            rows, status = self._run(query, query_string)
        except (BotoCoreError, ClientError) as exc:
            return self._failed("CloudWatch Logs query failed", str(exc), asked, watch)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            return self._failed("CloudWatch Logs gave a malformed answer", error, asked, watch)
        if status != "Complete":
            summary = f"CloudWatch Logs query ended {status}"
            return self._failed(summary, f"query status {status}", asked, watch)
        return self._summarise(rows, query, asked, watch.ms)

    def _failed(
        self, summary: str, error: str, asked: dict[str, Any], watch: Stopwatch
    ) -> ToolResult:
        return ToolResult(
            tool=self.name,
            source=self.source,
            status=ToolStatus.error,
            summary=summary,
            asked=asked,
            latency_ms=watch.ms,
            error=error[:500],
        )

    def _query_string(self, query: LogQuery) -> str:
        clauses = ["fields @timestamp, @message, @logStream"]
        for term in (query.model_id, query.model_version):
            if term and SAFE_TERM.match(term):
                clauses.append(f"filter @message like '{term}'")
        clauses.append("sort @timestamp desc")
        clauses.append(f"limit {query.limit}")
        return " | ".join(clauses)

    def _run(self, query: LogQuery, query_string: str) -> tuple[list[dict[str, str]], str]:
        started = self._client.start_query(
            logGroupNames=self._log_groups,
            startTime=int(query.start.timestamp()),
            endTime=int(query.end.timestamp()),
            queryString=query_string,
            limit=query.limit,
        )
        query_id = started["queryId"]
        deadline = self._monotonic() + self._timeout
        while True:
            answer = self._client.get_query_results(queryId=query_id)
            status = answer.get("status", "Unknown")
            if status in TERMINAL_STATUSES:
                rows = [
                    {cell["field"]: cell.get("value", "") for cell in row}
                    for row in answer.get("results", [])
                ]
                return rows, status
            if self._monotonic() >= deadline:
                self._stop(query_id)
                return [], "Timeout"
            self._sleep(self._poll)

    def _stop(self, query_id: str) -> None:
        try:
            self._client.stop_query(queryId=query_id)
        except (BotoCoreError, ClientError):
            # The query may have finished in between; nothing is left to stop.
            return

    def _summarise(
        self, rows: list[dict[str, str]], query: LogQuery, asked: dict[str, Any], latency: float
    ) -> ToolResult:
        # Insights filters may be ignored by some backends (moto); apply them here as well.
        terms = [t for t in (query.model_id, query.model_version) if t]
        lines = [
            row.get("@message", "")
            for row in rows
            if all(term in row.get("@message", "") for term in terms)
        ]
        # Scrubbed before anything is counted, grouped or cut: a secret cut in two by a length
        # limit would no longer be recognised.
        errors = [query.clean(_message_of(line)) for line in lines if ERROR_PATTERN.search(line)]
        top = top_errors(errors)
        evidence = {"lines": len(lines), "error_lines": len(errors), "top_errors": top}
        if not lines:
            status, summary = ToolStatus.no_data, "no log lines for this model in the window"
        elif errors:
            status = ToolStatus.degraded
            summary = f"{len(errors)} error line(s) of {len(lines)}; top: {top[0]['message'][:120]}"
        else:
            status, summary = ToolStatus.ok, f"{len(lines)} log line(s), none with errors"
        return ToolResult(
            tool=self.name,
            source=self.source,
            status=status,
            summary=summary,
            asked=asked,
            evidence=evidence,
            latency_ms=latency,
        )


def top_errors(messages: list[str]) -> list[dict[str, Any]]:
    """Group error messages that differ only in ids, numbers and times; the most frequent first."""
    groups: Counter[str] = Counter(VOLATILE.sub("#", text)[:MESSAGE_CHARS] for text in messages)
    examples: dict[str, str] = {}
    for text in messages:
        examples.setdefault(VOLATILE.sub("#", text)[:MESSAGE_CHARS], text[:MESSAGE_CHARS])
    return [
        {"count": count, "message": examples[shape]}
        for shape, count in groups.most_common(TOP_ERRORS)
    ]


def _message_of(line: str) -> str:
    """Return a log line's human message: a JSON line's msg/message/error field, else the line."""
    if line.lstrip().startswith("{"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return line
        if isinstance(record, dict):
            for key in ("msg", "message", "error", "err"):
                value = record.get(key)
                if isinstance(value, str):
                    return value
    return line
