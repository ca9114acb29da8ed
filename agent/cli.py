"""The `remediator` command: serve, approvals, database, audit, sandbox and demo."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from agent.approvals import commands as approvals_commands
from agent.settings import Settings

if TYPE_CHECKING:
    from runbooks.catalog import Catalog, Service

app = typer.Typer(
    help="Incident remediation agent for LLM services (Arize alert webhook).",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
baseline_app = typer.Typer(help="Baselines of healthy dependencies.", no_args_is_help=True)
runbooks_app = typer.Typer(
    help="Runbooks: what the agent may do, per diagnosis.", no_args_is_help=True
)
app.command("approve")(approvals_commands.approve)
app.command("approvals")(approvals_commands.approvals)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(baseline_app, name="baseline")
app.add_typer(runbooks_app, name="runbooks")


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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [REMEDIATOR_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [REMEDIATOR_PORT].")] = None,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the worker in this process.")
    ] = True,
) -> None:
    """Run the webhook API and (by default) the worker in one process."""
    import uvicorn

    from agent.app import create_app
    from agent.logsetup import configure_logging

    settings = load_settings()
    configure_logging(settings)
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


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Worker loops (threads) to run.")
    ] = 1,
) -> None:
    """Run worker loops without the API; SIGTERM finishes or hands back the work in hand."""
    from agent.logsetup import configure_logging
    from agent.workers import run_workers
    from runbooks.loader import ConfigError

    settings = load_settings()
    configure_logging(settings)
    try:
        run_workers(settings, concurrency)
    except (ValueError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the schema migrations (SQLite or PostgreSQL)."""
    from agent.db import current_revision, make_engine, upgrade

    engine = make_engine(load_settings().database_url)
    upgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    from agent.db import current_revision, make_engine

    revision = current_revision(make_engine(load_settings().database_url))
    typer.echo(revision or "empty database (run `remediator db upgrade`)")


@audit_app.command("verify")
def audit_verify(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only problems.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes that verify ranges of the chain at once (default: one per CPU, "
            "at most 8). Chains under 100,000 events are walked in this process.",
        ),
    ] = None,
) -> None:
    """Check every link of the audit chain; exit 1 naming the first bad sequence number."""
    from sqlmodel import Session

    from agent.db import make_engine
    from audit.service import read_checkpoint_file, verify_chain

    settings = load_settings()
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if not quiet and total > 50_000:
            typer.echo(f"  checked {done:,} of {total:,} events", err=True)

    try:
        kept = (
            read_checkpoint_file(settings.audit_checkpoint_file)
            if settings.audit_checkpoint_file
            else []
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    with Session(make_engine(settings.database_url)) as session:
        result = verify_chain(
            session=session,
            key=settings.audit_key.get_secret_value().encode(),
            progress=progress,
            extra_checkpoints=kept,
            workers=workers or min(8, os.cpu_count() or 1),
        )
    elapsed = time.monotonic() - started
    if result.ok:
        if not quiet:
            typer.echo(
                f"audit chain OK: {result.checked:,} events verified in {elapsed:.2f}s "
                f"against {result.checkpoints} signed checkpoint(s)"
            )
        return
    typer.echo(
        f"audit chain BROKEN at sequence {result.first_bad_seq}: {result.reason} "
        f"({result.checked:,} events verified before it)",
        err=True,
    )
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's current head (also to REMEDIATOR_AUDIT_CHECKPOINT_FILE when set)."""
    from agent.auditlog import AuditLog
    from agent.db import make_engine

    settings = load_settings()
    audit = AuditLog(key=settings.audit_key.get_secret_value().encode())
    checkpoint = audit.checkpoint(
        make_engine(settings.database_url), settings.audit_checkpoint_file
    )
    where = f" and {settings.audit_checkpoint_file}" if settings.audit_checkpoint_file else ""
    typer.echo(
        f"checkpoint of event {checkpoint.head_seq} signed at "
        f"{checkpoint.created_at:%Y-%m-%d %H:%M:%S} UTC, stored in the database{where}"
    )


@audit_app.command("export")
def audit_export(
    incident_id: Annotated[str, typer.Argument(help="Incident id (UUID).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="md (post-incident review) or json (JSON Lines).")
    ] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export one incident as a Markdown post-incident review or as JSON Lines."""
    from sqlmodel import Session

    from agent.db import make_engine
    from agent.review.export import Review, to_json_lines, to_markdown
    from agent.review.service import load_incident
    from audit.service import verify_chain
    from audit.sqltypes import utcnow

    if format not in ("md", "json"):
        typer.echo(f"error: --format must be md or json, not {format!r}", err=True)
        raise typer.Exit(2)
    incident_uuid = _incident_uuid(incident_id)
    settings = load_settings()
    with Session(make_engine(settings.database_url)) as session:
        record = load_incident(session=session, incident_id=incident_uuid)
        if record is None:
            typer.echo(f"error: no incident {incident_id}", err=True)
            raise typer.Exit(1)
        chain = verify_chain(session=session, key=settings.audit_key.get_secret_value().encode())
    review = Review.build(record, chain, utcnow(), settings.public_url)
    text = to_markdown(review) if format == "md" else to_json_lines(review)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


def _incident_uuid(incident_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(incident_id)
    except ValueError:
        typer.echo(f"error: {incident_id!r} is not an incident id (a UUID)", err=True)
        raise typer.Exit(2) from None


@audit_app.command("show")
def audit_show(incident_id: Annotated[str, typer.Argument(help="Incident id (UUID).")]) -> None:
    """Print the timeline of one incident, oldest event first."""
    from sqlmodel import Session

    from agent.db import make_engine
    from agent.incidents.service import alert_ids_of, get_incident
    from audit.service import events_for
    from audit.timeline import format_timeline

    incident_uuid = _incident_uuid(incident_id)
    with Session(make_engine(load_settings().database_url)) as session:
        incident = get_incident(session=session, incident_id=incident_uuid)
        if incident is None:
            typer.echo(f"error: no incident {incident_id}", err=True)
            raise typer.Exit(1)
        alert_ids = alert_ids_of(session=session, incident_id=incident_uuid)
        events = events_for(session=session, incident_id=incident_uuid, alert_ids=alert_ids)
        typer.echo(f"Incident {incident.id}: {incident.title}")
        typer.echo(
            f"status {incident.status}, run {incident.run_state}, opened {incident.opened_at}"
        )
        typer.echo(format_timeline(events))


def load_catalog_setting(settings: Settings) -> Catalog | None:
    """Load the catalog named by REMEDIATOR_CATALOG_FILE, or exit 2 naming its mistakes."""
    from runbooks.catalog import load_catalog
    from runbooks.loader import ConfigError

    if settings.catalog_file is None:
        return None
    try:
        return load_catalog(settings.catalog_file)
    except ConfigError as exc:
        typer.echo(f"error: invalid service catalog:\n{exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def doctor() -> None:
    """Check every configured integration (settings and catalog) and print a table."""
    from agent.doctor import format_rows, run_checks
    from agent.toolbox import build_toolbox

    settings = load_settings()
    rows = run_checks(settings, build_toolbox(settings), load_catalog_setting(settings))
    typer.echo(format_rows(rows))
    failing = [r for r in rows if not r.ok]
    if failing:
        typer.echo(f"\n{len(failing)} integration(s) failing", err=True)
        raise typer.Exit(1)


@baseline_app.command("capture")
def baseline_capture(
    service: Annotated[str, typer.Argument(help="Service name from the catalog.")],
) -> None:
    """Record what healthy looks like: golden embedding vectors and the vector DB's canary."""
    settings = load_settings()
    catalog = load_catalog_setting(settings)
    if catalog is None or service not in catalog.services:
        known = ", ".join(sorted(catalog.services)) if catalog else "none (no catalog)"
        typer.echo(f"error: no service {service!r} in the catalog (known: {known})", err=True)
        raise typer.Exit(2)
    spec = catalog.services[service]
    try:
        done = _capture(spec)
    except Exception as exc:  # any SDK error: say which and stop, never a traceback
        typer.echo(f"error: baseline capture failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    if not done:
        typer.echo(f"error: {service} names no golden_file or canary_file to capture", err=True)
        raise typer.Exit(2)


def _capture(spec: Service) -> int:
    """Capture what the service's catalog entry asks for; return how many baselines."""
    import os

    from qdrant_client import QdrantClient

    from agent.service_tools import save_canary
    from tools.probe_embeddings import capture_golden_vectors, save_golden_vectors
    from tools.probe_vectordb import capture_canary

    done = 0
    embeddings = spec.dependencies.embeddings
    if embeddings is not None and embeddings.golden_file:
        golden = capture_golden_vectors(
            base_url=embeddings.base_url,
            api_key=os.environ.get(embeddings.api_key_env or "", "") or "unset",
            model=embeddings.model,
        )
        save_golden_vectors(golden, Path(embeddings.golden_file))
        typer.echo(f"golden vectors of {embeddings.model} saved to {embeddings.golden_file}")
        done += 1
    vector = spec.dependencies.vector_db
    if vector is not None and vector.kind == "qdrant" and vector.canary_file and vector.collection:
        api_key = os.environ.get(vector.api_key_env or "") or None
        client = (
            QdrantClient(url=vector.url, api_key=api_key, check_compatibility=False)
            if vector.url
            else QdrantClient(path=vector.path)
        )
        canary = capture_canary(client, vector.collection)
        save_canary(canary, Path(vector.canary_file))
        typer.echo(f"vector DB canary of {vector.collection} saved to {vector.canary_file}")
        done += 1
    return done


@runbooks_app.command("validate")
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


@app.command("eval")
def evaluate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Scenario folders, or folders of them [default: scenarios/]."),
    ] = None,
    llm: Annotated[
        bool, typer.Option("--llm", help="Give the agent the sandbox's scripted LLM analyst.")
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
) -> None:
    """Run scored scenarios against the sandbox and print a table; exit 1 if any fails."""
    import logging

    import structlog

    from agent.evaluation import find_scenarios, format_table, run_all, to_json

    # The table is the output: the service's own logs would drown it.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "botocore", "httpx"):
        logging.getLogger(name).setLevel(logging.CRITICAL)

    folders: list[Path] = []
    for path in paths or [Path("scenarios")]:
        if not path.is_dir():
            typer.echo(f"error: {path} is not a folder", err=True)
            raise typer.Exit(2)
        folders += [path] if (path / "world.yaml").exists() else find_scenarios(path)
    if not folders:
        typer.echo("error: no scenario (a folder with world.yaml) found", err=True)
        raise typer.Exit(2)

    def progress(done: int, total: int, name: str) -> None:
        bar = "#" * (20 * done // total)
        typer.echo(f"\r[{bar:<20}] {done}/{total} {name:<40}", nl=False, err=True)

    results = run_all(folders, llm=llm, progress=progress)
    typer.echo("", err=True)
    typer.echo(format_table(results))
    if json_file is not None:
        json_file.write_text(to_json(results), encoding="utf-8")
    failed = [r for r in results if r.outcome == "fail"]
    if failed:
        typer.echo(f"\n{len(failed)} of {len(results)} scenario(s) failed", err=True)
        raise typer.Exit(1)


@app.command()
def sandbox(
    workdir: Annotated[Path, typer.Option(help="Where certificates are written.")] = Path(
        "var/sandbox"
    ),
    pagerduty_port: Annotated[int, typer.Option(help="PagerDuty emulator (HTTPS).")] = 8443,
    slack_port: Annotated[int, typer.Option(help="Slack emulator.")] = 8444,
    aws_port: Annotated[int, typer.Option(help="moto (AWS) server.")] = 8445,
    host: Annotated[
        str, typer.Option(help="Address the emulators listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    public_host: Annotated[
        str | None,
        typer.Option(
            help="Name the service reaches the emulators by, in the printed URLs and the "
            "certificate (e.g. the compose service name) [default: --host]."
        ),
    ] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(help="Also write the printed settings to this file (NAME=value lines)."),
    ] = None,
) -> None:
    """Run the emulators standalone and print the settings that point the service at them."""
    from sandbox.stack import SandboxStack

    if env_file is not None:
        env_file.unlink(missing_ok=True)  # a stale file would name the last run's secrets
    stack = SandboxStack(
        workdir.resolve(),
        host=host,
        public_host=public_host,
        ports={"pagerduty": pagerduty_port, "slack": slack_port, "aws": aws_port},
    )
    try:
        stack.start()
    except OSError as exc:
        typer.echo(f"error: cannot start the emulators: {exc}", err=True)
        raise typer.Exit(1) from None
    catalog = stack.write_catalog(workdir / "services.yaml")
    typer.echo("Sandbox emulators running. Point the service at them with:\n")
    exports = {
        **stack.service_env(),
        "REMEDIATOR_CATALOG_FILE": str(catalog.resolve()),
        **stack.catalog_env(),
    }
    for name, value in exports.items():
        typer.echo(f"export {name}={value}")
    if env_file is not None:
        # Written last and whole: its presence tells a waiting service the emulators are up.
        partial = env_file.with_name(env_file.name + ".tmp")
        partial.write_text("".join(f"{name}={value}\n" for name, value in exports.items()))
        partial.replace(env_file)
    typer.echo("\nPress Ctrl-C to stop.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the demo's database and logs.")] = True,
) -> None:
    """Play one Arize breach end to end against the emulators and print its audit timeline."""
    from sandbox.demo import run_demo

    raise typer.Exit(run_demo([sys.executable, "-m", "agent"], keep=keep))
