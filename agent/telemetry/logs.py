"""Structured logging with structlog: console for people, JSON for machines."""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, ParamSpec, TypeVar

import structlog

from agent.settings import Settings
from audit.redact import Redactor

P = ParamSpec("P")
R = TypeVar("R")
LOG_IDS = ("alert_id", "incident_id")


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

    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    chain: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.format_exc_info,
        redact,
        structlog.processors.add_log_level,
        stamp,
    ]
    if settings.log_format != "json":
        structlog.configure(
            processors=[*chain, renderer],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            cache_logger_on_first_use=True,
        )
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactRecords(redactor))
        return
    # JSON: structlog's events go through the standard library's one handler too, so every line
    # is written whole, under that handler's lock, to one stream (stdout): lines of two threads
    # (the worker's, uvicorn's) never interleave.
    structlog.configure(
        processors=[*chain, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    # The standard library's records (uvicorn, the SDKs' retry warnings) become JSON lines too,
    # with the same log ids, so one parser reads everything the process writes.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_logger_name,
                structlog.processors.format_exc_info,
                redact,
                structlog.processors.add_log_level,
                stamp,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)


class RedactRecords(logging.Filter):
    """Redact the standard library's records (uvicorn, the SDKs) as structlog's events are."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its redacted text; never drop a record."""
        record.msg = self._redactor.text(record.getMessage())
        record.args = None
        return True


def log_ids(func: Callable[P, R]) -> Callable[P, R]:
    """Bind the call's `alert_id` / `incident_id` argument to every log line made during it.

    The ids live in structlog's context variables, so lines from deeper down (graph nodes, tools,
    the SDKs' own warnings) carry them without passing them along.
    """
    signature = inspect.signature(func)
    names = [name for name in LOG_IDS if name in signature.parameters]

    @functools.wraps(func)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        given = signature.bind_partial(*args, **kwargs).arguments
        ids = {name: str(given[name]) for name in names if given.get(name) is not None}
        with structlog.contextvars.bound_contextvars(**ids):
            return func(*args, **kwargs)

    return bound
