"""The harness's command: `python -m sandbox up | demo | eval` (run from a checkout).

The product's `remediator` command knows nothing of it: the emulators, the demo and the scenario
evaluation stay outside the product, its wheel and its production image.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from sandbox.demo import run_demo
from sandbox.stack import SandboxStack

app = typer.Typer(
    help="The sandbox: local emulators of every outside system, the demo, the scenario eval.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def up(
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
    raise typer.Exit(run_demo([sys.executable, "-m", "agent"], keep=keep))


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
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=32,
            help="Scenarios run at once, each in a process of its own "
            "[default: two per CPU core, at most 8].",
        ),
    ] = None,
) -> None:
    """Run scored scenarios against the sandbox and print a table; exit 1 if any fails."""
    from sandbox.evaluation.runner import (
        DEFAULT_JOBS,
        find_scenarios,
        format_table,
        quiet_logs,
        run_all,
        to_json,
    )

    # The table is the output: the service's own logs would drown it.
    quiet_logs()

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

    started = time.monotonic()
    results = run_all(folders, llm=llm, jobs=jobs or DEFAULT_JOBS, progress=progress)
    typer.echo("", err=True)
    typer.echo(format_table(results, wall_seconds=time.monotonic() - started))
    if json_file is not None:
        json_file.write_text(to_json(results), encoding="utf-8")
    failed = [r for r in results if r.outcome == "fail"]
    if failed:
        typer.echo(f"\n{len(failed)} of {len(results)} scenario(s) failed", err=True)
        raise typer.Exit(1)
