"""The sandbox as a playground: `up` prints every emulator, `fault`/`heal` stage faults on it
through its control API, `approve` clicks in the emulated Slack; clear errors otherwise."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sandbox.cli import app, emulator_addresses
from sandbox.faults import CONTROL_FILE, create_control_app
from sandbox.server import EmulatorServer
from sandbox.stack import SandboxStack

ROOT = Path(__file__).parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def running(catalog_world: SandboxStack, tmp_path: Path) -> Iterator[tuple[SandboxStack, Path]]:
    """A fresh sandbox with its control API, found through <workdir>/control.json as `up` does."""
    control = EmulatorServer(
        create_control_app(catalog_world, catalog_world.catalog_path)  # type: ignore[attr-defined]
    ).start()
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    (workdir / CONTROL_FILE).write_text(
        json.dumps(
            {
                "control": control.url,
                "slack": catalog_world.slack_url.removesuffix("/api/"),
                "slack_signing_secret": "s" * 32,
            }
        )
    )
    yield catalog_world, workdir
    control.stop()


def ask_gateway(stack: SandboxStack) -> int:
    """Call the service's alias at the gateway, as the service's users do; return the status."""
    answer = httpx.post(
        stack.urls["gateway"] + "/v1/chat/completions",
        json={"model": "support-bot", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {stack.openai_key}"},
        timeout=10,
    )
    return answer.status_code


def test_faults_are_staged_and_healed_on_the_running_sandbox(
    running: tuple[SandboxStack, Path],
) -> None:
    stack, workdir = running
    where = ["--workdir", str(workdir)]
    assert ask_gateway(stack) == 200

    code, out, err = run("fault", "vector_db", "wrong_neighbour", *where)
    assert code == 0, err
    assert out.strip() == "staged vector_db: wrong_neighbour"
    assert stack.vectordb.corrupt_index

    code, out, _ = run("fault", "endpoint", "eu-west-1", "failing", *where)
    assert code == 0 and out.strip() == "staged endpoint eu-west-1: failing"
    assert ask_gateway(stack) == 503

    code, _, _ = run("fault", "embeddings", "slow", *where)
    assert code == 0 and stack.openai.model("text-embedding-3-small").latency_seconds > 0

    code, out, _ = run("heal", *where)
    assert code == 0 and out.startswith("healed ")
    assert not stack.vectordb.corrupt_index
    assert stack.openai.model("text-embedding-3-small").latency_seconds == 0
    assert ask_gateway(stack) == 200


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (
            ["vectr", "down"],
            "unknown target 'vectr'; valid: vector_db <healthy|wrong_neighbour|slow|down>; "
            "embeddings <",
        ),
        (["vector_db", "melted"], "unknown state 'melted' of vector_db; valid: healthy, "),
        (
            ["endpoint", "mars-1", "failing"],
            "endpoint has no region or provider 'mars-1'; valid: eu-west-1, openai, us-east-1",
        ),
        (["endpoint", "failing"], "endpoint needs a region or provider; valid: eu-west-1"),
        (["endpoint", "eu-west-1", "slow"], "unknown state 'slow' of endpoint; valid: healthy, "),
        (["vector_db", "eu-west-1", "down"], "vector_db takes no region or provider"),
        (["nope"], "unknown target 'nope'; valid: vector_db <"),
        (["embeddings"], "embeddings needs a state; valid: healthy, drift, down, slow"),
        (["endpoint", "eu-west-1"], "endpoint eu-west-1 needs a state; valid: healthy, failing"),
    ],
)
def test_an_unknown_fault_lists_the_valid_ones_and_changes_nothing(
    running: tuple[SandboxStack, Path], words: list[str], expected: str
) -> None:
    stack, workdir = running
    code, out, err = run("fault", *words, "--workdir", str(workdir))
    assert code == 2 and out == ""
    assert err.startswith(f"error: {expected}")
    assert not stack.vectordb.corrupt_index and not stack.gateway.failing_regions


def test_a_sandbox_that_is_not_running_is_named(tmp_path: Path) -> None:
    code, _, err = run("fault", "vector_db", "down", "--workdir", str(tmp_path))
    assert code == 1
    assert err.strip() == (
        f"error: no sandbox is running ({tmp_path / CONTROL_FILE} not found): "
        "start one with `python -m sandbox up`"
    )
    (tmp_path / CONTROL_FILE).write_text(json.dumps({"control": "http://127.0.0.1:9"}))
    for command in (["heal"], ["fault", "vector_db", "down"]):
        code, _, err = run(*command, "--workdir", str(tmp_path))
        assert code == 1 and "no sandbox answers at http://127.0.0.1:9 (stopped?)" in err


def test_every_inspection_url_answers(running: tuple[SandboxStack, Path]) -> None:
    stack, workdir = running
    control = json.loads((workdir / CONTROL_FILE).read_text())["control"]
    addresses = emulator_addresses(stack, control)
    assert set(addresses) == {
        "pagerduty",
        "slack",
        "openai",
        "gateway",
        "vector_db",
        "gcp_logging",
        "aws",
        "control",
    }
    trust = ssl.create_default_context(cafile=str(stack.cert_path))
    with httpx.Client(verify=trust, timeout=10) as client:
        for name, (_, inspect) in addresses.items():
            for url in inspect:
                assert client.get(url).status_code == 200, (name, url)


def test_approve_says_when_no_request_waits(running: tuple[SandboxStack, Path]) -> None:
    _, workdir = running
    code, _, err = run("approve", "--workdir", str(workdir), "--service", "http://127.0.0.1:9")
    assert code == 1
    assert "no approval request with buttons in the emulated Slack" in err


def test_up_prints_every_emulator_and_serves_the_control_api(tmp_path: Path) -> None:
    workdir = tmp_path / "sb"
    ports = ["--pagerduty-port", "0", "--slack-port", "0", "--aws-port", "0", "--control-port", "0"]
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "up", "--workdir", str(workdir), *ports],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not (workdir / CONTROL_FILE).exists():
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        fault = subprocess.run(
            [sys.executable, "-m", "sandbox", "fault", "endpoint", "us-east-1", "failing"]
            + ["--workdir", str(workdir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert fault.returncode == 0, fault.stderr
        assert fault.stdout.strip() == "staged endpoint us-east-1: failing"
        printed = log.read_text()
        for name in ("pagerduty", "slack", "openai", "gateway", "vector_db", "gcp_logging"):
            assert f"\n  {name} " in printed
        assert "/_sandbox/messages" in printed and "/faults" in printed
        assert "export REMEDIATOR_SLACK_SIGNING_SECRET=" in printed
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
    assert not (workdir / CONTROL_FILE).exists()  # a stopped sandbox leaves no stale address
