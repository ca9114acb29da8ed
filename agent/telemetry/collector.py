"""What a scrape returns: this process's metrics plus incidents by state, read from the database."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

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


class ScrapeCollector(Collector):
    """The process's default registry followed by the database-backed incidents gauge."""

    def __init__(self, engine: Engine | None) -> None:
        self._incidents = IncidentsCollector(engine) if engine is not None else None

    def collect(self) -> Iterator[Metric]:
        """Yield every metric one scrape shows."""
        yield from REGISTRY.collect()
        if self._incidents is not None:
            yield from self._incidents.collect()
