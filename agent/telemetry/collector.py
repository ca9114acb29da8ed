"""What a scrape returns: this process's metrics plus what is read from the database.

Incidents by state and the approval waits are read at scrape time, so every replica reports the
same, correct numbers whichever process (an API replica, a worker, `remediator approve`)
changed them.
"""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from agent.approvals.models import Approval, ApprovalStatus
from agent.incidents.models import Incident, IncidentStatus, RunState

log = structlog.get_logger(__name__)


class IncidentsCollector(Collector):
    """Count incidents by status and run state at scrape time: every replica tells the truth."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        """Yield `remediator_incidents{status, run_state}`; nothing when the database is down."""
        try:
            with Session(self._engine) as session:
                rows = session.exec(
                    select(Incident.status, Incident.run_state, func.count()).group_by(
                        col(Incident.status), col(Incident.run_state)
                    )
                ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics.incidents_unavailable", error=type(exc).__name__)
            return
        counts = {(str(status), str(run)): n for status, run, n in rows}
        gauge = GaugeMetricFamily(
            "remediator_incidents",
            "Incidents in the database by status (open, resolved) and run state; every replica "
            "reports the same numbers, so aggregate with max, not sum.",
            labels=["status", "run_state"],
        )
        # Every combination, zeros included, so a rule on a missing series never goes quiet.
        for status in IncidentStatus:
            for run in RunState:
                key = (status.value, run.value)
                gauge.add_metric(list(key), counts.get(key, 0))
        yield gauge


APPROVAL_WAIT_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class ApprovalWaitsCollector(Collector):
    """The seconds from each approval request to its decision, read from the database.

    A decision is counted whoever made it: a Slack click on any replica, `POST /approvals/{id}`,
    `remediator approve` in a process nobody scrapes, or the expiry of the request.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        """Yield `remediator_approval_wait_seconds{outcome}`; nothing when the database is down."""
        try:
            with Session(self._engine) as session:
                rows = session.exec(
                    select(Approval.status, Approval.requested_at, Approval.decided_at).where(
                        col(Approval.status) != ApprovalStatus.pending,
                        col(Approval.decided_at).is_not(None),
                    )
                ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics.approvals_unavailable", error=type(exc).__name__)
            return
        waits: dict[str, list[float]] = {
            str(s): [] for s in ApprovalStatus if s != ApprovalStatus.pending
        }
        for status, requested_at, decided_at in rows:
            assert decided_at is not None  # selected so
            waits.setdefault(str(status), []).append(
                max(0.0, (decided_at - requested_at).total_seconds())
            )
        family = HistogramMetricFamily(
            "remediator_approval_wait_seconds",
            "Seconds from an approval request to its decision, by outcome (approved, rejected, "
            "expired, cancelled), read from the database: decisions of every process count, "
            "and every replica reports the same numbers (aggregate with max, not sum).",
            labels=["outcome"],
        )
        for outcome, seconds in waits.items():
            buckets = [
                (str(bound), float(sum(1 for s in seconds if s <= bound)))
                for bound in APPROVAL_WAIT_BUCKETS
            ]
            buckets.append(("+Inf", float(len(seconds))))
            family.add_metric([outcome], buckets, sum_value=sum(seconds))
        yield family


class ScrapeCollector(Collector):
    """The process's default registry followed by the database-backed metrics."""

    def __init__(self, engine: Engine | None) -> None:
        self._database: list[Collector] = (
            [IncidentsCollector(engine), ApprovalWaitsCollector(engine)]
            if engine is not None
            else []
        )

    def collect(self) -> Iterator[Metric]:
        """Yield every metric one scrape shows."""
        yield from REGISTRY.collect()
        for collector in self._database:
            yield from collector.collect()
