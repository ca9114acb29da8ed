"""`remediator audit`: verify, sign, show and export the audit trail; verify an export offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from agent.cli.common import load_services, parse_uuid

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@app.command("verify")
def audit_verify(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only problems.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes that verify ranges of the chain at once. Default: by the chain's "
            "size and the CPUs, whichever is faster (one walk in this process below the "
            "measured crossover, else one process per CPU, at most 8).",
        ),
    ] = None,
) -> None:
    """Check every link of the audit chain; exit 1 naming the first bad sequence number."""
    from sqlmodel import Session

    from audit.service import read_checkpoint_file

    services = load_services()
    settings = services.settings
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
        services.audit.trusted()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    with Session(services.engine) as session:
        result = services.audit.verify(
            session,
            progress=progress,
            extra_checkpoints=kept,
            workers=workers,
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


@app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's current head (also to REMEDIATOR_AUDIT_CHECKPOINT_FILE when set)."""
    services = load_services()
    settings = services.settings
    try:
        checkpoint = services.audit.checkpoint(services.engine, settings.audit_checkpoint_file)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    where = f" and {settings.audit_checkpoint_file}" if settings.audit_checkpoint_file else ""
    typer.echo(
        f"checkpoint of event {checkpoint.head_seq} signed by key {checkpoint.key_id} at "
        f"{checkpoint.created_at:%Y-%m-%d %H:%M:%S} UTC, stored in the database{where}"
    )


@app.command("export")
def audit_export(
    incident_id: Annotated[str, typer.Argument(help="Incident id (UUID).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="md (post-incident review) or json (JSON Lines).")
    ] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export one incident as a Markdown post-incident review or as JSON Lines.

    JSON Lines carries each event's proof and is sealed: `remediator audit verify-export`
    checks it with the public key alone.
    """
    from sqlmodel import Session

    from agent.review.export import Review, to_json_lines, to_markdown
    from agent.review.service import load_incident
    from audit.sqltypes import utcnow

    if format not in ("md", "json"):
        typer.echo(f"error: --format must be md or json, not {format!r}", err=True)
        raise typer.Exit(2)
    incident_uuid = parse_uuid(incident_id, "incident")
    services = load_services()
    settings = services.settings
    with Session(services.engine) as session:
        record = load_incident(session=session, incident_id=incident_uuid)
        if record is None:
            typer.echo(f"error: no incident {incident_id}", err=True)
            raise typer.Exit(1)
        try:
            chain = services.audit.verify(session)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    review = Review.build(record, chain, utcnow(), settings.public_url)
    if format == "md":
        text = to_markdown(review)
    else:
        seqs = [event.seq for event in record.events]
        try:
            proofs = services.audit.prove(services.engine, seqs, settings.audit_checkpoint_file)
        except ValueError as exc:
            typer.echo(f"error: cannot prove the incident's events: {exc}", err=True)
            raise typer.Exit(1) from None
        text = services.audit.seal(to_json_lines(review, proofs))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command("show")
def audit_show(incident_id: Annotated[str, typer.Argument(help="Incident id (UUID).")]) -> None:
    """Print the timeline of one incident, oldest event first."""
    from sqlmodel import Session

    from agent.incidents.service import alert_ids_of, get_incident
    from audit.service import events_for
    from audit.timeline import format_timeline

    incident_uuid = parse_uuid(incident_id, "incident")
    with Session(load_services().engine) as session:
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


@app.command("verify-export")
def audit_verify_export(
    file: Annotated[Path, typer.Argument(help="A JSON Lines export (`audit export -f json`).")],
    public_key: Annotated[
        list[Path],
        typer.Option(
            "--public-key",
            "-k",
            help="A trusted public key (PEM); repeat it for the keys of earlier rotations.",
        ),
    ],
) -> None:
    """Prove, offline, that every event of an export is in the signed chain, unaltered, in order.

    Needs no database and no secret: only the export and the public keys. Exit 1 naming the
    first thing that fails (any change to the file does), 2 when a file cannot be read.
    """
    from audit.proofs import verify_export
    from audit.signing import TrustedKeys

    try:
        trusted = TrustedKeys.from_files(public_key)
        raw = file.read_bytes()
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    verdict = verify_export(raw, trusted)
    if not verdict.ok:
        typer.echo(f"export NOT verified: {verdict.reason}", err=True)
        raise typer.Exit(1)
    span = f" (sequence {verdict.first_seq}-{verdict.last_seq})" if verdict.events else ""
    typer.echo(
        f"export verified: {verdict.events} event(s) of incident {verdict.incident_id}{span} "
        "are in the signed audit chain, unaltered and in order"
    )
    for tree_size, key_id, signed_at in verdict.checkpoints:
        typer.echo(f"  checkpoint of event {tree_size}: key {key_id}, signed {signed_at}")
    typer.echo(f"  the whole file is sealed by key {verdict.sealed_by} at {verdict.sealed_at}")


@app.command("keygen")
def audit_keygen(
    path: Annotated[Path, typer.Argument(help="Where to write the new private key (PEM).")],
) -> None:
    """Make an Ed25519 signing key (mode 0600) and its public key beside it (`<path>.pub`)."""
    from audit.signing import Ed25519Signer, generate_key_file, public_path

    if not generate_key_file(path):
        typer.echo(f"error: {path} exists; a signing key is never overwritten", err=True)
        raise typer.Exit(2)
    signer = Ed25519Signer.from_file(path)
    typer.echo(f"wrote {path} (private) and {public_path(path)} (public), key id {signer.key_id}")


@app.command("public-key")
def audit_public_key() -> None:
    """Print the public key (PEM) that verifies the service's checkpoints and exports."""
    services = load_services(database="none")
    try:
        signer = services.audit.signer()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"# key id {signer.key_id} ({signer.algorithm})", err=True)
    typer.echo(signer.public_key_pem().decode(), nl=False)
