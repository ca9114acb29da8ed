"""The Slack outbox: nothing lost across a SIGKILL, never doubled by two replicas, 429 storms
delay but lose nothing, replies follow their thread's first message, edits by key.

Each test queues messages as a run does (`agent.outbox.service`, committed), then sends them with
the sender the worker runs (`OutboxSender`) against the Slack emulator over the real Web API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from agent.outbox import service as outbox
from agent.outbox.models import OutboxMessage, OutboxState
from agent.outbox.sender import OutboxSender, Pace
from agent.settings import Settings
from agent.store.db import make_engine, session_scope, upgrade
from agent.wiring import Services, build_services
from audit.sqltypes import utcnow
from sandbox.server import EmulatorServer
from sandbox.slack import SlackState, create_slack_app
from tests.conftest import make_settings

TOKEN = "xoxb-outbox-test"
CHANNELS = ("C0ONE", "C0TWO")
FAST = Pace(burst=3, rate=20.0, lease_seconds=5.0, digest_edit_seconds=0.2)
"""The emulator's own limit is what is tested; the outbox's pace is quick so tests are short."""


@pytest.fixture
def slack() -> Iterator[tuple[SlackState, str]]:
    state = SlackState(token=TOKEN, channels=set(CHANNELS), burst=1000)
    server = EmulatorServer(create_slack_app(state)).start()
    yield state, server.url + "/api/"
    server.stop()


def settings_for(tmp_path: Path, url: str, database_url: str | None = None) -> Settings:
    extra = {"database_url": database_url} if database_url else {}
    return make_settings(
        tmp_path, slack_bot_token=TOKEN, slack_base_url=url, slack_channel=CHANNELS[0], **extra
    )


def services_for(settings: Settings) -> Services:
    services = build_services(settings)
    upgrade(services.engine)
    return services


def sender(services: Services, owner: str, pace: Pace = FAST) -> OutboxSender:
    return OutboxSender(
        services.engine,
        services.audit,
        services.adapters.chat,
        owner=owner,
        pace=pace,
        now=utcnow,
        poll_seconds=0.02,
    )


def queue_threads(services: Services, threads: int, replies: int) -> list[str]:
    """Queue `threads` messages in each channel, each with `replies` replies; return the keys."""
    keys = []
    with session_scope(services.engine) as session:
        for channel in CHANNELS:
            for t in range(threads):
                head = f"{channel}/t{t}"
                outbox.post(session, key=head, channel=channel, text=head, now=utcnow())
                keys.append(head)
                for r in range(replies):
                    key = f"{head}/r{r}"
                    outbox.post(
                        session, key=key, channel=channel, text=key, now=utcnow(), parent_key=head
                    )
                    keys.append(key)
    return keys


def drain(senders: list[OutboxSender], engine: Any, timeout: float = 60) -> None:
    """Run the senders (one thread each) until nothing is pending."""
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,)) for s in senders]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and pending(engine):
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def pending(engine: Any) -> int:
    with Session(engine) as session:
        return len(
            session.exec(
                select(OutboxMessage.id).where(OutboxMessage.state == OutboxState.pending)
            ).all()
        )


def assert_each_once_in_its_thread(state: SlackState, keys: list[str]) -> None:
    """Every key posted exactly once; each reply in its head's thread, in the order queued."""
    posted = [m["text"] for m in state.messages]
    assert sorted(posted) == sorted(keys), "a message was lost or doubled"
    ts_of = {m["text"]: m["ts"] for m in state.messages}
    for message in state.messages:
        text = message["text"]
        if "/r" in text:
            assert message["thread_ts"] == ts_of[text.rsplit("/", 1)[0]]
        else:
            assert not message.get("thread_ts")
    for channel in CHANNELS:
        in_channel = [m["text"] for m in state.messages if m["channel"] == channel]
        assert in_channel == [k for k in keys if k.startswith(channel)], "order not kept"


def test_replies_wait_for_their_thread_and_keep_their_order(
    tmp_path: Path, slack: tuple[SlackState, str]
) -> None:
    state, url = slack
    services = services_for(settings_for(tmp_path, url))
    keys = queue_threads(services, threads=3, replies=3)

    drain([sender(services, "one")], services.engine)

    assert_each_once_in_its_thread(state, keys)
    with Session(services.engine) as session:
        assert outbox.where(session, keys[1]) is not None


def test_a_429_storm_delays_the_messages_but_loses_none(
    tmp_path: Path, slack: tuple[SlackState, str]
) -> None:
    state, url = slack
    services = services_for(settings_for(tmp_path, url))
    keys = queue_threads(services, threads=2, replies=2)
    state.throttle(1.5, retry_after=1)

    drain([sender(services, "one")], services.engine)

    refused = [c for c in state.calls if c["method"] == "chat.postMessage"]
    assert len(refused) > len(keys), "the storm answered nothing with 429"
    assert_each_once_in_its_thread(state, keys)
    with Session(services.engine) as session:
        states = session.exec(select(OutboxMessage.state)).all()
    assert set(states) == {OutboxState.sent}


def test_slack_s_pace_is_kept_without_a_429(tmp_path: Path) -> None:
    """The sender spends a token bucket like Slack's: past the burst, one a second."""
    state = SlackState(token=TOKEN, channels=set(CHANNELS), burst=2)
    server = EmulatorServer(create_slack_app(state)).start()
    try:
        services = services_for(settings_for(tmp_path, server.url + "/api/"))
        keys = queue_threads(services, threads=4, replies=0)
        drain([sender(services, "one", Pace(burst=2, rate=1.0))], services.engine)
    finally:
        server.stop()
    assert sorted(m["text"] for m in state.messages) == sorted(keys)
    posts = [c for c in state.calls if c["method"] == "chat.postMessage"]
    assert len(posts) == len(keys), "the sender went over the channel's pace"


def two_replicas_never_double_post(
    tmp_path: Path, slack: tuple[SlackState, str], database_url: str | None
) -> None:
    state, url = slack
    first = services_for(settings_for(tmp_path, url, database_url))
    second = build_services(settings_for(tmp_path, url, database_url))
    assert first.engine is not second.engine
    keys = queue_threads(first, threads=6, replies=2)

    drain([sender(first, "replica-a"), sender(second, "replica-b")], first.engine)

    assert_each_once_in_its_thread(state, keys)
    second.engine.dispose()


def test_two_replicas_never_double_post(tmp_path: Path, slack: tuple[SlackState, str]) -> None:
    two_replicas_never_double_post(tmp_path, slack, None)


@pytest.mark.postgres
def test_two_replicas_never_double_post_on_postgres(
    tmp_path: Path, slack: tuple[SlackState, str], postgres_url: str
) -> None:
    two_replicas_never_double_post(tmp_path, slack, postgres_url)


WRITER = textwrap.dedent(
    """
    import sys, time
    from agent.outbox import service as outbox
    from agent.store.db import make_engine, session_scope
    from audit.sqltypes import utcnow

    engine = make_engine(sys.argv[1])
    with session_scope(engine) as session:
        outbox.post(session, key="crash/report", channel="C0ONE", text="the report", now=utcnow())
    print("committed", flush=True)
    time.sleep(600)  # killed here: after the commit, before any sender sent it
    """
)


def test_a_message_committed_before_a_sigkill_is_sent_once_after_the_restart(
    tmp_path: Path, slack: tuple[SlackState, str]
) -> None:
    state, url = slack
    settings = settings_for(tmp_path, url)
    upgrade(make_engine(settings.database_url))
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, settings.database_url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "committed"
    writer.send_signal(signal.SIGKILL)
    assert writer.wait(timeout=10) == -signal.SIGKILL
    assert state.messages == []

    services = services_for(settings)  # the restarted process
    drain([sender(services, "restarted")], services.engine)
    drain([sender(services, "restarted-again")], services.engine)

    assert [m["text"] for m in state.messages] == ["the report"]


def test_an_edit_waits_for_its_message_and_edits_it_in_place(
    tmp_path: Path, slack: tuple[SlackState, str]
) -> None:
    state, url = slack
    services = services_for(settings_for(tmp_path, url))
    with session_scope(services.engine) as session:
        outbox.post(session, key="cause/1", channel="C0ONE", text="cause: 1 service", now=utcnow())
        for n in (2, 3):
            outbox.update(
                session,
                key=f"cause/1/v{n}",
                channel="C0ONE",
                text=f"cause: {n} services",
                now=utcnow(),
                target_key="cause/1",
                coalesce=True,
            )

    drain([sender(services, "one")], services.engine)

    assert [m["text"] for m in state.messages] == ["cause: 3 services"]
    assert state.messages[0].get("edited") is True
    updates = [c for c in state.calls if c["method"] == "chat.update"]
    assert len(updates) == 1, "coalesced edits are sent once, with the latest text"


def test_a_message_slack_refuses_for_good_is_failed_and_audited_not_retried(
    tmp_path: Path, slack: tuple[SlackState, str]
) -> None:
    state, url = slack
    services = services_for(settings_for(tmp_path, url))
    incident = uuid.uuid4()
    with session_scope(services.engine) as session:
        outbox.post(session, key="lost/1", channel="C0NOWHERE", text="x", now=utcnow())
        outbox.post(session, key="ok/1", channel="C0ONE", text="y", now=utcnow())
        outbox.post(
            session,
            key="lost/2",
            channel="C0NOWHERE",
            text="z",
            now=utcnow(),
            incident_id=incident,
            parent_key="lost/1",
        )

    drain([sender(services, "one")], services.engine)

    with Session(services.engine) as session:
        rows = {m.key: m for m in session.exec(select(OutboxMessage)).all()}
    assert rows["lost/1"].state == OutboxState.failed
    assert rows["lost/1"].error == "channel_not_found"
    assert rows["ok/1"].state == OutboxState.sent
    assert [m["text"] for m in state.messages] == ["y"]
    calls = [c for c in state.calls if c["args"].get("channel") == "C0NOWHERE"]
    assert len(calls) == 2, "a refused message is not tried again"


DOOMED_SENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tests.conftest import make_settings
    from agent.outbox.sender import OutboxSender, Pace
    from agent.wiring import build_services
    from audit.sqltypes import utcnow

    folder, url, token, channel = sys.argv[1:5]
    settings = make_settings(
        Path(folder), slack_bot_token=token, slack_base_url=url, slack_channel=channel
    )
    services = build_services(settings)
    sender = OutboxSender(
        services.engine, services.audit, services.adapters.chat,
        owner="doomed", pace=Pace(lease_seconds=2.0), now=utcnow,
    )
    sender.run_once()  # killed inside: Slack is slow to answer
    """
)


def test_a_sender_killed_while_slack_posts_is_not_followed_by_a_second_post(
    tmp_path: Path, slack: tuple[SlackState, str]
) -> None:
    """SIGKILL between Slack's post and the commit that records it: the next sender finds the
    message by the key in its metadata instead of posting it again."""
    state, url = slack
    settings = settings_for(tmp_path, url)
    services = services_for(settings)
    with session_scope(services.engine) as session:
        outbox.post(session, key="slow/report", channel="C0ONE", text="the report", now=utcnow())
    state.answer_delay_seconds = 3.0
    root = Path(__file__).resolve().parents[2]
    doomed = subprocess.Popen(
        [sys.executable, "-c", DOOMED_SENDER, str(tmp_path), url, TOKEN, CHANNELS[0]],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not state.messages:
            time.sleep(0.02)  # until Slack has taken the post (its answer is 3 s away)
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    assert [m["text"] for m in state.messages] == ["the report"], "the doomed sender never posted"
    assert attempted(services.engine, "slow/report")
    with Session(services.engine) as session:
        assert outbox.where(session, "slow/report") is None, "killed before it recorded the post"
    state.answer_delay_seconds = 0.0

    drain([sender(services, "restarted")], services.engine)

    assert [m["text"] for m in state.messages] == ["the report"], "posted twice"
    with Session(services.engine) as session:
        assert outbox.where(session, "slow/report") == ("C0ONE", state.messages[0]["ts"])
    methods = [c["method"] for c in state.calls]
    assert methods.count("chat.postMessage") == 1 and "conversations.history" in methods


def attempted(engine: Any, key: str) -> bool:
    with Session(engine) as session:
        message = outbox.find(session, key)
        return message is not None and message.attempted_at is not None


def digest_is_one_row_whoever_writes_first(
    tmp_path: Path, url: str, database_url: str | None
) -> None:
    """Two replicas folding incidents into the same minute's digest: one digest, every entry."""
    replicas = [
        services_for(settings_for(tmp_path, url, database_url)),
        build_services(settings_for(tmp_path, url, database_url)),
    ]
    now = utcnow()
    keys = []
    for n in range(6):
        with session_scope(replicas[n % 2].engine) as session:
            keys.append(
                outbox.add_to_digest(
                    session,
                    key=f"incident-{n}/report",
                    channel="C0ONE",
                    now=now,
                    incident_id=uuid.uuid4(),
                    line=f"incident {n}",
                    label="dependency_degraded" if n % 3 else "suspect_change",
                    actor="agent.report",
                    step="report",
                )
            )
    assert len(set(keys)) == 1
    with Session(replicas[0].engine) as session:
        digests = session.exec(select(OutboxMessage).where(OutboxMessage.digest)).all()
        assert [d.key for d in digests] == keys[:1]
        assert [e.text for e in outbox.entries(session, keys[0])] == [
            f"incident {n}" for n in range(6)
        ]
        assert outbox.new_incidents(session, "C0ONE", now) == 6


def test_a_digest_is_one_row_whoever_writes_first(
    tmp_path: Path, slack: tuple[SlackState, str]
) -> None:
    digest_is_one_row_whoever_writes_first(tmp_path, slack[1], None)


@pytest.mark.postgres
def test_a_digest_is_one_row_whoever_writes_first_on_postgres(
    tmp_path: Path, slack: tuple[SlackState, str], postgres_url: str
) -> None:
    digest_is_one_row_whoever_writes_first(tmp_path, slack[1], postgres_url)
