"""The harness's command: `python -m sandbox up | fault | heal | approve | demo | eval`.

Run from a checkout: `up` starts the emulators; `fault`, `heal` and `approve` act on them
while it runs.

The product's `remediator` command knows nothing of it: the emulators, the demo and the scenario
evaluation stay outside the product, its wheel and its production image.
"""

from __future__ import annotations

import json
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from sandbox.demo import run_demo
from sandbox.faults import (
    CONTROL_FILE,
    FaultError,
    NotRunning,
    call_control,
    create_control_app,
    read_control,
)
from sandbox.server import EmulatorServer
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
    control_port: Annotated[
        int, typer.Option(help="The control API that `fault`, `heal` and `approve` use.")
    ] = 8446,
) -> None:
    """Run the emulators standalone and print the settings that point the service at them.

    Prints every emulator's address and inspection URLs; `python -m sandbox fault …`, `heal`
    and `approve` act on this sandbox while it runs (found through <workdir>/control.json).
    """
    if env_file is not None:
        env_file.unlink(missing_ok=True)  # a stale file would name the last run's secrets
    control_file = workdir / CONTROL_FILE
    control_file.unlink(missing_ok=True)
    stack = SandboxStack(
        workdir.resolve(),
        host=host,
        public_host=public_host,
        ports={"pagerduty": pagerduty_port, "slack": slack_port, "aws": aws_port},
    )
    try:
        stack.start()
        catalog = stack.write_catalog(workdir / "services.yaml")
        control = EmulatorServer(
            create_control_app(stack, catalog), host=host, port=control_port
        ).start()
    except OSError as exc:
        stack.stop()
        typer.echo(f"error: cannot start the emulators: {exc}", err=True)
        raise typer.Exit(1) from None
    signing_secret = secrets.token_hex(16)
    addresses = emulator_addresses(stack, stack.public(control.url))
    typer.echo("Sandbox emulators running:\n")
    for name, (address, inspect) in addresses.items():
        typer.echo(f"  {name:<12} {address}")
        for url in inspect:
            typer.echo(f"  {'':<12}   inspect: {url}")
    typer.echo("\nPoint the service at them with:\n")
    exports = {
        **stack.service_env(),
        "REMEDIATOR_CATALOG_FILE": str(catalog.resolve()),
        "REMEDIATOR_SLACK_SIGNING_SECRET": signing_secret,
        **stack.catalog_env(),
    }
    for name, value in exports.items():
        typer.echo(f"export {name}={value}")
    control_file.write_text(
        json.dumps(
            {
                "control": stack.public(control.url),
                "slack": stack.public(addresses["slack"][0]),
                "slack_signing_secret": signing_secret,
            }
        ),
        encoding="utf-8",
    )
    if env_file is not None:
        # Written last and whole: its presence tells a waiting service the emulators are up.
        partial = env_file.with_name(env_file.name + ".tmp")
        partial.write_text("".join(f"{name}={value}\n" for name, value in exports.items()))
        partial.replace(env_file)
    typer.echo("\nPress Ctrl-C to stop.")
    # SIGTERM (docker stop, kill) stops it as Ctrl-C does: control.json goes with it.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        control_file.unlink(missing_ok=True)
        control.stop()
        stack.stop()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def emulator_addresses(stack: SandboxStack, control: str) -> dict[str, tuple[str, list[str]]]:
    """Return each emulator's address and the URLs that show what it received or holds."""
    urls = {name: stack.public(url) for name, url in stack.urls.items()}
    pagerduty, slack, aws = (
        stack.pagerduty_url,
        stack.slack_url.removesuffix("/api/"),
        stack.aws_url,
    )
    return {
        "pagerduty": (
            f"{pagerduty} (HTTPS, self-signed: {stack.cert_path})",
            [f"{pagerduty}/_sandbox/events"],
        ),
        "slack": (slack, [f"{slack}/_sandbox/messages"]),
        "openai": (urls["openai"] + "/v1", [urls["openai"] + "/_sandbox/requests"]),
        "gateway": (urls["gateway"], [urls["gateway"] + "/_sandbox/state"]),
        "vector_db": (urls["vectordb"], [urls["vectordb"] + "/_sandbox/state"]),
        "gcp_logging": (urls["gcp"], []),
        "aws": (f"{stack.public(aws)} (moto)", [stack.public(aws) + "/moto-api/"]),
        "control": (control, [control + "/faults"]),
    }


@app.command()
def fault(
    target: Annotated[str, typer.Argument(help="vector_db, embeddings or endpoint.")],
    words: Annotated[
        list[str] | None,
        typer.Argument(
            help="The state (vector_db wrong_neighbour), or for the endpoint a region or "
            "provider and the state (endpoint eu-west-1 failing).",
            show_default=False,
        ),
    ] = None,
    workdir: Annotated[Path, typer.Option(help="The workdir `up` was given.")] = Path(
        "var/sandbox"
    ),
) -> None:
    """Stage a fault on the running sandbox (from healthy); `heal` undoes every fault.

    Faults: vector_db <healthy|wrong_neighbour|slow|down>; embeddings
    <healthy|drift|slow|down>; endpoint <region|provider> <healthy|failing>.
    """
    words = words or []
    if len(words) > 2:
        typer.echo("error: give a state, or a region or provider and a state", err=True)
        raise typer.Exit(2)
    # Too few words: the control API says what is missing and lists the valid faults.
    key, state = (words[0], words[1]) if len(words) == 2 else (None, "".join(words))
    answer = _control(workdir, "POST", "/faults", {"target": target, "key": key, "state": state})
    typer.echo(f"staged {answer['staged']}")


@app.command()
def heal(
    workdir: Annotated[Path, typer.Option(help="The workdir `up` was given.")] = Path(
        "var/sandbox"
    ),
) -> None:
    """Set every system of the running sandbox back to healthy."""
    answer = _control(workdir, "POST", "/heal")
    typer.echo("healed " + "; ".join(answer["healed"]))


@app.command()
def approve(
    as_user: Annotated[
        str, typer.Option("--as", help="Who clicks (a Slack user id the runbook lists).")
    ] = "U0ALICE",
    reject: Annotated[bool, typer.Option("--reject", help="Click Reject instead.")] = False,
    service: Annotated[str, typer.Option(help="The service's base URL.")] = "http://127.0.0.1:8080",
    workdir: Annotated[Path, typer.Option(help="The workdir `up` was given.")] = Path(
        "var/sandbox"
    ),
) -> None:
    """Click Approve (or Reject) on the newest approval request in the emulated Slack.

    The click goes to the service's /slack/interactions signed as Slack signs it, with the
    REMEDIATOR_SLACK_SIGNING_SECRET that `up` printed (the service must have it).
    """
    from sandbox.slack import click, interaction

    control = _read(workdir)
    try:
        messages = httpx.get(control["slack"] + "/_sandbox/messages", timeout=10).json()
    except httpx.TransportError:
        typer.echo("error: the Slack emulator does not answer: is the sandbox running?", err=True)
        raise typer.Exit(1) from None
    action = "remediator.reject" if reject else "remediator.approve"
    waiting = [m for m in messages["messages"] if _has_button(m, action)]
    if not waiting:
        typer.echo("error: no approval request with buttons in the emulated Slack", err=True)
        raise typer.Exit(1)
    message = waiting[-1]
    try:
        answer = click(
            service.rstrip("/") + "/slack/interactions",
            control["slack_signing_secret"],
            interaction(message, action, as_user),
        )
    except httpx.TransportError as exc:
        typer.echo(f"error: the service does not answer at {service}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"clicked {'Reject' if reject else 'Approve'} as {as_user} on: {message['text']}")
    typer.echo(f"the service answered {answer.status_code}: {answer.text}")
    if answer.status_code >= 400:
        raise typer.Exit(1)


def _has_button(message: dict[str, Any], action: str) -> bool:
    blocks = message.get("blocks") or []
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    return any(
        element.get("action_id") == action
        for block in blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    )


def _read(workdir: Path) -> dict[str, Any]:
    try:
        return read_control(workdir)
    except NotRunning as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _control(workdir: Path, method: str, path: str, body: Any = None) -> Any:
    try:
        return call_control(_read(workdir), method, path, body)
    except NotRunning as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except FaultError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


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
