"""The outbox's API: write messages in the caller's transaction; read back where they went.

Every function takes the caller's session, so a message is committed with whatever the caller
records (its audit event, its step) or not at all. Every message has a key: writing the same key
twice writes nothing the second time, so a run resumed after a crash never queues (or sends) a
message twice. The channel's sender (`agent.outbox.sender`) posts them, paced and in order.

    post(session, key=…, channel=…, text=…, now=…)                 # a new message in the channel
    post(session, key=…, channel=…, text=…, now=…, parent_key=…)   # a reply in that one's thread
    post(session, key=…, channel=…, text=…, now=…, thread_ts=…)    # a reply in a known thread
    update(session, key=…, channel=…, text=…, now=…, target_key=…) # edit a message it sent
    where(session, key)                                   # (channel, ts) once sent, else None
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from agent.outbox.models import (
    OutboxChannel,
    OutboxMessage,
    OutboxMethod,
    OutboxState,
    channel_id,
)

DIGEST_WINDOW = timedelta(minutes=1)


class Message(TypedDict):
    """What every queued message says, a post or an update: its key, where, what, who and when."""

    key: str
    channel: str
    text: str
    now: datetime
    blocks: NotRequired[list[dict[str, Any]] | None]
    actor: NotRequired[str]
    """"agent" unless given."""
    incident_id: NotRequired[uuid.UUID | None]


def post(
    session: Session,
    *,
    parent_key: str | None = None,
    thread_ts: str | None = None,
    step: str | None = None,
    opens_thread: bool = False,
    approval_id: uuid.UUID | None = None,
    **message: Unpack[Message],
) -> OutboxMessage:
    """Queue a chat.postMessage (a reply when `parent_key` or `thread_ts` is given).

    Return the queued message, or the one queued earlier under the same key.
    """
    return _queue(
        session,
        OutboxMethod.post,
        message,
        parent_key=parent_key,
        thread_ts=thread_ts,
        step=step,
        opens_thread=opens_thread,
        approval_id=approval_id,
    )


def update(
    session: Session,
    *,
    target_key: str | None = None,
    target_ts: str | None = None,
    coalesce: bool = False,
    **message: Unpack[Message],
) -> OutboxMessage:
    """Queue a chat.update of the message with `target_key` (or `target_ts`).

    With `coalesce`, an edit of the same message still waiting is rewritten instead: a message
    edited often (a cause thread's head) is sent once with its latest text.
    """
    if target_key is None and target_ts is None:
        raise ValueError("an update needs the message to edit: target_key or target_ts")
    if coalesce:
        waiting = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.method == OutboxMethod.update,
                OutboxMessage.state == OutboxState.pending,
                col(OutboxMessage.attempted_at).is_(None),
                OutboxMessage.target_key == target_key,
                OutboxMessage.target_ts == target_ts,
                OutboxMessage.channel == message["channel"],
            )
        ).first()
        if waiting is not None:
            waiting.text, waiting.blocks = message["text"], message.get("blocks")
            session.add(waiting)
            return waiting
    return _queue(session, OutboxMethod.update, message, target_key=target_key, target_ts=target_ts)


def find(session: Session, key: str) -> OutboxMessage | None:
    """Return the message queued under this key, whatever its state."""
    return session.exec(select(OutboxMessage).where(OutboxMessage.key == key)).first()


def where(session: Session, key: str) -> tuple[str, str] | None:
    """Return (channel, ts) of the message with this key once Slack took it, else None."""
    message = find(session, key)
    if message is None or message.state != OutboxState.sent or message.ts is None:
        return None
    return message.channel, message.ts


def thread_of(session: Session, incident_id: uuid.UUID) -> str | None:
    """Return the key of the message whose thread is the incident's (its opener or its digest)."""
    opener = session.exec(
        select(OutboxMessage)
        .where(
            OutboxMessage.incident_id == incident_id,
            (col(OutboxMessage.opens_thread).is_(True))
            | (OutboxMessage.state == OutboxState.digested),
        )
        .order_by(col(OutboxMessage.id))
    ).first()
    if opener is None:
        return None
    return opener.digest_key if opener.state == OutboxState.digested else opener.key


def new_incidents(session: Session, channel: str, since: datetime) -> int:
    """Count the incidents whose first message went to the channel since then."""
    return int(
        session.exec(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.channel == channel,
                col(OutboxMessage.created_at) >= since,
                (col(OutboxMessage.opens_thread).is_(True))
                | (OutboxMessage.state == OutboxState.digested),
            )
        ).one()
    )


def digest_key(channel: str, now: datetime) -> str:
    """Return the key of the channel's digest for the minute `now` falls in."""
    return f"digest/{channel}/{now.strftime('%Y-%m-%dT%H:%M')}"


def add_to_digest(
    session: Session,
    *,
    key: str,
    channel: str,
    now: datetime,
    incident_id: uuid.UUID,
    line: str,
    label: str,
    actor: str,
    step: str | None,
) -> str:
    """Fold a new incident's opening message into the channel's digest of this minute.

    The digest is queued once per channel and minute (replicas race for it: the database's
    unique key decides); each entry marks it to be edited. Return the digest's key.
    """
    digest = digest_key(channel, now)
    values = {
        "key": digest,
        "channel": channel,
        "method": OutboxMethod.post.value,
        "text": "Incident digest",
        "actor": actor,
        "opens_thread": False,
        "digest": True,
        "dirty": True,
        "state": OutboxState.pending.value,
        "attempts": 0,
        "created_at": now,
    }
    _insert_absent(session, OutboxMessage, values, "key")
    _add(
        session,
        OutboxMessage(
            key=key,
            channel=channel,
            text=line,
            actor=actor,
            incident_id=incident_id,
            step=step,
            digest_key=digest,
            label=label[:200],
            state=OutboxState.digested,
            created_at=now,
        ),
    )
    session.connection().execute(
        OutboxMessage.__table__.update()  # type: ignore[attr-defined]
        .where(OutboxMessage.__table__.c.key == digest)  # type: ignore[attr-defined]
        .values(dirty=True)
    )
    return digest


def entries(session: Session, digest: str) -> list[OutboxMessage]:
    """Return the digest's entries, oldest first."""
    return list(
        session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.digest_key == digest, OutboxMessage.state == OutboxState.digested)
            .order_by(col(OutboxMessage.id))
        ).all()
    )


def ensure_channel(session: Session, channel: str, burst: int) -> None:
    """Create the channel's pace row once (a full bucket), whichever replica comes first."""
    values = {"id": channel_id(channel), "channel": channel, "tokens": float(burst)}
    _insert_absent(session, OutboxChannel, values, "channel")


def _queue(
    session: Session, method: OutboxMethod, message: Message, **fields: Any
) -> OutboxMessage:
    """Queue a message of this method: the common fields, then the method's own (`fields`)."""
    return _add(
        session,
        OutboxMessage(
            key=message["key"],
            channel=message["channel"],
            method=method,
            text=message["text"],
            blocks=message.get("blocks"),
            actor=message.get("actor", "agent"),
            incident_id=message.get("incident_id"),
            created_at=message["now"],
            **fields,
        ),
    )


def _add(session: Session, message: OutboxMessage) -> OutboxMessage:
    earlier = find(session, message.key)
    if earlier is not None:
        return earlier
    session.add(message)
    session.flush()
    return message


def _insert_absent(session: Session, model: Any, values: dict[str, Any], unique: str) -> None:
    """INSERT … ON CONFLICT DO NOTHING, on PostgreSQL and SQLite alike."""
    table = model.__table__
    dialect = session.connection().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.connection().execute(
        insert(table).values(**values).on_conflict_do_nothing(index_elements=[unique])
    )
