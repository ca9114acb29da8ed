"""Settled: the failback request is marked done with, last, so a retry resumes before this."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime

from agent.approvals.service import mark_settled
from agent.graph.followup.state import FollowupState
from agent.graph.state import RunContext
from agent.store.db import session_scope


def settled(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Mark the failback request settled: no later claim of the incident takes it up again."""
    ctx = runtime.context
    with session_scope(ctx.engine) as session:
        mark_settled(session=session, approval_id=uuid.UUID(state["approval_id"]), now=ctx.now())
    return {}
