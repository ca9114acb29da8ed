"""CloudWatch Logs through FilterLogEvents (no Logs Insights): the same findings, bounded."""

from __future__ import annotations

from typing import Any

from tools.logs.cloudwatch_insights import SAFE_TERM, CloudWatchLogSource
from tools.protocols import LogQuery

MAX_EVENTS = 1000

PAGE_SIZE = 50


class CloudWatchEventsLogSource(CloudWatchLogSource):
    """Count and group the errors of a model's log events read with filter_log_events."""

    name = "cloudwatch_events"

    def _query_string(self, query: LogQuery) -> str:
        # One quoted term narrows the read server-side; the version is matched on our side.
        model = query.model_id
        return f'"{model}"' if model and SAFE_TERM.match(model) else ""

    def _run(self, query: LogQuery, query_string: str) -> tuple[list[dict[str, str]], str]:
        paginator = self._client.get_paginator("filter_log_events")
        rows: list[dict[str, str]] = []
        for group in self._log_groups:
            arguments: dict[str, Any] = {
                "logGroupName": group,
                "startTime": int(query.start.timestamp() * 1000),
                "endTime": int(query.end.timestamp() * 1000),
                "PaginationConfig": {
                    "MaxItems": min(query.limit * 5, MAX_EVENTS),
                    "PageSize": PAGE_SIZE,
                },
            }
            if query_string:
                arguments["filterPattern"] = query_string
            # Pages may be empty while nextToken remains: the paginator keeps following it.
            for page in paginator.paginate(**arguments):
                rows += [{"@message": event.get("message", "")} for event in page["events"]]
        return rows, "Complete"
