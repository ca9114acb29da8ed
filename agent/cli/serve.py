"""`remediator serve` and `remediator worker`: the long-running processes."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.common import load_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [REMEDIATOR_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [REMEDIATOR_PORT].")] = None,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the worker in this process.")
    ] = True,
) -> None:
    """Run the webhook API and (by default) the worker in one process."""
    import uvicorn

    from agent.api.app import create_app
    from agent.telemetry.logs import configure_logging
    from agent.telemetry.memory import limit_malloc_arenas

    settings = load_settings()
    configure_logging(settings)
    limit_malloc_arenas(settings.malloc_arenas)  # before any thread starts
    try:
        application = create_app(settings, run_worker=worker)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        application,
        host=host or settings.host,
        port=settings.port if port is None else port,
        log_level=settings.log_level,
        # JSON logs: uvicorn's records go through the root logger's JSON handler.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=30,
    )


def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Worker loops (threads) to run.")
    ] = 1,
) -> None:
    """Run worker loops without the API; SIGTERM finishes or hands back the work in hand."""
    from agent.telemetry.logs import configure_logging
    from agent.telemetry.memory import limit_malloc_arenas
    from agent.worker.pool import run_workers
    from runbooks.loader import ConfigError

    settings = load_settings()
    configure_logging(settings)
    limit_malloc_arenas(settings.malloc_arenas)  # before any thread starts
    try:
        run_workers(settings, concurrency)
    except (ValueError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
