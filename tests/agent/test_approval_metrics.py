"""Approval waits are counted from the database: a decision made by `remediator approve` in a
process nobody scrapes shows in the service's /metrics (it was one short)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from agent.approvals.models import Approval, ApprovalStatus
from agent.incidents.models import Incident
from agent.store.db import make_engine, session_scope, upgrade
from agent.telemetry.collector import ScrapeCollector
from audit.sqltypes import utcnow

AUDIT_KEY = "approval-metrics-audit-key-0123456789"


def waits(engine: Engine) -> dict[tuple[str, str, str], float]:
    """Return `remediator_approval_wait_seconds` samples: (sample name, outcome, le) → value."""
    text = generate_latest(ScrapeCollector(engine)).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name == "remediator_approval_wait_seconds":
            for sample in family.samples:
                key = (sample.name, sample.labels["outcome"], sample.labels.get("le", ""))
                found[key] = sample.value
    return found


def seed(engine: Engine, *, requested_seconds_ago: float, status: str = "pending") -> uuid.UUID:
    now = utcnow()
    with session_scope(engine) as session:
        incident = Incident(fingerprint=uuid.uuid4().hex, title="t", monitor_key="m", opened_at=now)
        session.add(incident)
        session.flush()
        approval = Approval(
            incident_id=incident.id,
            action_key=f"{incident.id}/failover/backup-region",
            kind="failover",
            target="backup-region",
            runbook="latency@1",
            digest="0" * 64,
            approvers=["U0ALICE"],
            status=ApprovalStatus(status),
            requested_at=now - timedelta(seconds=requested_seconds_ago),
            expires_at=now + timedelta(minutes=10),
            decided_at=None if status == "pending" else now,
        )
        session.add(approval)
        return approval.id


def test_a_decision_from_another_process_is_in_the_scrape(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = make_engine(url)
    upgrade(engine)
    approval_id = seed(engine, requested_seconds_ago=40)
    before = waits(engine)
    assert before[("remediator_approval_wait_seconds_count", "approved", "")] == 0

    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")}
    env.update(
        REMEDIATOR_ENV="dev",
        REMEDIATOR_DATABASE_URL=url,
        REMEDIATOR_AUDIT_KEY=AUDIT_KEY,
        REMEDIATOR_AUDIT_SIGNING_KEY_FILE=str(tmp_path / "signing.pem"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "agent", "approve", str(approval_id), "--as", "U0ALICE"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    after = waits(engine)
    assert after[("remediator_approval_wait_seconds_count", "approved", "")] == 1
    assert after[("remediator_approval_wait_seconds_bucket", "approved", "30.0")] == 0
    assert after[("remediator_approval_wait_seconds_bucket", "approved", "60.0")] == 1
    assert after[("remediator_approval_wait_seconds_bucket", "approved", "+Inf")] == 1
    assert 40 <= after[("remediator_approval_wait_seconds_sum", "approved", "")] < 120


def test_every_outcome_is_reported_and_pending_ones_are_not(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    seed(engine, requested_seconds_ago=10, status="expired")
    seed(engine, requested_seconds_ago=4000, status="rejected")
    seed(engine, requested_seconds_ago=1)  # pending: no wait yet

    found = waits(engine)

    counts = {
        outcome: value
        for (name, outcome, _), value in found.items()
        if name == "remediator_approval_wait_seconds_count"
    }
    assert counts == {"approved": 0, "rejected": 1, "expired": 1, "cancelled": 0}
    assert found[("remediator_approval_wait_seconds_bucket", "rejected", "3600.0")] == 0
    assert found[("remediator_approval_wait_seconds_bucket", "expired", "15.0")] == 1
