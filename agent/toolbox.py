"""Build the integration adapters the settings configure; an unconfigured one is None (dry-run)."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.config import Config

from agent.settings import Settings
from tools.chat_slack import SlackChat
from tools.llm_analyst import LlmAnalyst
from tools.logs_cloudwatch import CloudWatchLogSource
from tools.pager_pagerduty import PagerDutyEventsPager, PagerDutyRestPager
from tools.protocols import ChatWorkspace, LogSource, Pager


@dataclass(frozen=True)
class Toolbox:
    """The adapters one graph run may call."""

    logs: LogSource | None
    pager: Pager | None
    chat: ChatWorkspace | None
    chat_channel: str | None
    incidents: PagerDutyRestPager | None = None
    """PagerDuty REST (notes on paged incidents), when an API key is configured."""

    def configured(self) -> dict[str, bool]:
        """Return which integrations are live (the rest are dry-run)."""
        return {
            "logs": self.logs is not None,
            "pager": self.pager is not None,
            "chat": self.chat is not None and self.chat_channel is not None,
        }


def build_toolbox(settings: Settings) -> Toolbox:
    """Create one adapter per configured integration."""
    logs: LogSource | None = None
    if settings.cloudwatch_log_groups:
        client = boto3.client(
            "logs",
            region_name=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            config=Config(
                connect_timeout=5,
                read_timeout=int(settings.logs_query_timeout_seconds) + 5,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )
        logs = CloudWatchLogSource(
            client,
            settings.cloudwatch_log_groups,
            timeout_seconds=settings.logs_query_timeout_seconds,
        )
    pager: Pager | None = None
    if settings.pagerduty_routing_key is not None:
        pager = PagerDutyEventsPager(
            settings.pagerduty_routing_key.get_secret_value(),
            base_url=settings.pagerduty_events_url,
            ca_bundle=settings.pagerduty_ca_bundle,
            timeout_seconds=settings.pagerduty_timeout_seconds,
        )
    chat: ChatWorkspace | None = None
    if settings.slack_bot_token is not None:
        chat = SlackChat(
            settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_base_url,
            timeout_seconds=settings.slack_timeout_seconds,
            min_interval_seconds=settings.slack_min_interval_seconds,
        )
    incidents = None
    if settings.pagerduty_api_key is not None and settings.pagerduty_from_email:
        incidents = PagerDutyRestPager(
            settings.pagerduty_api_key.get_secret_value(),
            from_email=settings.pagerduty_from_email,
            base_url=settings.pagerduty_rest_url,
            ca_bundle=settings.pagerduty_ca_bundle,
            timeout_seconds=settings.pagerduty_timeout_seconds,
        )
    return Toolbox(
        logs=logs,
        pager=pager,
        chat=chat,
        chat_channel=settings.slack_channel,
        incidents=incidents,
    )


def build_analyst(settings: Settings) -> LlmAnalyst | None:
    """Create the optional LLM analyst when an analyst endpoint is configured."""
    if not settings.analyst_base_url:
        return None
    key = settings.analyst_api_key.get_secret_value() if settings.analyst_api_key else "unset"
    return LlmAnalyst(base_url=settings.analyst_base_url, api_key=key, model=settings.analyst_model)
