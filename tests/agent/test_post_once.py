"""A run resumed after a crash does not post its Slack summary (or its page note) a second time.

A crash between the post and the checkpoint that records it (SIGKILL) makes the resumed run run
the report step again; here that step is run again by hand, as the resume would.
"""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime

from agent.graph.followup.effects import reply
from agent.graph.followup.state import FollowupState
from agent.graph.nodes.report import report
from agent.wiring import build_services
from sandbox.stack import SandboxStack
from tests.conftest import RunningService
from tests.sample import arize_alert


def in_thread(sandbox: SandboxStack, ts: str) -> list[dict[str, Any]]:
    messages = sandbox.slack.snapshot()["messages"]
    return [m for m in messages if ts in (m["ts"], m.get("thread_ts"))]


def test_the_summary_and_its_note_are_posted_once_whatever_the_resumes(
    service: RunningService, sandbox: SandboxStack
) -> None:
    done = service.wait_alert(service.post_alert(arize_alert()).json()["alert_id"])
    assert done["incident_run_state"] == "completed"
    services = build_services(service.settings)
    runner = services.runner(connections=1)
    state: Any = runner.state(uuid.UUID(done["incident_id"]))
    ts = state["report"]["ts"]
    notes = len(sandbox.pagerduty.snapshot()["notes"])
    assert len(in_thread(sandbox, ts)) == 1 and notes >= 1

    again = [report(state, Runtime(context=runner.context)) for _ in range(2)]

    assert [a["report"]["ts"] for a in again] == [ts, ts]
    assert len(in_thread(sandbox, ts)) == 1
    assert len(sandbox.pagerduty.snapshot()["notes"]) == notes


def test_a_follow_up_reply_is_posted_once_per_step(
    service: RunningService, sandbox: SandboxStack
) -> None:
    done = service.wait_alert(service.post_alert(arize_alert()).json()["alert_id"])
    services = build_services(service.settings)
    runner = services.runner(connections=1)
    run: Any = runner.state(uuid.UUID(done["incident_id"]))
    ts = run["report"]["ts"]
    state: FollowupState = {
        "incident_id": done["incident_id"],
        "kind": "resolve",
        "incident": {"slack_channel": run["report"]["channel"], "slack_thread_ts": ts},
        "run": run,
        "step": f"{done['incident_id']}:followup:resolve",
    }

    for _ in range(3):
        reply(runner.context, state, "Resolved: <!channel> the monitor is healthy again.")

    replies = [m for m in in_thread(sandbox, ts) if m.get("thread_ts") == ts]
    assert [m["text"] for m in replies] == [
        "Resolved: &lt;!channel&gt; the monitor is healthy again."
    ]
