"""`remediator doctor`: check every configured integration at once."""

from __future__ import annotations

import typer

from agent.cli.common import catalog_of, load_services


def doctor() -> None:
    """Check every configured integration (settings and catalog) and print a table."""
    from agent.adapters.checks import format_rows, run_checks

    services = load_services(database="none")
    catalog_of(services)  # a broken catalog is named before anything is checked
    rows = run_checks(services.settings, services.adapters)
    typer.echo(format_rows(rows))
    failing = [r for r in rows if not r.ok]
    if failing:
        typer.echo(f"\n{len(failing)} integration(s) failing", err=True)
        raise typer.Exit(1)
