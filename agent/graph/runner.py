"""Run (or resume) one incident's graph on its thread, checkpointing after every step.

The follow-ups of an incident (a repeat notice, the resolution, each decided failback) run the
follow-up graph, with the same checkpointer, each on a thread of its own (`thread_id`).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from agent.alerts.models import Breach
from agent.approvals.service import close_if_due, unsettled_failbacks
from agent.failovers.service import holding_of
from agent.graph.builder import ACT_NODE, AFTER_ACTING, build_graph
from agent.graph.followup.builder import build_followup_graph, thread_id
from agent.graph.followup.effects import next_failback_moment
from agent.graph.followup.state import FollowupKind, FollowupState, incident_view
from agent.graph.state import RunContext
from agent.incidents.models import Incident
from agent.settings import Settings
from agent.store.db import WriteTurn, session_scope, take_turn, write_turn

# Any fixed number: the advisory lock that lets one replica at a time create the checkpoint tables.
CHECKPOINT_SETUP_LOCK = 0x52454D31


def make_checkpointer(settings: Settings, *, connections: int = 4) -> BaseCheckpointSaver[Any]:
    """Return the checkpointer for the configured database, its tables created if missing.

    SQLite: the same file. PostgreSQL: LangGraph's `PostgresSaver` on a pool of up to
    `connections` connections (each call borrows one, so one per worker thread is enough).
    """
    if settings.database_url.startswith("postgresql"):
        return _postgres_checkpointer(settings.database_url, connections)
    path = settings.sqlite_path
    if path is None:
        raise ValueError(
            "graph checkpoints are stored in SQLite or PostgreSQL: set REMEDIATOR_DATABASE_URL "
            "to a sqlite:/// or postgresql+psycopg:// URL"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    saver = TurnTakingSqliteSaver(connection, turn=write_turn(str(path)))
    saver.setup()
    return saver


class TurnTakingSqliteSaver(SqliteSaver):
    """LangGraph's `SqliteSaver`, its writes queued with the engine's in this process.

    The checkpoints share the database file with everything else the service writes: without
    the queue, a checkpoint and an audit event meeting at SQLite's lock would each sleep-poll
    for it (see `agent.store.db.write_turn`).
    """

    def __init__(self, conn: sqlite3.Connection, *, turn: WriteTurn) -> None:
        super().__init__(conn)
        self._turn = turn

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """Return the saver's cursor; one that writes waits for this process's turn first."""
        if not transaction:
            with super().cursor(transaction=False) as cur:
                yield cur
            return
        take_turn(self._turn, None)
        try:
            with super().cursor(transaction=True) as cur:
                yield cur
        finally:
            self._turn.release()


def _postgres_checkpointer(database_url: str, connections: int) -> BaseCheckpointSaver[Any]:
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool
    from sqlalchemy import make_url

    # libpq takes the URL without SQLAlchemy's "+psycopg" driver suffix.
    conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    # PostgresSaver needs autocommit (its set-up DDL must persist) and dict rows (it reads
    # columns by name); no prepared statements, so a pooler such as PgBouncer may sit between.
    pool: ConnectionPool[Any] = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=max(connections, 1),
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        open=True,
    )
    saver = PostgresSaver(pool)
    with Connection.connect(conninfo, autocommit=True) as lock:
        # One replica at a time creates the tables. Poll, never wait in a statement: a waiting
        # statement holds a snapshot, and the set-up's CREATE INDEX CONCURRENTLY waits for every
        # older snapshot, so the lock's holder would wait for its waiter, forever.
        while True:
            row = lock.execute("SELECT pg_try_advisory_lock(%s)", (CHECKPOINT_SETUP_LOCK,))
            if row.fetchone() == (True,):
                break
            time.sleep(0.2)
        try:
            saver.setup()
        finally:
            lock.execute("SELECT pg_advisory_unlock(%s)", (CHECKPOINT_SETUP_LOCK,))
    return saver


@dataclass(frozen=True)
class RunOutcome:
    """Where a run stopped: at its end, or paused for an approval until `waiting_until`."""

    state: dict[str, Any]
    waiting_until: datetime | None = None
    """When the pending approval expires (the run is due again then, or on a decision)."""
    yielded: bool = False
    """The run stopped after its first actions (`yield_after_acting`); the rest is due now."""


class GraphRunner:
    """Drive incident runs to the end; a run interrupted by a crash continues where it stopped."""

    def __init__(self, context: RunContext, checkpointer: BaseCheckpointSaver[Any]) -> None:
        self._context = context
        self._graph = build_graph(checkpointer)
        self._followup = build_followup_graph(checkpointer)

    @property
    def context(self) -> RunContext:
        """Return what the runs are given: settings, adapters, policies, the audit log."""
        return self._context

    def state(self, incident_id: uuid.UUID) -> dict[str, Any]:
        """Return the incident run's last checkpointed state (empty before its first step)."""
        config: dict[str, Any] = {"configurable": {"thread_id": str(incident_id)}}
        return dict(self._graph.get_state(config).values)

    def finished(self, incident_id: uuid.UUID) -> bool:
        """Tell whether the incident's run has reached its end."""
        config: dict[str, Any] = {"configurable": {"thread_id": str(incident_id)}}
        snapshot = self._graph.get_state(config)
        return bool(snapshot.values) and not snapshot.next

    def acted(self, incident_id: uuid.UUID) -> bool:
        """Tell whether the incident's run is past its first actions (what is left reports,
        verifies or waits for an approval)."""
        config: dict[str, Any] = {"configurable": {"thread_id": str(incident_id)}}
        snapshot = self._graph.get_state(config)
        return bool(snapshot.values) and bool(set(snapshot.next) & AFTER_ACTING)

    def run(
        self, incident_id: uuid.UUID, breach: Breach, *, yield_after_acting: bool = False
    ) -> RunOutcome:
        """Start the run of a new incident, or resume its unfinished or paused run.

        A run paused for an approval is resumed whenever it is claimed: the `approve` node reads
        the decision (or the expiry) from the database and pauses again if there is none yet.

        `yield_after_acting`: a new run stops once its first actions are taken (the page sent),
        checkpointed, and says so (`yielded`); what remains (verify, the report) is resumed
        like any unfinished run. A worker queues that remainder behind the runs already
        waiting, so in a storm every incident is paged before any is reported.
        """
        config: dict[str, Any] = {"configurable": {"thread_id": str(incident_id)}}
        snapshot = self._graph.get_state(config)
        if snapshot.values and not snapshot.next:
            return RunOutcome(dict(snapshot.values))
        start: Any = None
        stop_after: list[str] | None = None
        if snapshot.interrupts:
            start = Command(resume={"resumed_at": self._context.now().isoformat()})
        elif not snapshot.values:
            start = {"incident_id": str(incident_id), "breach": breach.model_dump(mode="json")}
            stop_after = [ACT_NODE] if yield_after_acting else None
        result: dict[str, Any] = self._graph.invoke(
            start, config, context=self._context, durability="sync", interrupt_after=stop_after
        )
        paused = self._graph.get_state(config)
        if paused.interrupts:
            wake = min(
                datetime.fromisoformat(str(i.value["expires_at"])) for i in paused.interrupts
            )
            return RunOutcome(dict(paused.values), wake)
        if paused.next:  # stopped after acting (only `stop_after` stops a run short)
            return RunOutcome(dict(paused.values), yielded=True)
        return RunOutcome(result)

    def renotify(self, incident: Incident, breach: Breach, *, alert_id: uuid.UUID) -> None:
        """Notify again that the breach goes on: the same pages (same dedup key), a reply.

        One follow-up per alert that made the notice due (`alert_id`).
        """
        start = self._followup_start(incident, "renotify")
        start["breach"] = breach.model_dump(mode="json")
        self._follow(thread_id(incident.id, "renotify", str(alert_id)), start)

    def resolve(self, incident: Incident) -> datetime | None:
        """Resolve the incident's pages, fail back per the runbook, and say so in the thread.

        Return when a failback that waits for approval needs a worker (None when none waits).
        """
        self._follow(thread_id(incident.id, "resolve"), self._followup_start(incident, "resolve"))
        return next_failback_moment(self._context, incident.id)

    def settle(self, incident: Incident) -> datetime | None:
        """Carry out (or drop) each decided failback of a resolved incident, exactly once, and
        try again the held failbacks that are due.

        Return when the next still-pending request expires or the next held failback is due
        (None when nothing is left waiting).
        """
        with session_scope(self._context.engine) as session:
            requests = unsettled_failbacks(session=session, incident_id=incident.id)
            for approval in requests:
                close_if_due(session=session, audit=self._context.audit, approval=approval)
            decided = [approval.id for approval in requests if approval.decided]
        start = self._followup_start(incident, "settle")
        for approval_id in decided:
            thread = thread_id(incident.id, "settle", str(approval_id))
            self._follow(thread, {**start, "approval_id": str(approval_id)})
        self._retry_held(incident)
        return next_failback_moment(self._context, incident.id)

    def _retry_held(self, incident: Incident) -> None:
        """Try the incident's held failbacks whose retry is due (their schedule, or a wake)."""
        now = self._context.now()
        with session_scope(self._context.engine) as session:
            due = [
                f
                for f in holding_of(session=session, incident_id=incident.id)
                if f.next_try_at is not None and f.next_try_at <= now
            ]
            attempt = sum(f.attempts for f in due)
        if due:
            thread = thread_id(incident.id, "retry", str(attempt))
            self._follow(thread, self._followup_start(incident, "retry"))

    def _followup_start(self, incident: Incident, kind: FollowupKind) -> FollowupState:
        return {
            "incident_id": str(incident.id),
            "kind": kind,
            "incident": incident_view(incident),
            "run": self.state(incident.id),
        }

    def _follow(self, thread: str, start: FollowupState) -> None:
        """Run a follow-up on its thread: from the start, from its last checkpoint, or not at all.

        A thread with a checkpoint continues from it and ignores `start` (what the follow-up was
        given the first time stays what it works with); a finished one is not run again.
        """
        config: dict[str, Any] = {"configurable": {"thread_id": thread}}
        snapshot = self._followup.get_state(config)
        if snapshot.values and not snapshot.next:
            return
        self._followup.invoke(
            {**start, "step": thread} if not snapshot.next else None,
            config,
            context=self._context,
            durability="sync",
        )
