"""Run (or resume) one incident's graph on its thread, checkpointing after every step."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from agent.alerts.models import Breach
from agent.graph.builder import build_graph
from agent.graph.state import RunContext
from agent.settings import Settings


def make_checkpointer(settings: Settings) -> BaseCheckpointSaver[Any]:
    """Return the checkpointer for the configured database (SQLite: the same file)."""
    path = settings.sqlite_path
    if path is None:
        raise ValueError(
            "graph checkpoints are only stored in SQLite for now; "
            "set REMEDIATOR_DATABASE_URL to a sqlite:/// URL"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    saver = SqliteSaver(connection)
    saver.setup()
    return saver


class GraphRunner:
    """Drive incident runs to the end; a run interrupted by a crash continues where it stopped."""

    def __init__(self, context: RunContext, checkpointer: BaseCheckpointSaver[Any]) -> None:
        self._context = context
        self._graph = build_graph(checkpointer)

    @property
    def context(self) -> RunContext:
        """Return what the runs are given: settings, adapters, policies, the audit log."""
        return self._context

    def state(self, incident_id: uuid.UUID) -> dict[str, Any]:
        """Return the incident run's last checkpointed state (empty before its first step)."""
        config: dict[str, Any] = {"configurable": {"thread_id": str(incident_id)}}
        return dict(self._graph.get_state(config).values)

    def run(self, incident_id: uuid.UUID, breach: Breach) -> dict[str, Any]:
        """Start the run of a new incident, or resume its unfinished run; return the final state."""
        config: dict[str, Any] = {"configurable": {"thread_id": str(incident_id)}}
        snapshot = self._graph.get_state(config)
        if snapshot.values and not snapshot.next:
            return dict(snapshot.values)
        initial = None
        if not snapshot.values:
            initial = {"incident_id": str(incident_id), "breach": breach.model_dump(mode="json")}
        result: dict[str, Any] = self._graph.invoke(
            initial, config, context=self._context, durability="sync"
        )
        return result
