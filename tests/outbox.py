"""Be the worker's outbox sender in a test: send what waits, at each channel's pace, on the
test's clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from agent.outbox.sender import OutboxSender, Pace, pending_channels


class Clock(Protocol):
    def __call__(self) -> datetime: ...

    def advance(self, seconds: float) -> None: ...


def empty_outbox(engine: Any, audit: Any, chat: Any, clock: Clock, *, rounds: int = 200) -> None:
    """Send until nothing waits (a busy channel's messages go at its pace, the clock moved on)."""
    sender = OutboxSender(engine, audit, chat, owner="test-sender", pace=Pace(), now=clock)
    for _ in range(rounds):
        if not pending_channels(engine, clock()):
            return
        clock.advance(sender.run_once())
    raise AssertionError("the outbox did not empty")
