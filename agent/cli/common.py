"""What every command needs: the settings, the assembled service, and clear errors."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NoReturn, TextIO, cast

import typer
from pydantic import ValidationError

from agent.settings import Settings
from runbooks.loader import ConfigError

if TYPE_CHECKING:  # the SDKs load on use, so `--help` answers at once
    from sqlalchemy import Engine

    from agent.wiring import Services
    from runbooks.catalog import Catalog


def load_settings() -> Settings:
    """Build Settings from the environment, or exit 2 saying which setting is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"error: invalid settings: {problems}", err=True)
        raise typer.Exit(2) from None


Database = Literal["migrated", "exists", "create", "none"]


def load_services(database: Database = "migrated") -> Services:
    """Assemble the service from the environment's settings (the one assembly point).

    `database` says what the command needs of the database: `migrated` (the default) a schema
    at the newest revision, else it exits 2 in one line saying what to run, creating nothing;
    `exists` only that a SQLite file is there; `create` lets it be made (`db upgrade`);
    `none` nothing (the command never opens it).
    What the service logs goes to stderr: a command's stdout is its output (an export, a key).
    """
    import structlog

    from agent.wiring import build_services

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _Stderr())))
    settings = load_settings()
    if database in ("migrated", "exists"):
        _refuse_a_missing_file(settings.database_url)
    services = build_services(settings)
    if database == "migrated":
        _require_schema(services.engine)
    return services


UPGRADE_HINT = "run `remediator db upgrade` (or point REMEDIATOR_DATABASE_URL at the database)"


def _refuse_a_missing_file(database_url: str) -> None:
    """Exit 2 when the URL names a SQLite file that does not exist (connecting would make it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(database_url)
    except ArgumentError:
        _fail(f"REMEDIATOR_DATABASE_URL is not a database URL: {database_url!r}")
    name = url.database
    if url.get_backend_name() == "sqlite" and name and name != ":memory:":
        if not Path(name).is_file():
            _fail(f"no database at {name}: {UPGRADE_HINT}")


def _require_schema(engine: Engine) -> None:
    """Exit 2 unless the database answers and its schema is at the newest revision."""
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from agent.store.db import alembic_config, current_revision

    where = engine.url.render_as_string(hide_password=True)
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0][:200]
        _fail(f"cannot open the database {where}: {reason}")
    if revision is None:
        _fail(f"the database {where} has no schema: {UPGRADE_HINT}")
    heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    if revision not in heads:
        _fail(
            f"the database {where} is at schema revision {revision}, this version needs "
            f"{', '.join(heads)}: {UPGRADE_HINT}"
        )


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


class _Stderr:
    """Whatever sys.stderr is when a line is written (a caller may swap it, as tests do)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def catalog_of(services: Services) -> Catalog | None:
    """Return the catalog named by REMEDIATOR_CATALOG_FILE, or exit 2 naming its mistakes."""
    try:
        return services.catalog
    except ConfigError as exc:
        typer.echo(f"error: invalid service catalog:\n{exc}", err=True)
        raise typer.Exit(2) from None


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """Return `value` as a UUID, or exit 2 saying it is not an id of `what`."""
    try:
        return uuid.UUID(value)
    except ValueError:
        typer.echo(f"error: {value!r} is not an {what} id (a UUID)", err=True)
        raise typer.Exit(2) from None
