"""`remediator db`: the schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.common import load_services

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the schema migrations (SQLite or PostgreSQL)."""
    from agent.store.db import current_revision, upgrade

    engine = load_services().engine
    upgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine)}")


@app.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    from agent.store.db import current_revision

    revision = current_revision(load_services().engine)
    typer.echo(revision or "empty database (run `remediator db upgrade`)")
