"""The worker process's outbox sender: one thread sends every channel's queued Slack messages.

It runs beside the worker loops (`remediator worker`, and `serve` with its worker), one per
process. Replicas each run one; a channel's lease makes one of them its only sender.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

import structlog

from agent.graph.channels import pace_from
from agent.outbox.sender import OutboxSender
from agent.wiring import Services

log = structlog.get_logger(__name__)


def start_outbox_sender(services: Services) -> tuple[threading.Thread, threading.Event] | None:
    """Start the sender on a daemon thread (None without Slack); set the event to stop it."""
    chat = services.adapters.chat
    if chat is None:
        return None
    settings = services.settings
    owner = f"outbox:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    sender = OutboxSender(
        services.engine,
        services.audit,
        chat,
        owner=owner,
        pace=pace_from(settings),
        now=services.clock,
        poll_seconds=settings.slack_outbox_poll_seconds,
    )
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), name="outbox-sender", daemon=True)
    thread.start()
    log.info("outbox.sender_started", owner=owner)
    return thread, stop
