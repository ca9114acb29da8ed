"""Where decisions arrive: Slack button clicks, and `POST /approvals/{id}` without Slack.

Both only record the decision (one short transaction) and wake the run; a worker resumes it, so
Slack gets its answer well within its 3 s.
"""

from __future__ import annotations

import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from agent.api.deps import AppState, AppStateDep, SessionDep, bearer_token, read_bounded
from agent.approvals.message import APPROVE_ACTION, REJECT_ACTION
from agent.approvals.models import Approval, ApprovalRead
from agent.approvals.service import Decision, Verdict, decide
from agent.approvals.slack_signing import check_slack_signature
from agent.store.db import session_scope

router = APIRouter(tags=["approvals"])


class SlackAnswer(BaseModel):
    """What the service answers Slack: the outcome of the click (Slack shows nothing of it)."""

    ok: bool = True
    outcome: str
    reason: str


class DecisionIn(BaseModel):
    """A decision given without Slack, by an approver named by their Slack user id."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    decision: Literal["approve", "reject"]
    as_user: str = Field(alias="as", min_length=1, max_length=200, description="Slack user id.")
    digest: str | None = Field(
        None, description="The action digest shown with the request; checked when given."
    )
    reason: str | None = Field(None, max_length=2000)


class DecisionOut(BaseModel):
    """The outcome of a decision and the request as it now stands."""

    outcome: str
    reason: str
    approval: ApprovalRead | None = None


@dataclass(frozen=True)
class Click:
    """One button click on an approval request."""

    user: str
    decision: Decision
    approval_id: uuid.UUID
    digest: str


@router.post(
    "/slack/interactions",
    response_model=SlackAnswer,
    responses={400: {}, 401: {}, 403: {}, 413: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"payload": {"type": "string"}}}
                }
            },
        }
    },
)
async def slack_interactions(request: Request, app_state: AppStateDep) -> JSONResponse:
    """Take an Approve/Reject click: signature first, on the raw body, then one decision."""
    secret = app_state.settings.slack_signing_secret
    if secret is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Slack interactions are off: set REMEDIATOR_SLACK_SIGNING_SECRET",
        )
    body = await read_bounded(request, app_state.settings.max_body_bytes)
    problem = check_slack_signature(
        secret.get_secret_value(),
        body,
        request.headers,
        now=lambda: app_state.audit.now().timestamp(),
    )
    if problem is not None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, problem)
    click = parse_click(body)
    if click is None:
        return JSONResponse({"ok": True, "outcome": "ignored", "reason": "not an approval button"})
    retry = request.headers.get("x-slack-retry-num")
    verdict = await run_in_threadpool(
        _decide,
        app_state,
        click.approval_id,
        click.user,
        click.decision,
        click.digest,
        "slack",
        retry,
    )
    # Slack shows an error to the user for anything but 200, so refusals are 200 too; each
    # one is in the audit trail with the Slack user id.
    return JSONResponse({"ok": True, "outcome": verdict.outcome, "reason": verdict.reason})


def parse_click(body: bytes) -> Click | None:
    """Read a block_actions payload; None for interactions that are not our buttons."""
    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    if "payload" not in form:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "form field `payload` is missing")
    try:
        payload = json.loads(form["payload"][-1])
    except json.JSONDecodeError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"payload is not JSON: {exc.msg}"
        ) from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions")
    listed = actions if isinstance(actions, list) else []
    ours = [
        a
        for a in listed
        if isinstance(a, dict) and a.get("action_id") in (APPROVE_ACTION, REJECT_ACTION)
    ]
    if not ours:
        return None
    user = payload.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "payload.user.id is missing")
    try:
        value = json.loads(str(ours[0].get("value", "")))
        approval_id = uuid.UUID(str(value["approval_id"]))
        digest = str(value["digest"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "the button's value is not an approval id and digest"
        ) from None
    decision: Decision = "approve" if ours[0]["action_id"] == APPROVE_ACTION else "reject"
    return Click(user=user_id, decision=decision, approval_id=approval_id, digest=digest)


def require_approver_token(request: Request, app_state: AppStateDep) -> None:
    """Let the request through only with the approver token (compared in constant time)."""
    expected = app_state.settings.approver_token
    if expected is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "approvals over HTTP are off: set REMEDIATOR_APPROVER_TOKEN",
        )
    given = bearer_token(request).encode()
    if not hmac.compare_digest(given, expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid approver token",
            headers={"WWW-Authenticate": "Bearer"},
        )


ApproverAuth = Depends(require_approver_token)
REFUSALS = {
    "no such approval request": status.HTTP_404_NOT_FOUND,
}


@router.post(
    "/approvals/{approval_id}",
    response_model=DecisionOut,
    responses={401: {}, 403: {}, 404: {}, 409: {}, 422: {}},
    dependencies=[ApproverAuth],
)
async def post_decision(
    approval_id: uuid.UUID, decision: DecisionIn, app_state: AppStateDep
) -> JSONResponse:
    """Approve or reject as a listed approver; the same checks as a Slack click."""
    verdict = await run_in_threadpool(
        _decide,
        app_state,
        approval_id,
        decision.as_user,
        decision.decision,
        decision.digest,
        "api",
        None,
        decision.reason,
    )
    code = status.HTTP_200_OK
    if verdict.outcome == "refused":
        code = REFUSALS.get(verdict.reason, status.HTTP_409_CONFLICT)
        if "is not an approver" in verdict.reason:
            code = status.HTTP_403_FORBIDDEN
    answer = DecisionOut(
        outcome=verdict.outcome, reason=verdict.reason, approval=_shown(verdict.approval)
    )
    return JSONResponse(status_code=code, content=answer.model_dump(mode="json"))


@router.get(
    "/approvals/{approval_id}",
    response_model=ApprovalRead,
    responses={401: {}, 403: {}, 404: {}},
    dependencies=[ApproverAuth],
)
def read_approval(approval_id: uuid.UUID, session: SessionDep) -> ApprovalRead:
    """Show one approval request: its action, digest, approvers, status and decision."""
    approval = session.get(Approval, approval_id)
    if approval is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no approval {approval_id}")
    return ApprovalRead.model_validate(approval, from_attributes=True)


def _shown(approval: Approval | None) -> ApprovalRead | None:
    return ApprovalRead.model_validate(approval, from_attributes=True) if approval else None


def _decide(
    app_state: AppState,
    approval_id: uuid.UUID,
    user: str,
    decision: Decision,
    digest: str | None,
    via: str,
    retry: str | None,
    reason: str | None = None,
) -> Verdict:
    with session_scope(app_state.engine) as session:
        verdict = decide(
            session=session,
            audit=app_state.audit,
            approval_id=approval_id,
            user=user,
            decision=decision,
            digest=digest,
            via=via,
            members=app_state.group_members,
            retry=retry,
            reason=reason,
        )
        if verdict.approval is not None:
            session.refresh(verdict.approval)
            session.expunge(verdict.approval)
    if verdict.changed and app_state.wake_worker is not None:
        app_state.wake_worker()
    return verdict
