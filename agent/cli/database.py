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

    engine = load_services(database="create").engine
    upgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine)}")


@app.command("current")
def db_current() -> None:
    """Print the schema revision the database is at (exit 2 when there is no database)."""
    from sqlalchemy.exc import SQLAlchemyError

    from agent.store.db import current_revision

    engine = load_services(database="exists").engine
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        typer.echo(f"error: cannot open the database {where}: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from None
    typer.echo(revision or "empty database (run `remediator db upgrade`)")
