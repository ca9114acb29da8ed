"""The Slack emulator answers like Slack; the adapter surfaces its errors as results."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY

from sandbox.server import EmulatorServer
from sandbox.slack import SlackState, create_slack_app
from tools.chat.slack import SlackChat

TOKEN = "xoxb-test-token"


@pytest.fixture
def slack() -> Iterator[tuple[SlackState, str]]:
    state = SlackState(token=TOKEN, channels={"C1"}, burst=1)
    server = EmulatorServer(create_slack_app(state)).start()
    yield state, server.url + "/api/"
    server.stop()


def test_post_in_a_thread_through_the_sdk(slack: tuple[SlackState, str]) -> None:
    state, url = slack
    chat = SlackChat(TOKEN, base_url=url)

    first = chat.post(
        channel="C1",
        text="incident opened",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}],
    )
    state.burst = 5
    reply = chat.post(channel="C1", text="resolved", thread_ts=str(first.evidence["ts"]))

    assert (first.status, reply.status) == ("ok", "ok")
    assert state.messages[1]["thread_ts"] == first.evidence["ts"]
    assert state.messages[0]["blocks"][0]["text"]["text"] == "*hi*"


def test_unknown_channel_comes_back_as_an_error_result(slack: tuple[SlackState, str]) -> None:
    state, url = slack
    result = SlackChat(TOKEN, base_url=url).post(channel="C404", text="x")
    assert result.status == "error"
    assert result.error == "channel_not_found"
    assert state.messages == []


def test_wrong_token_fails_the_check(slack: tuple[SlackState, str]) -> None:
    _, url = slack
    ok, reason = SlackChat("xoxb-wrong", base_url=url).check()
    assert not ok
    assert "invalid_auth" in reason
    assert SlackChat(TOKEN, base_url=url).check()[0] is True


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"channel": "C1"}, "no_text"),
        ({"channel": "C1", "text": "x" * 40_001}, "msg_too_long"),
        (
            {
                "channel": "C1",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            },
            "invalid_blocks",
        ),
        ({"channel": "C1", "blocks": [{"text": "no type"}]}, "invalid_blocks"),
    ],
)
def test_emulator_refuses_messages_that_break_the_contract(
    slack: tuple[SlackState, str], args: dict[str, object], error: str
) -> None:
    state, url = slack
    answer = httpx.post(
        url + "chat.postMessage", json=args, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 200
    assert answer.json() == {"ok": False, "error": error}
    assert state.messages == []


def test_missing_token_is_not_authed(slack: tuple[SlackState, str]) -> None:
    _, url = slack
    answer = httpx.post(url + "chat.postMessage", json={"channel": "C1", "text": "x"})
    assert answer.json() == {"ok": False, "error": "not_authed"}


def test_over_the_rate_limit_the_adapter_waits_for_retry_after(
    slack: tuple[SlackState, str],
) -> None:
    state, url = slack
    # No pacing of our own: the second post comes at once, over the emulator's burst of 1 (with
    # the default 1 s pacing it might arrive just after the emulator refilled, and not be 429).
    chat = SlackChat(TOKEN, base_url=url, min_interval_seconds=0)

    results = [chat.post(channel="C1", text=f"message {i}") for i in range(2)]

    assert [r.status for r in results] == ["ok", "ok"]
    assert [m["text"] for m in state.messages] == ["message 0", "message 1"]
    posts = [c for c in state.calls if c["method"] == "chat.postMessage"]
    assert len(posts) == 3


def test_posts_to_one_channel_are_paced_and_never_hit_the_rate_limit(
    slack: tuple[SlackState, str],
) -> None:
    state, url = slack
    clock = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    chat = SlackChat(TOKEN, base_url=url, monotonic=lambda: clock[0], sleep=sleep)
    state.burst = 100  # the emulator would allow a burst; the adapter paces anyway

    results = [chat.post(channel="C1", text=f"storm {i}") for i in range(4)]

    assert [r.status for r in results] == ["ok"] * 4
    assert waits == [1.0, 1.0, 1.0]
    assert [c["method"] for c in state.calls].count("chat.postMessage") == 4


def test_the_pacer_keeps_channels_apart_and_queues_concurrent_posts() -> None:
    from tools.chat.slack import ChannelPacer

    now = [0.0]
    pacer = ChannelPacer(1.0, monotonic=lambda: now[0], sleep=lambda s: None)

    assert [pacer.wait("C1"), pacer.wait("C1"), pacer.wait("C2"), pacer.wait("C1")] == [
        0.0,
        1.0,
        0.0,
        2.0,
    ]
    now[0] = 10.0
    assert pacer.wait("C1") == 0.0


def test_every_retry_the_sdk_makes_is_counted(slack: tuple[SlackState, str]) -> None:
    state, url = slack
    before = REGISTRY.get_sample_value("remediator_outgoing_retries_total", {"system": "slack"})
    chat = SlackChat(TOKEN, base_url=url, retry_base_seconds=0.01, min_interval_seconds=0)
    state.fail_next(503)
    state.fail_next(429, retry_after=0)

    result = chat.post(channel="C1", text="after two retries")

    after = REGISTRY.get_sample_value("remediator_outgoing_retries_total", {"system": "slack"})
    assert result.status == "ok"
    assert (after or 0) - (before or 0) == 2
