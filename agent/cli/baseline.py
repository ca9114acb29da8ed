"""`remediator baseline`: record what healthy dependencies look like."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.common import catalog_of, load_services

if TYPE_CHECKING:
    from runbooks.catalog import Service

app = typer.Typer(help="Baselines of healthy dependencies.", no_args_is_help=True)


@app.command("capture")
def baseline_capture(
    service: Annotated[str, typer.Argument(help="Service name from the catalog.")],
) -> None:
    """Record what healthy looks like: golden embedding vectors and the vector DB's canary."""
    services = load_services(database="none")
    catalog = catalog_of(services)
    if catalog is None or service not in catalog.services:
        known = ", ".join(sorted(catalog.services)) if catalog else "none (no catalog)"
        typer.echo(f"error: no service {service!r} in the catalog (known: {known})", err=True)
        raise typer.Exit(2)
    spec = catalog.services[service]
    try:
        done = _capture(spec, services.env)
    except Exception as exc:  # any SDK error: say which and stop, never a traceback
        typer.echo(f"error: baseline capture failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    if not done:
        typer.echo(f"error: {service} names no golden_file or canary_file to capture", err=True)
        raise typer.Exit(2)


def _capture(spec: Service, env: Mapping[str, str]) -> int:
    """Capture what the service's catalog entry asks for; return how many baselines."""
    from qdrant_client import QdrantClient

    from tools.probes.canary import capture_canary, save_canary
    from tools.probes.embeddings import capture_golden_vectors, save_golden_vectors

    done = 0
    embeddings = spec.dependencies.embeddings
    if embeddings is not None and embeddings.golden_file:
        golden = capture_golden_vectors(
            base_url=embeddings.base_url,
            api_key=env.get(embeddings.api_key_env or "", "") or "unset",
            model=embeddings.model,
        )
        save_golden_vectors(golden, Path(embeddings.golden_file))
        typer.echo(f"golden vectors of {embeddings.model} saved to {embeddings.golden_file}")
        done += 1
    vector = spec.dependencies.vector_db
    if vector is not None and vector.kind == "qdrant" and vector.canary_file and vector.collection:
        api_key = env.get(vector.api_key_env or "") or None
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
