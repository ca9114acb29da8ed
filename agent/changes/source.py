"""The `changes` probe: recent deployments of the breached service, as a tool result."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from agent.changes.models import Deployment
from agent.changes.scope import BreachScope
from agent.changes.service import deployments_near
from tools.result import Stopwatch, ToolResult, ToolStatus


class DeploymentChangeSource:
    """List the deployments recorded through POST /events/deployments near a breach."""

    name = "changes"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def check(self) -> tuple[bool, str]:
        """The store is our own database: it answers when the service does."""
        return True, "deployments recorded through POST /events/deployments"

    def recent(
        self,
        *,
        service: str | None,
        model_id: str | None,
        around: datetime,
        window_minutes: int,
        environment: str | None = None,
        region: str | None = None,
    ) -> ToolResult:
        """Return the deployments from `window_minutes` before the breach until just after it
        that could have caused it: of its service, in its environment (and region, model)."""
        scope = BreachScope(
            service=service, model_id=model_id, environment=environment, region=region
        )
        asked = {
            "service": service,
            "model_id": model_id,
            "environment": environment,
            "region": region,
            "around": around.isoformat(),
            "window_minutes": window_minutes,
        }
        watch = Stopwatch()
        try:
            with Session(self._engine) as session:
                found = deployments_near(
                    session=session,
                    scope=scope,
                    around=around,
                    before=timedelta(minutes=window_minutes),
                )
                rows = [
                    {
                        "kind": d.kind,
                        "version": d.version,
                        "previous_version": d.previous_version,
                        "service": d.service,
                        "model_id": d.model_id,
                        "environment": d.environment,
                        "region": d.region,
                        "actor": d.actor,
                        "deployed_at": d.deployed_at.isoformat(),
                        "minutes_before_breach": round(
                            (around - d.deployed_at).total_seconds() / 60, 1
                        ),
                        **_prompt_fields(d),
                    }
                    for d in found
                ]
        except SQLAlchemyError as exc:
            return ToolResult(
                tool=self.name,
                status=ToolStatus.error,
                asked=asked,
                summary="could not read deployments",
                error=str(exc)[:300],
                latency_ms=watch.ms,
            )
        if not rows:
            return ToolResult(
                tool=self.name,
                status=ToolStatus.no_data,
                asked=asked,
                summary=f"no deployment in the {window_minutes} min before the breach"
                + (f" in {environment}" if environment else ""),
                latency_ms=watch.ms,
            )
        latest = rows[0]
        return ToolResult(
            tool=self.name,
            status=ToolStatus.ok,
            asked=asked,
            latency_ms=watch.ms,
            evidence={"deployments": rows},
            summary=f"{len(rows)} deployment(s) in the window; latest {latest['kind']} "
            f"{latest['version']} {latest['minutes_before_breach']} min before the breach",
        )


def _prompt_fields(deployment: Deployment) -> dict[str, str | None]:
    """The fields of a prompt version change (an Arize event): the prompt, its label, the event."""
    if deployment.prompt_id is None and deployment.label is None:
        return {}
    return {
        "prompt_id": deployment.prompt_id,
        "prompt_name": deployment.prompt_name,
        "label": deployment.label,
        "event": deployment.event,
    }
