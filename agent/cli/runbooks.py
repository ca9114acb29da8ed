"""`remediator runbooks`: check runbooks before the agent loads them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic_settings import BaseSettings, SettingsConfigDict

app = typer.Typer(help="Runbooks: what the agent may do, per diagnosis.", no_args_is_help=True)


class _Where(BaseSettings):
    """The two settings `validate` reads, without requiring the service's secrets."""

    model_config = SettingsConfigDict(
        env_prefix="REMEDIATOR_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )
    runbooks_dir: Path | None = None
    catalog_file: Path | None = None


@app.command("validate")
def runbooks_validate(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="Folder of *.yaml runbooks [default: REMEDIATOR_RUNBOOKS_DIR, else the shipped "
            "runbooks]."
        ),
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog",
            help="Service catalog to check every name a runbook gives against "
            "[default: REMEDIATOR_CATALOG_FILE].",
        ),
    ] = None,
) -> None:
    """Check runbooks as the service will load them: errors name file, line and key.

    Refused: unknown keys, wrong values, a key given twice, and (with a catalog) a service,
    model, failover target or approver the catalog does not have. Warnings: a catalogued
    service no runbook covers, and settings that will not behave as meant. Exit 1 on an error.
    """
    from runbooks.catalog import load_catalog
    from runbooks.library import SHIPPED_RUNBOOKS, validate_folder
    from runbooks.loader import ConfigError

    where = _Where()
    target = folder or where.runbooks_dir or SHIPPED_RUNBOOKS
    catalog_file = catalog or where.catalog_file
    try:
        services = load_catalog(catalog_file) if catalog_file else None
    except ConfigError as exc:
        typer.echo(f"error: invalid service catalog {catalog_file}:\n{exc}", err=True)
        raise typer.Exit(1) from None
    try:
        runbooks, warnings = validate_folder(target, services)
    except ConfigError as exc:
        typer.echo(f"error: invalid runbooks in {target}:\n{exc}", err=True)
        raise typer.Exit(1) from None
    if services is None:
        warnings.insert(
            0,
            "no service catalog (REMEDIATOR_CATALOG_FILE or --catalog): the services, models, "
            "failover targets and approvers runbooks name are not checked",
        )
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    names = ", ".join(r.ref for r in runbooks)
    against = f" against {catalog_file}" if catalog_file else ""
    typer.echo(f"{len(runbooks)} runbook(s) valid in {target}{against}: {names}")
