"""Slack Web API through the official slack_sdk WebClient."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from tools.result import Stopwatch, ToolResult, ToolStatus


class SlackChat:
    """Post incident messages; 429s wait for Retry-After, app errors come back as results."""

    name = "slack"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://slack.com/api/",
        timeout_seconds: float = 10.0,
        rate_limit_retries: int = 3,
    ) -> None:
        self._client = WebClient(
            token=token,
            base_url=base_url,
            timeout=int(max(1, timeout_seconds)),
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=1),
                RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            ],
        )

    def check(self) -> tuple[bool, str]:
        """Call auth.test to confirm the token works."""
        try:
            answer = self._client.auth_test()
        except SlackApiError as exc:
            return False, f"Slack refused the token: {exc.response.get('error')}"
        except (SlackClientError, OSError) as exc:
            return False, f"Slack unreachable: {exc}"
        return True, f"authenticated as {answer.get('user_id') or answer.get('bot_id')}"

    def post(
        self,
        *,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> ToolResult:
        """Post a message (in a thread when thread_ts is given)."""
        asked: dict[str, Any] = {"method": "chat.postMessage", "channel": channel, "text": text}
        if thread_ts:
            asked["thread_ts"] = thread_ts
        watch = Stopwatch()
        try:
            answer = self._client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            return ToolResult(
                tool=self.name,
                status=ToolStatus.error,
                summary=f"Slack refused the message: {error or exc}",
                asked=asked,
                evidence={"http_status": exc.response.status_code if exc.response else None},
                latency_ms=watch.ms,
                error=str(error or exc)[:500],
            )
        except (SlackClientError, OSError) as exc:
            return ToolResult(
                tool=self.name,
                status=ToolStatus.error,
                summary="Slack unreachable",
                asked=asked,
                latency_ms=watch.ms,
                error=str(exc)[:500],
            )
        return ToolResult(
            tool=self.name,
            status=ToolStatus.ok,
            summary=f"posted to {answer.get('channel')}",
            asked=asked,
            evidence={"channel": answer.get("channel"), "ts": answer.get("ts")},
            latency_ms=watch.ms,
        )
