"""Record deployments and find the ones near a breach."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import Session, col, select

from agent.changes.models import Deployment, DeploymentIn
from agent.store.audit_log import AuditLog

PIPELINE_ACTOR = "ci/cd"


def record_deployment(*, session: Session, audit: AuditLog, change: DeploymentIn) -> Deployment:
    """Store a deployment and its audit event in the caller's transaction."""
    now = audit.now()
    deployment = Deployment(
        **change.model_dump(exclude={"deployed_at"}),
        received_at=now,
        deployed_at=change.deployed_at or now,
    )
    session.add(deployment)
    session.flush()
    audit.record(
        session,
        "deployment.recorded",
        {
            "summary": f"{change.kind} {change.version} deployed to {change.service}"
            + (f" by {change.actor}" if change.actor else ""),
            "deployment_id": str(deployment.id),
            **change.model_dump(mode="json", exclude_none=True),
        },
        actor=change.actor or PIPELINE_ACTOR,
    )
    return deployment


def deployments_near(
    *,
    session: Session,
    service: str | None,
    model_id: str | None,
    around: datetime,
    before: timedelta,
    after: timedelta = timedelta(minutes=5),
) -> Sequence[Deployment]:
    """Return the service's (or model's) deployments from `before` until `after` the moment."""
    query = select(Deployment).where(
        col(Deployment.deployed_at) >= around - before,
        col(Deployment.deployed_at) <= around + after,
    )
    owners = []
    if service:
        owners.append(col(Deployment.service) == service)
    if model_id:
        owners.append(col(Deployment.model_id) == model_id)
    if not owners:
        return []
    return session.exec(
        query.where(or_(*owners)).order_by(col(Deployment.deployed_at).desc())
    ).all()
