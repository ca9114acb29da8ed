"""The people of a scenario: approvers who click in Slack, or let a request expire.

The scenario's clock is real time plus an offset; letting a request expire moves the offset past
its expiry instead of waiting for it, so the service's own timer fires as it would in production.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from agent.approvals.message import APPROVE_ACTION, REJECT_ACTION
from agent.approvals.service import pending_for, unsettled_failbacks
from sandbox.evaluation.scenario import ApprovalAnswer, ApprovalWorld
from sandbox.slack import click, interaction
from sandbox.stack import SandboxStack


class ScenarioClock:
    """Real time plus an offset that only moves forward."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the scenario's time."""
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance_past(self, moment: datetime) -> None:
        """Move the clock one second past `moment` (never backwards)."""
        with self._lock:
            ahead = moment + timedelta(seconds=1) - datetime.now(UTC)
            self._offset = max(self._offset, ahead)


class Approvers:
    """Answer each approval request once it is in Slack, as the scenario's world says.

    Each request takes the first unused `approvals` entry of its action kind (or of none), else
    the world's `approval`. A click by someone the service refuses counts as refused, and the
    request is then left to expire: a wrong `by` ends the run as an unanswered request would,
    never in a hang.
    """

    def __init__(
        self,
        world: ApprovalWorld,
        *,
        stack: SandboxStack,
        url: str,
        signing_secret: str,
        engine: Engine,
        clock: ScenarioClock,
        answers: Sequence[ApprovalAnswer] = (),
    ) -> None:
        self._world = world
        self._answers = list(answers)
        self._stack = stack
        self._url = f"{url}/slack/interactions"
        self._secret = signing_secret
        self._engine = engine
        self._clock = clock
        self._answered: set[uuid.UUID] = set()
        self._planned: dict[uuid.UUID, tuple[ApprovalWorld, float]] = {}
        self.refused = 0

    def waiting_on(self, incident_id: str) -> bool:
        """Tell whether an approval request of the incident is pending, or decided and not yet
        carried out (a failback the worker has still to settle)."""
        incident = uuid.UUID(incident_id)
        with Session(self._engine) as session:
            pending = pending_for(session=session, incident_id=incident)
            unsettled = unsettled_failbacks(session=session, incident_id=incident)
        return bool(pending or unsettled)

    def answer_pending(self) -> None:
        """Click on (or let expire) every request whose answer is due."""
        with Session(self._engine) as session:
            pending = pending_for(session=session)
        for approval in pending:
            if approval.id in self._answered or approval.slack_ts is None:
                continue
            message = self._stack.slack.message(approval.slack_ts)
            if message is None:
                continue
            if approval.id not in self._planned:
                self._planned[approval.id] = (self._answer_for(approval.kind), time.monotonic())
            answer, seen_at = self._planned[approval.id]
            if time.monotonic() < seen_at + answer.after_seconds:
                continue
            self._answered.add(approval.id)
            blocks = message.get("blocks")
            message["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks
            for stranger in answer.strangers:
                if self._click(message, APPROVE_ACTION, stranger).get("outcome") == "refused":
                    self.refused += 1
            if answer.answer == "wait":
                continue
            if answer.answer == "none":
                self._clock.advance_past(approval.expires_at)
                continue
            action = APPROVE_ACTION if answer.answer == "approve" else REJECT_ACTION
            by = answer.by or (approval.approvers[0] if approval.approvers else "U0NOBODY")
            if self._click(message, action, by).get("outcome") == "refused":
                self.refused += 1
                self._clock.advance_past(approval.expires_at)

    def _answer_for(self, kind: str) -> ApprovalWorld:
        for index, answer in enumerate(self._answers):
            if answer.action in (None, kind):
                return self._answers.pop(index)
        return self._world

    def _click(self, message: dict[str, Any], action: str, user: str) -> dict[str, Any]:
        answer = click(
            self._url,
            self._secret,
            interaction(message, action, user),
            timestamp=int(self._clock.now().timestamp()),
        )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body
