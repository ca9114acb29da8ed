"""Record deployments and find the ones near a breach."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from agent.changes.models import Deployment, DeploymentIn
from agent.changes.scope import BreachScope, out_of_scope
from agent.store.audit_log import AuditLog

PIPELINE_ACTOR = "ci/cd"


PROMPT_SERVING_LABELS = frozenset({"production"})
"""A prompt version event is a suspect change only when it moves one of these labels onto a
version: a `prompt.version.labeled` to `production`. Other prompt events (a version created,
a label removed, another label) are recorded and listed, never suspects."""


def record_deployment(
    *,
    session: Session,
    audit: AuditLog,
    change: DeploymentIn,
    prompt_name: str | None = None,
    event: str | None = None,
    default_actor: str = PIPELINE_ACTOR,
) -> Deployment:
    """Store a deployment and its audit event in the caller's transaction.

    `prompt_name` and `event` are set for changes reported by a system rather than a pipeline
    (an Arize prompt version event); `default_actor` is who the audit names when the change
    does not say.
    """
    now = audit.now()
    deployment = Deployment(
        **change.model_dump(exclude={"deployed_at"}),
        prompt_name=prompt_name,
        event=event,
        received_at=now,
        deployed_at=change.deployed_at or now,
    )
    session.add(deployment)
    session.flush()
    extra = {"prompt_name": prompt_name, "event": event}
    audit.record(
        session,
        "deployment.recorded",
        {
            "summary": _summary(change, event),
            "deployment_id": str(deployment.id),
            **change.model_dump(mode="json", exclude_none=True),
            **{k: v for k, v in extra.items() if v is not None},
        },
        actor=change.actor or default_actor,
    )
    return deployment


def _summary(change: DeploymentIn, event: str | None) -> str:
    by = f" by {change.actor}" if change.actor else ""
    if change.kind == "prompt" and change.prompt_id and event:
        label = f" label {change.label}" if change.label else ""
        return (
            f"prompt {change.prompt_id} version {change.version} {event.rsplit('.', 1)[-1]}"
            f"{label} (service {change.service}){by}"
        )
    return f"{change.kind} {change.version} deployed to {change.service}{by}"


def previous_prompt_version(
    *, session: Session, prompt_id: str, label: str, version: str
) -> str | None:
    """Return the version that last held `label` of this prompt before `version`, if recorded.

    Arize moves a label with a `prompt.version.unlabeled` of the old version and a `labeled` of
    the new one; whichever of them was recorded last names the old version.
    """
    query = (
        select(Deployment.version)
        .where(
            col(Deployment.kind) == "prompt",
            col(Deployment.prompt_id) == prompt_id,
            col(Deployment.label) == label,
            col(Deployment.version) != version,
        )
        .order_by(col(Deployment.deployed_at).desc(), col(Deployment.received_at).desc())
        .limit(1)
    )
    return session.exec(query).first()


def is_suspect_kind(deployment: Deployment) -> bool:
    """Tell whether a recorded change can change what a service serves (see
    PROMPT_SERVING_LABELS); every deployment from CI/CD can."""
    if deployment.kind != "prompt" or deployment.event is None:
        return True
    return (
        deployment.event == "prompt.version.labeled"
        and (deployment.label or "").casefold() in PROMPT_SERVING_LABELS
    )


def deployments_near(
    *,
    session: Session,
    scope: BreachScope,
    around: datetime,
    before: timedelta,
    after: timedelta = timedelta(minutes=5),
) -> list[Deployment]:
    """Return the deployments from `before` until `after` the moment that could have caused a
    breach in `scope` (`agent.changes.scope`): its service's (its model's when it names no
    service), in its environment, region and model when the deployment names them."""
    query = select(Deployment).where(
        col(Deployment.deployed_at) >= around - before,
        col(Deployment.deployed_at) <= around + after,
    )
    if scope.service:
        query = query.where(col(Deployment.service) == scope.service)
    elif scope.model_id:
        query = query.where(col(Deployment.model_id) == scope.model_id)
    else:
        return []
    if scope.environment:
        query = query.where(
            or_(
                col(Deployment.environment).is_(None),
                func.lower(col(Deployment.environment)) == scope.environment.casefold(),
            )
        )
    found = session.exec(query.order_by(col(Deployment.deployed_at).desc())).all()
    return [d for d in found if is_suspect_kind(d) and out_of_scope(d.model_dump(), scope) is None]
