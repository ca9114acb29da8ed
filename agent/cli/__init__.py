"""The `remediator` command, one module per command group; `app` is the entry point."""

from __future__ import annotations

import typer

from agent.cli import approvals, audit, baseline, database, doctor, runbooks, serve

app = typer.Typer(
    help="Incident remediation agent for LLM services (Arize alert webhook).",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(serve.serve)
app.command()(serve.worker)
app.command("approve")(approvals.approve)
app.command("approvals")(approvals.approvals)
app.command()(doctor.doctor)
app.add_typer(database.app, name="db")
app.add_typer(audit.app, name="audit")
app.add_typer(baseline.app, name="baseline")
app.add_typer(runbooks.app, name="runbooks")
