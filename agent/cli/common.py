"""What every command needs: the settings, the assembled service, and clear errors."""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING, TextIO, cast

import typer
from pydantic import ValidationError

from agent.settings import Settings
from runbooks.loader import ConfigError

if TYPE_CHECKING:  # the SDKs load on use, so `--help` answers at once
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


def load_services() -> Services:
    """Assemble the service from the environment's settings (the one assembly point).

    What the service logs goes to stderr: a command's stdout is its output (an export, a key).
    """
    import structlog

    from agent.wiring import build_services

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _Stderr())))
    return build_services(load_settings())


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
