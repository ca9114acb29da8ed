"""Slack Web API through the official slack_sdk WebClient."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import count_retry

RETRIED_SERVER_STATUSES = frozenset({500, 502, 503, 504})
OUTBOX_EVENT = "remediator_outbox_message"
"""The metadata event type of messages the outbox posts (their key in the payload)."""


class ChannelPacer:
    """Space the messages of each channel at least `interval` seconds apart (thread-safe)."""

    def __init__(
        self,
        interval: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> float:
        """Block until this channel may take another message; return the seconds waited."""
        with self._lock:
            now = self._monotonic()
            slot = max(now, self._next.get(channel, now))
            self._next[channel] = slot + self._interval
        pause = slot - now
        if pause > 0:
            self._sleep(pause)
        return pause


class SlackChat:
    """Post and edit incident messages; 429s wait for Retry-After, 5xx back off, boundedly."""

    name = "slack"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://slack.com/api/",
        timeout_seconds: float = 10.0,
        rate_limit_retries: int = 3,
        server_error_retries: int = 2,
        retry_base_seconds: float = 0.5,
        min_interval_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Slack allows about one message per second per channel: posts queue here (each
        # channel paced in turn) instead of piling into 429s that could outlast the retries.
        self._pace = ChannelPacer(min_interval_seconds, monotonic, sleep)
        self._token, self._base_url, self._timeout = token, base_url, timeout_seconds
        self._server_retries, self._retry_base = server_error_retries, retry_base_seconds
        backoff = BackoffRetryIntervalCalculator(
            backoff_factor=retry_base_seconds, jitter=ProportionalJitter()
        )
        self._client = WebClient(
            token=token,
            base_url=base_url,
            timeout=int(max(1, timeout_seconds)),
            retry_handlers=[
                CountedRetries(handler, self.name)
                for handler in (
                    ConnectionErrorRetryHandler(max_retry_count=1),
                    RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
                    ServerErrorsRetryHandler(
                        max_retry_count=server_error_retries, interval_calculator=backoff
                    ),
                )
            ],
        )

    def for_outbox(self) -> SlackChat:
        """Return a twin for the outbox's sender: no pacing and no waiting on 429 inside.

        The sender paces each channel itself (across replicas) and, on a 429, keeps the message
        queued and the channel blocked for the answer's Retry-After (in the result's evidence)
        instead of holding its thread asleep.
        """
        return SlackChat(
            self._token,
            base_url=self._base_url,
            timeout_seconds=self._timeout,
            rate_limit_retries=0,
            server_error_retries=self._server_retries,
            retry_base_seconds=self._retry_base,
            min_interval_seconds=0,
        )

    def check(self) -> tuple[bool, str]:
        """Call auth.test to confirm the token works."""
        try:
            answer = self._client.auth_test()
        except SlackApiError as exc:
            return False, f"Slack refused the token: {exc.response.get('error')}"
        except (SlackClientError, OSError, ValueError) as exc:
            return False, f"Slack unreachable: {exc}"
        return True, f"authenticated as {answer.get('user_id') or answer.get('bot_id')}"

    def post(
        self,
        *,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        key: str | None = None,
    ) -> ToolResult:
        """Post a message (in a thread when thread_ts is given).

        With a `key`, the message carries it in its metadata (`event_type` OUTBOX_EVENT), so
        `find_posted` can tell later whether a post whose answer was lost went through.
        """
        asked: dict[str, Any] = {"method": "chat.postMessage", "channel": channel, "text": text}
        if thread_ts:
            asked["thread_ts"] = thread_ts
        metadata = {"event_type": OUTBOX_EVENT, "event_payload": {"key": key}} if key else None
        self._pace.wait(channel)
        return self._send(
            asked,
            "the message",
            "posted to {channel}",
            lambda: self._client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata
            ),
        )

    def find_posted(
        self, *, channel: str, key: str, thread_ts: str | None, oldest: float
    ) -> ToolResult:
        """Look for the message posted with this `key` since `oldest` (epoch seconds).

        Reads conversations.replies of the thread (conversations.history without one), with the
        messages' metadata. Evidence `ts` is the message's when found; status no_data when not.
        """
        asked: dict[str, Any] = {"method": "conversations.history", "channel": channel, "key": key}
        watch = Stopwatch()
        try:
            if thread_ts:
                asked["method"] = "conversations.replies"
                answer = self._client.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    oldest=f"{oldest:.6f}",
                    include_all_metadata=True,
                    limit=200,
                )
            else:
                answer = self._client.conversations_history(
                    channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200
                )
        except (SlackClientError, OSError, ValueError) as exc:
            return ToolResult(
                tool=self.name,
                status=ToolStatus.error,
                summary="Slack's history could not be read",
                asked=asked,
                latency_ms=watch.ms,
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
        for message in answer.get("messages") or []:
            metadata = message.get("metadata") if isinstance(message, dict) else None
            if not isinstance(metadata, dict) or metadata.get("event_type") != OUTBOX_EVENT:
                continue
            payload = metadata.get("event_payload")
            if isinstance(payload, dict) and payload.get("key") == key:
                return ToolResult(
                    tool=self.name,
                    status=ToolStatus.ok,
                    summary=f"found message {message.get('ts')} in {channel}",
                    asked=asked,
                    evidence={"channel": channel, "ts": str(message.get("ts"))},
                    latency_ms=watch.ms,
                )
        return ToolResult(
            tool=self.name,
            status=ToolStatus.no_data,
            summary=f"no message with key {key} in {channel}",
            asked=asked,
            latency_ms=watch.ms,
        )

    def update(
        self,
        *,
        channel: str,
        ts: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
    ) -> ToolResult:
        """Edit a message the bot posted, e.g. an approval request once it has been answered."""
        asked: dict[str, Any] = {
            "method": "chat.update",
            "channel": channel,
            "ts": ts,
            "text": text,
        }
        return self._send(
            asked,
            "the update",
            "updated message {ts} in {channel}",
            lambda: self._client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
        )

    def group_members(self, group_id: str) -> set[str] | None:
        """Return the users of a Slack user group (usergroups.users.list), None on any error."""
        try:
            answer = self._client.usergroups_users_list(usergroup=group_id)
        except (SlackClientError, OSError, ValueError):
            return None
        users = answer.get("users")
        return {str(user) for user in users} if isinstance(users, list) else None

    def _send(
        self, asked: dict[str, Any], what: str, done: str, call: Callable[[], SlackResponse]
    ) -> ToolResult:
        watch = Stopwatch()
        try:
            answer = call()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            evidence: dict[str, Any] = {
                "http_status": exc.response.status_code if exc.response is not None else None
            }
            if exc.response is not None and exc.response.status_code == 429:
                evidence["retry_after"] = retry_after(exc.response.headers)
            return ToolResult(
                tool=self.name,
                status=ToolStatus.error,
                summary=f"Slack refused {what}: {error or exc}",
                asked=asked,
                evidence=evidence,
                latency_ms=watch.ms,
                error=str(error or exc)[:500],
            )
        except (SlackClientError, OSError, ValueError) as exc:
            # ValueError: the SDK lets a truncated JSON answer escape as a JSONDecodeError.
            return ToolResult(
                tool=self.name,
                status=ToolStatus.error,
                summary="Slack unreachable or its answer unreadable",
                asked=asked,
                latency_ms=watch.ms,
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
        channel, ts = answer.get("channel"), answer.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            return ToolResult(
                tool=self.name,
                status=ToolStatus.error,
                summary=f"Slack's answer about {what} lacks channel or ts",
                asked=asked,
                latency_ms=watch.ms,
                error=str(answer.data)[:500],
            )
        return ToolResult(
            tool=self.name,
            status=ToolStatus.ok,
            summary=done.format(channel=channel, ts=ts),
            asked=asked,
            evidence={"channel": channel, "ts": ts},
            latency_ms=watch.ms,
        )


def retry_after(headers: Any) -> float:
    """Return a 429's Retry-After in seconds (1 when absent or unreadable)."""
    found = {str(k).lower(): v for k, v in dict(headers or {}).items()}.get("retry-after")
    value = found[0] if isinstance(found, list) and found else found
    try:
        return max(float(str(value)), 0.0)
    except (TypeError, ValueError):
        return 1.0


class ServerErrorsRetryHandler(ServerErrorRetryHandler):
    """Retry 500, 502, 503 and 504; the SDK's own handler skips the gateway errors."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in RETRIED_SERVER_STATUSES


class CountedRetries(RetryHandler):
    """Count every retry another handler grants (remediator_outgoing_retries_total)."""

    def __init__(self, inner: RetryHandler, system: str) -> None:
        super().__init__(inner.max_retry_count, inner.interval_calculator)
        self._inner = inner
        self._system = system

    def can_retry(self, **kwargs: Any) -> bool:
        """Ask the wrapped handler."""
        return self._inner.can_retry(**kwargs)

    def prepare_for_next_attempt(self, **kwargs: Any) -> None:
        """Count the retry, then let the wrapped handler wait as it would."""
        count_retry(self._system)
        self._inner.prepare_for_next_attempt(**kwargs)


class ProportionalJitter(Jitter):
    """Add up to 10% to a backoff; the SDK's RandomJitter adds up to a whole second."""

    def recalculate(self, duration: float) -> float:
        """Return the duration stretched by a random 0-10%."""
        return duration * (1 + 0.1 * random.random())
