"""Send the outbox: one sender per channel (a lease), paced, in order, through 429s and restarts.

A channel's messages go in the order they were written (`OutboxMessage.id`), so a reply always
follows the message that opens its thread; the reply's `thread_ts` is read from that message once
it is sent. The pace is a token bucket kept in the channel's row (`burst` at once, then one a
second): whoever holds the channel's lease spends it, so replicas share one pace and never send
the same message twice. A 429 blocks the channel for its Retry-After and the message stays
queued; a 5xx or a network error is retried with backoff; an answer Slack will never change
(`channel_not_found`, `invalid_blocks`) fails the message for good, audited.

Each post carries its key in Slack's message metadata. A crash (or a lost answer) between the
call and the commit that marks the message sent leaves it `pending` with `attempted_at` set: the
next sender first reads the channel's history (or the thread's replies) since that attempt and,
when the key is there, records that message instead of posting again. So a message is neither
lost nor doubled across restarts. Where the history cannot be read (the bot lacks
`channels:history`), or the chat client has no `find_posted` (tests' fakes), it is posted again
(at least once).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from agent.approvals.service import set_message
from agent.incidents.service import set_slack_thread
from agent.outbox import service
from agent.outbox.digest import render_digest
from agent.outbox.models import (
    OutboxChannel,
    OutboxMessage,
    OutboxMethod,
    OutboxState,
    channel_id,
)
from agent.store.audit_log import AuditLog
from agent.store.db import session_scope
from agent.store.leases import release_lease
from tools.result import ToolResult

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 8
"""Errors Slack may get over (5xx, network) before a message is given up (audited)."""
BACKOFF_MAX_SECONDS = 60.0
LOOKBACK_SECONDS = 60.0
"""How far before an unanswered attempt the sender looks for the message it may have posted."""


class OutboxChat(Protocol):
    """What the sender needs of Slack: post and edit, answering at once (no waits inside).

    A client that also has `find_posted` (`SlackChat`) is given each post's key, and asked for it
    before a post whose earlier attempt went unanswered is made again.
    """

    def post(
        self,
        *,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        key: str | None = None,
    ) -> ToolResult: ...

    def update(
        self, *, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> ToolResult: ...


@dataclass(frozen=True)
class Pace:
    """A channel's pace: `burst` messages at once, then `rate` a second; edits of a digest apart."""

    burst: int = 5
    rate: float = 1.0
    lease_seconds: float = 30.0
    digest_edit_seconds: float = 10.0
    public_url: str | None = None


def outbox_chat(chat: Any) -> OutboxChat:
    """Return the chat client the sender uses: the adapter's unpaced twin when it has one."""
    twin = getattr(chat, "for_outbox", None)
    return twin() if callable(twin) else chat  # type: ignore[no-any-return]


def pending_channels(engine: Engine, now: datetime) -> list[str]:
    """Return the channels with something to send (a message, or a digest to edit)."""
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxMessage.channel)
            .where(
                or_(
                    col(OutboxMessage.state) == OutboxState.pending,
                    col(OutboxMessage.dirty).is_(True) & (col(OutboxMessage.state) == "sent"),
                )
            )
            .distinct()
        ).all()
    return sorted(set(rows))


class ChannelSender:
    """Send one channel's due messages while holding its lease; never waits for the pace."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        chat: OutboxChat,
        *,
        owner: str,
        pace: Pace,
        now: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._chat = chat
        self._owner = owner
        self._pace = pace
        self._now = now

    def claim(self, channel: str) -> bool:
        """Take (or renew) the channel's lease; False while another sender holds it."""
        now = self._now()
        with session_scope(self._engine) as session:
            service.ensure_channel(session, channel, self._pace.burst)
            result = session.connection().execute(
                update(OutboxChannel)
                .where(
                    col(OutboxChannel.id) == channel_id(channel),
                    or_(
                        col(OutboxChannel.claimed_by).is_(None),
                        col(OutboxChannel.lease_until).is_(None),
                        col(OutboxChannel.lease_until) < now,
                        col(OutboxChannel.claimed_by) == self._owner,
                    ),
                )
                .values(
                    claimed_by=self._owner,
                    lease_until=now + timedelta(seconds=self._pace.lease_seconds),
                )
            )
            return bool(result.rowcount)

    def release(self, channel: str) -> None:
        """Give the channel back (its queue is empty, or this sender stops)."""
        release_lease(self._engine, OutboxChannel, channel_id(channel), self._owner)

    def flush(self, channel: str, *, limit: int | None = None) -> float | None:
        """Send the channel's due messages (at most `limit`) while the pace allows.

        Return the seconds until the channel may take the next one, or None when nothing waits.
        The caller must hold the channel's lease (`claim`).
        """
        sent = 0
        while limit is None or sent < limit:
            wait = self._step(channel)
            if wait != 0.0:
                return wait
            sent += 1
        return 0.0

    def _step(self, channel: str) -> float | None:
        """Send the next message if the pace allows: 0.0 when one was sent, else the wait."""
        now = self._now()
        with Session(self._engine) as session:
            pace = session.get(OutboxChannel, channel_id(channel))
            message = self._next(session, channel, now)
            if message is None or pace is None:
                return None
            if isinstance(message, float):
                return message
            # Slack paces posts per channel; edits (chat.update) are not counted against it, so
            # an edit need not wait behind posts that wait for the pace.
            wait = self._wait(pace, now, edit=_is_edit(message))
            if wait > 0 and not _is_edit(message):
                edit = self._next_edit(session, channel, now)
                if edit is not None and self._wait(pace, now, edit=True) == 0:
                    message, wait = edit, 0.0
            session.expunge(message)
        if wait > 0:
            return wait
        return self._send(message, now)

    def _next(self, session: Session, channel: str, now: datetime) -> OutboxMessage | float | None:
        """Return the channel's next message (or digest edit), or the seconds until one is due."""
        head = session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.channel == channel, OutboxMessage.state == OutboxState.pending)
            .order_by(col(OutboxMessage.id))
        ).first()
        if head is not None:
            if head.not_before is not None and head.not_before > now:
                return (head.not_before - now).total_seconds()
            return head
        edit_before = now - timedelta(seconds=self._pace.digest_edit_seconds)
        digest = session.exec(
            select(OutboxMessage)
            .where(
                OutboxMessage.channel == channel,
                OutboxMessage.state == OutboxState.sent,
                col(OutboxMessage.dirty).is_(True),
            )
            .order_by(col(OutboxMessage.id))
        ).first()
        if digest is None:
            return None
        last = digest.edited_at or digest.sent_at or now
        if last > edit_before:
            return max((last - edit_before).total_seconds(), 0.01)
        return digest

    def _next_edit(self, session: Session, channel: str, now: datetime) -> OutboxMessage | None:
        return session.exec(
            select(OutboxMessage)
            .where(
                OutboxMessage.channel == channel,
                OutboxMessage.state == OutboxState.pending,
                OutboxMessage.method == OutboxMethod.update,
                or_(col(OutboxMessage.not_before).is_(None), col(OutboxMessage.not_before) <= now),
            )
            .order_by(col(OutboxMessage.id))
        ).first()

    def _wait(self, pace: OutboxChannel, now: datetime, *, edit: bool) -> float:
        if pace.blocked_until is not None and pace.blocked_until > now:
            return (pace.blocked_until - now).total_seconds()
        if edit:
            return 0.0
        tokens = self._tokens(pace, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self._pace.rate

    def _tokens(self, pace: OutboxChannel, now: datetime) -> float:
        elapsed = (now - pace.refilled_at).total_seconds() if pace.refilled_at else 0.0
        return min(float(self._pace.burst), pace.tokens + max(elapsed, 0.0) * self._pace.rate)

    def _send(self, message: OutboxMessage, now: datetime) -> float | None:
        """Call Slack for one message and record the answer; return 0.0 or the wait."""
        with session_scope(self._engine) as session:
            resolved = self._resolve(session, message)
            if isinstance(resolved, float):
                return resolved
            # Said before the call: if this process dies before the answer is stored, the next
            # sender knows this message may have been posted (see the module's note). A digest's
            # `dirty` is cleared before its entries are read: one added meanwhile marks it again.
            session.connection().execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == message.id)
                .values(attempted_at=now, attempts=OutboxMessage.attempts + 1, dirty=False)
            )
            text, blocks = message.text, message.blocks
            if message.digest:
                text, blocks = render_digest(
                    message.key, service.entries(session, message.key), self._pace.public_url
                )
            edit = message.state == OutboxState.sent
        if edit or message.method == OutboxMethod.update:
            ts = message.ts if edit else resolved
            result = self._chat.update(
                channel=message.channel, ts=str(ts), text=text, blocks=blocks
            )
            return self._record(message, result, edit=edit)
        find = getattr(self._chat, "find_posted", None)
        if find is None:
            result = self._chat.post(
                channel=message.channel, text=text, blocks=blocks, thread_ts=resolved
            )
            return self._record(message, result, edit=edit)
        if message.attempted_at is not None:
            # An earlier attempt got no answer (the process died, or the network did): the
            # message may be in Slack already. Its key, in its metadata, tells.
            since = message.attempted_at.timestamp() - LOOKBACK_SECONDS
            found = find(channel=message.channel, key=message.key, thread_ts=resolved, oldest=since)
            if found.status == "ok":
                log.info("outbox.found_posted", key=message.key, ts=found.evidence.get("ts"))
                return self._record(message, found, edit=False)
            if found.status != "no_data":
                # Unreadable history (e.g. the bot lacks channels:history): post again rather
                # than risk losing it.
                log.warning("outbox.history_unreadable", key=message.key, error=found.error)
        result = self._chat.post(
            channel=message.channel,
            text=text,
            blocks=blocks,
            thread_ts=resolved,
            key=message.key,
        )
        return self._record(message, result, edit=edit)

    def _resolve(self, session: Session, message: OutboxMessage) -> str | None | float:
        """Return the ts the message needs (its thread's, or the edited message's), or a wait.

        A parent Slack refused for good leaves its reply to open the thread itself.
        """
        if message.state == OutboxState.sent:
            return message.ts
        key = message.parent_key if message.method == OutboxMethod.post else message.target_key
        literal = message.thread_ts if message.method == OutboxMethod.post else message.target_ts
        if key is None:
            return literal
        parent = service.find(session, key)
        if parent is not None and parent.state == OutboxState.sent and parent.ts:
            return parent.ts
        if parent is None or parent.state == OutboxState.failed:
            if message.method == OutboxMethod.update:
                row = session.get(OutboxMessage, message.id)
                assert row is not None
                self._fail(session, row, f"the message to edit ({key}) was never sent")
                return 0.0
            message.opens_thread = message.incident_id is not None
            return literal
        # Not sent yet: the parent was written first, so it goes first; wait for it.
        return 0.5

    def _record(self, message: OutboxMessage, result: ToolResult, *, edit: bool) -> float | None:
        now = self._now()
        status = result.evidence.get("http_status") if result.evidence else None
        with session_scope(self._engine) as session:
            pace = session.get(OutboxChannel, channel_id(message.channel))
            row = session.get(OutboxMessage, message.id)
            assert pace is not None and row is not None
            if result.status == "ok":
                if not (edit or message.method == OutboxMethod.update):
                    pace.tokens = self._tokens(pace, now) - 1
                    pace.refilled_at = now
                    session.add(pace)
                self._sent(session, row, message, result, now, edit=edit)
                return 0.0
            if status == 429:
                retry_after = float(result.evidence.get("retry_after") or 1.0)
                pace.blocked_until = now + timedelta(seconds=retry_after)
                pace.tokens, pace.refilled_at = 0.0, now
                session.add(pace)
                row.attempted_at = None  # Slack said no: nothing was posted
                row.dirty = row.dirty or edit
                session.add(row)
                log.info("outbox.rate_limited", channel=message.channel, retry_after=retry_after)
                return retry_after
            if status is not None and status < 500:
                # Slack answered with an application error (`channel_not_found`,
                # `invalid_blocks`, …): the same call fails again.
                if edit:
                    row.error = str(result.error)
                    session.add(row)
                    return 0.0
                self._fail(session, row, str(result.error), result)
                return 0.0
            row.dirty = row.dirty or edit
            if row.attempts >= MAX_ATTEMPTS and not edit:
                self._fail(session, row, str(result.error), result)
                return 0.0
            delay = min(2.0 ** max(row.attempts - 1, 0), BACKOFF_MAX_SECONDS)
            row.not_before, row.error = now + timedelta(seconds=delay), str(result.error)
            if status is not None:
                row.attempted_at = None  # an HTTP error answer: nothing was posted
            session.add(row)
            return delay

    def _sent(
        self,
        session: Session,
        row: OutboxMessage,
        message: OutboxMessage,
        result: ToolResult,
        now: datetime,
        *,
        edit: bool,
    ) -> None:
        ts = str(result.evidence.get("ts"))
        channel = str(result.evidence.get("channel") or message.channel)
        if edit:
            row.edited_at = now
            session.add(row)
            return
        row.state, row.ts, row.sent_at, row.error = OutboxState.sent, ts, now, None
        row.edited_at = now
        session.add(row)
        if message.method == OutboxMethod.update:
            kind = "notification.updated"
        else:
            kind = "notification.sent"
        data = result.audit_data()
        if message.step is not None:
            data["step"] = message.step
        data["outbox_key"] = message.key
        if message.incident_id is not None:
            self._audit.record(
                session, kind, data, actor=message.actor, incident_id=message.incident_id
            )
        if message.opens_thread and message.incident_id is not None:
            set_slack_thread(
                session=session, incident_id=message.incident_id, channel=channel, thread_ts=ts
            )
        if message.digest:
            for entry in service.entries(session, message.key):
                if entry.incident_id is not None:
                    set_slack_thread(
                        session=session,
                        incident_id=entry.incident_id,
                        channel=channel,
                        thread_ts=ts,
                    )
        if message.approval_id is not None:
            set_message(session=session, approval_id=message.approval_id, channel=channel, ts=ts)

    def _fail(
        self,
        session: Session,
        row: OutboxMessage,
        error: str,
        result: ToolResult | None = None,
    ) -> None:
        row.state, row.error = OutboxState.failed, error[:1000]
        session.add(row)
        if row.incident_id is not None:
            data: dict[str, Any] = (
                result.audit_data() if result is not None else {"summary": error[:500]}
            )
            data["outbox_key"] = row.key
            self._audit.record(
                session, "notification.failed", data, actor=row.actor, incident_id=row.incident_id
            )
        log.warning("outbox.failed", key=row.key, channel=row.channel, error=error[:200])


def _is_edit(message: OutboxMessage) -> bool:
    return message.method == OutboxMethod.update or message.state == OutboxState.sent


def send_now(
    engine: Engine,
    audit: AuditLog,
    chat: Any,
    channel: str,
    *,
    pace: Pace,
    now: Callable[[], datetime],
) -> None:
    """Send what the channel can take right now, if no other sender holds it; never waits.

    A run calls this after committing its message: a quiet channel gets it at once (the lone
    incident's report is not delayed by a poll), a busy one leaves it to the channel's sender.
    """
    sender = ChannelSender(
        engine, audit, outbox_chat(chat), owner=f"inline:{uuid.uuid4().hex}", pace=pace, now=now
    )
    if not sender.claim(channel):
        return
    try:
        sender.flush(channel, limit=pace.burst)
    finally:
        sender.release(channel)


class OutboxSender:
    """The worker process's sender: every channel with something to send, each at its pace."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        chat: Any,
        *,
        owner: str,
        pace: Pace,
        now: Callable[[], datetime],
        poll_seconds: float = 0.25,
    ) -> None:
        self._engine = engine
        self._sender = ChannelSender(
            engine, audit, outbox_chat(chat), owner=owner, pace=pace, now=now
        )
        self._now = now
        self._poll = poll_seconds
        self._held: set[str] = set()

    def run_once(self) -> float:
        """Send what is due on every channel this sender holds or can take; return the pause."""
        pause = self._poll
        channels = set(pending_channels(self._engine, self._now()))
        for channel in sorted(channels | self._held):
            if not self._sender.claim(channel):
                self._held.discard(channel)
                continue
            wait = self._sender.flush(channel)
            if wait is None:
                self._sender.release(channel)
                self._held.discard(channel)
                continue
            self._held.add(channel)
            pause = min(pause, max(wait, 0.01))
        return pause

    def run(self, stop: threading.Event) -> None:
        """Send until `stop` is set; an error is logged and the loop goes on."""
        while not stop.is_set():
            try:
                pause = self.run_once()
            except Exception:
                log.exception("outbox.sender_error")
                pause = self._poll
            stop.wait(pause)
        for channel in list(self._held):
            self._sender.release(channel)
