"""`remediator runbooks`: check runbooks before the agent loads them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Runbooks: what the agent may do, per diagnosis.", no_args_is_help=True)


@app.command("validate")
def runbooks_validate(
    folder: Annotated[
        Path | None,
        typer.Argument(help="Folder of *.yaml runbooks [default: the shipped runbooks]."),
    ] = None,
) -> None:
    """Check every runbook of a folder: errors name file, line and key; warnings are listed."""
    from runbooks.library import SHIPPED_RUNBOOKS, validate_folder
    from runbooks.loader import ConfigError

    target = folder or SHIPPED_RUNBOOKS
    try:
        runbooks, warnings = validate_folder(target)
    except ConfigError as exc:
        typer.echo(f"error: invalid runbooks in {target}:\n{exc}", err=True)
        raise typer.Exit(1) from None
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    names = ", ".join(r.ref for r in runbooks)
    typer.echo(f"{len(runbooks)} runbook(s) valid in {target}: {names}")
