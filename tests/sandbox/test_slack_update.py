"""chat.update through the SDK: edits land once, app errors come back, 429/5xx retry boundedly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.server import EmulatorServer
from sandbox.slack import SlackState, create_slack_app
from tools.chat.slack import SlackChat

TOKEN = "xoxb-test-token"
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*approved* by <@U1>"}}


@pytest.fixture
def slack() -> Iterator[tuple[SlackState, str]]:
    state = SlackState(token=TOKEN, channels={"C1", "C2"})
    server = EmulatorServer(create_slack_app(state)).start()
    yield state, server.url + "/api/"
    server.stop()


def chat(url: str, **changes: Any) -> SlackChat:
    options: dict[str, Any] = {"base_url": url, "retry_base_seconds": 0.01} | changes
    return SlackChat(TOKEN, **options)


def posted(state: SlackState, url: str) -> str:
    result = chat(url).post(channel="C1", text="Approve failover? [Approve] [Reject]")
    assert result.status == "ok", result
    return str(result.evidence["ts"])


def updates(state: SlackState) -> int:
    return sum(1 for c in state.calls if c["method"] == "chat.update")


def test_update_edits_the_stored_message(slack: tuple[SlackState, str]) -> None:
    state, url = slack
    ts = posted(state, url)

    result = chat(url).update(channel="C1", ts=ts, text="Failover approved", blocks=[SECTION])

    assert result.status == "ok", result
    assert result.evidence == {"channel": "C1", "ts": ts}
    assert len(state.messages) == 1
    edited = state.messages[0]
    assert (edited["text"], edited["blocks"], edited["edited"]) == (
        "Failover approved",
        [SECTION],
        True,
    )


def _someone_elses(state: SlackState, ts: str) -> dict[str, Any]:
    state.messages.append({"channel": "C1", "ts": "1.000001", "user": "U0HUMAN", "text": "hi"})
    return {"channel": "C1", "ts": "1.000001", "text": "edited"}


@pytest.mark.parametrize(
    ("make_args", "error"),
    [
        (lambda state, ts: {"channel": "C1", "ts": "9.999999", "text": "x"}, "message_not_found"),
        (_someone_elses, "cant_update_message"),
        (lambda state, ts: {"channel": "C404", "ts": ts, "text": "x"}, "channel_not_found"),
        (lambda state, ts: {"channel": "C2", "ts": ts, "text": "x"}, "message_not_found"),
        (
            lambda state, ts: {"channel": "C1", "ts": ts, "text": "x", "blocks": [{"text": "?"}]},
            "invalid_blocks",
        ),
        (lambda state, ts: {"channel": "C1", "ts": ts, "text": "x" * 40_001}, "msg_too_long"),
    ],
)
def test_app_errors_come_back_as_error_results_with_slacks_code(
    slack: tuple[SlackState, str],
    make_args: Callable[[SlackState, str], dict[str, Any]],
    error: str,
) -> None:
    state, url = slack
    ts = posted(state, url)

    result = chat(url).update(**make_args(state, ts))

    assert result.status == "error"
    assert result.error == error
    assert state.messages[0]["text"] == "Approve failover? [Approve] [Reject]"
    assert updates(state) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_twice_then_success_delivers_the_edit_once(
    slack: tuple[SlackState, str], status: int
) -> None:
    state, url = slack
    ts = posted(state, url)
    state.fail_next(status, times=2)

    result = chat(url).update(channel="C1", ts=ts, text="Failover approved")

    assert result.status == "ok", result
    assert updates(state) == 3
    assert [m["text"] for m in state.messages] == ["Failover approved"]


def test_5xx_retries_are_bounded(slack: tuple[SlackState, str]) -> None:
    state, url = slack
    ts = posted(state, url)
    state.fail_next(503, times=10)

    result = chat(url).update(channel="C1", ts=ts, text="Failover approved")

    assert result.status == "error"
    assert result.evidence == {"http_status": 503}
    assert updates(state) == 3
    assert state.messages[0]["text"] != "Failover approved"


def test_429_with_retry_after_then_success(slack: tuple[SlackState, str]) -> None:
    state, url = slack
    ts = posted(state, url)
    state.fail_next(429, times=1, retry_after=0)

    result = chat(url).update(channel="C1", ts=ts, text="Failover approved")

    assert result.status == "ok", result
    assert updates(state) == 2
    assert state.messages[0]["text"] == "Failover approved"


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        ('{"ok": true, "ts": ', "unreadable"),
        ("<html>Bad Gateway</html>", "non-JSON"),
        ('{"ok": true}', "lacks channel or ts"),
    ],
)
def test_a_malformed_answer_is_an_error_result(
    slack: tuple[SlackState, str], body: str, summary: str
) -> None:
    state, url = slack
    ts = posted(state, url)
    state.answer_malformed_next(body=body)

    result = chat(url).update(channel="C1", ts=ts, text="Failover approved")

    assert result.status == "error"
    assert summary in result.summary
    assert updates(state) == 1


def test_a_slow_slack_times_out_as_an_error_result(slack: tuple[SlackState, str]) -> None:
    state, url = slack
    ts = posted(state, url)
    state.delay_seconds = 1.3

    result = chat(url, timeout_seconds=1).update(channel="C1", ts=ts, text="Failover approved")

    assert result.status == "error"
    assert result.error is not None and "timed out" in result.error
