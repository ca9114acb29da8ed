"""The one assembly point: `build_services` makes the service's parts; the rest receive them.

The API, the worker processes, the intake's writer process and the CLI each call it once at
start-up. Nothing else creates the engine, the audit log, the adapters, the catalog, the runbooks
or the graph runner.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from agent.adapters.signer import signer_factory
from agent.settings import Settings
from agent.store.audit_log import AuditLog, make_audit
from agent.store.db import make_engine
from agent.telemetry import metrics
from audit.sqltypes import utcnow
from runbooks.catalog import Catalog, load_catalog
from runbooks.library import SHIPPED_RUNBOOKS, load_runbooks
from runbooks.schema import Runbook
from tools.retry import add_retry_hook

if TYPE_CHECKING:
    # Imported where used: they bring every SDK, and the intake's writer process (which needs
    # only the engine and the audit log) must start in a moment.
    from agent.adapters.factory import Adapters
    from agent.graph.runner import GraphRunner
    from agent.graph.state import RunContext

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Services:
    """The service's parts, built once by `build_services` and handed to whoever needs them.

    The catalog, the runbooks and the adapters are read on first use, so a command that needs
    only the database (`remediator db upgrade`, the intake's writer process) neither pays for
    them nor fails on a catalog it does not use.
    """

    settings: Settings
    clock: Clock
    engine: Engine
    audit: AuditLog
    """The audit chain's writer, always with the settings' redactor."""
    env: Mapping[str, str]
    """Where the catalog's secrets and the AWS credentials are read."""

    @cached_property
    def catalog(self) -> Catalog | None:
        """Return the service catalog (REMEDIATOR_CATALOG_FILE), when one is configured."""
        return load_catalog(self.settings.catalog_file) if self.settings.catalog_file else None

    @cached_property
    def runbooks(self) -> list[Runbook]:
        """Return the runbooks (REMEDIATOR_RUNBOOKS_DIR, else the shipped ones).

        Checked against the catalog: a service, model, failover target or approver a runbook
        names that the catalog lacks raises ConfigError listing them all.
        """
        return load_runbooks(self.settings.runbooks_dir or SHIPPED_RUNBOOKS, self.catalog)

    @cached_property
    def adapters(self) -> Adapters:
        """Return the adapters the settings and the catalog configure (the one factory)."""
        from agent.adapters.factory import build_adapters

        return build_adapters(self.settings, self.catalog, self.env)

    def run_context(self) -> RunContext:
        """Return what graph runs are given: settings, adapters, runbooks, audit log, clock."""
        from agent.graph.state import RunContext

        return RunContext(
            settings=self.settings,
            engine=self.engine,
            tools=self.adapters,
            audit=self.audit,
            now=self.clock,
            runbooks=self.runbooks,
        )

    def runner(self, *, connections: int = 4) -> GraphRunner:
        """Return the graph runner, its adapters warmed up and its checkpoint tables created.

        `connections` bounds the PostgreSQL checkpointer's pool (one per worker loop is enough).
        """
        from agent.graph.runner import GraphRunner, make_checkpointer

        context = self.run_context()
        self.adapters.warm_up()
        return GraphRunner(context, make_checkpointer(self.settings, connections=connections))


def build_services(
    settings: Settings, clock: Clock = utcnow, *, env: Mapping[str, str] = os.environ
) -> Services:
    """Create the engine and the audit log; the catalog, runbooks and adapters follow on use.

    `env` is where the catalog's secrets and the AWS credentials are read (the process
    environment by default); a harness passes its own instead of changing the process's.
    """
    add_retry_hook(metrics.count_outgoing_retry)  # the adapters' retries, counted here
    return Services(
        settings=settings,
        clock=clock,
        engine=make_engine(settings.database_url),
        audit=make_audit(settings, clock, signer_factory(settings, env)),
        env=env,
    )
