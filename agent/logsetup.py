"""Structured logging with structlog: console for people, JSON for machines."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

from agent.settings import Settings
from audit.redact import Redactor


def configure_logging(settings: Settings) -> None:
    """Set up structlog and the standard library's root logger once, at start-up."""
    level = getattr(logging, settings.log_level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    redactor = Redactor(field_names=frozenset(settings.redact_fields))

    def redact(
        _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        return {key: redactor.value(value) for key, value in event.items()}

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
