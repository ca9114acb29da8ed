"""Record deployments and find the ones near a breach."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from agent.changes.models import Deployment, DeploymentIn
from agent.changes.scope import BreachScope, out_of_scope
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
    return [d for d in found if out_of_scope(d.model_dump(), scope) is None]
