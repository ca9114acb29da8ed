"""An approval may land on any API replica; whichever worker is free resumes the run (PostgreSQL).

Two `serve --no-worker` replicas and two `worker` processes share one database. The alert goes to
replica A; the run pauses for approval with its checkpoint in PostgreSQL; the click goes to
replica B; a worker resumes the run from that checkpoint, and the failover happens once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from agent.approvals.message import APPROVE_ACTION
from agent.approvals.models import Approval
from agent.incidents.models import Incident
from sandbox.slack import click, interaction
from sandbox.stack import DEMO_SERVICE, SandboxStack
from tests.agent.test_approvals import APPROVER, RUNBOOK, SIGNING_SECRET, request_message
from tests.fleet import Fleet, wait_for
from tests.sample import arize_alert

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, catalog_world: SandboxStack) -> Iterator[Fleet]:
    catalog_world.gateway.failing_regions["eu-west-1"] = 503
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "approval.yaml").write_text(
        RUNBOOK.format(ttl=600, approvers=f"[{APPROVER}]", failback="auto")
    )
    settings = {
        "REMEDIATOR_RUNBOOKS_DIR": str(runbooks),
        "REMEDIATOR_CATALOG_FILE": str(catalog_world.catalog_path),  # type: ignore[attr-defined]
        "REMEDIATOR_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "REMEDIATOR_WORKER_LEASE_SECONDS": "5",
        **catalog_world.catalog_env(),
    }
    with Fleet(tmp_path, postgres_url, catalog_world, **settings) as running:
        yield running


def test_a_click_on_replica_b_resumes_the_run_started_through_replica_a(
    fleet: Fleet, catalog_world: SandboxStack
) -> None:
    replica_a = fleet.start_api("api-a")
    replica_b = fleet.start_api("api-b")
    fleet.start_worker("worker-1")
    fleet.start_worker("worker-2")
    fleet.wait_started()

    answer = fleet.post(replica_a, arize_alert(model_id=DEMO_SERVICE))
    assert answer.status_code == 202, answer.text
    message = request_message(catalog_world)

    def paused() -> uuid.UUID | None:
        with Session(fleet.engine) as session:
            incident = session.exec(select(Incident)).first()
            return incident.id if incident is not None and incident.run_state == "waiting" else None

    incident_id = wait_for(paused, 90, "the run to pause for approval")
    assert catalog_world.gateway.history == []

    clicked = click(
        f"{replica_b}/slack/interactions",
        SIGNING_SECRET,
        interaction(message, APPROVE_ACTION, APPROVER),
    )
    assert clicked.status_code == 200 and clicked.json()["outcome"] == "approved"

    def completed() -> bool:
        with Session(fleet.engine) as session:
            incident = session.get(Incident, incident_id)
            return incident is not None and incident.run_state == "completed"

    wait_for(completed, 90, "the resumed run to complete")
    assert len(catalog_world.gateway.history) == 1
    assert catalog_world.gateway.routes[DEMO_SERVICE]["region"] == "us-east-1"
    kinds = fleet.kinds(incident_id)
    assert kinds.count("approval.approved") == 1
    assert kinds.count("action.started") == 1
    assert kinds.index("approval.approved") < kinds.index("action.started")
    assert fleet.count(Approval, Approval.decided_by == APPROVER) == 1
