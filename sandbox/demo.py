"""The demo: emulators up, the service started, one Arize breach played end to end."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from sandbox.aws import demo_log_lines, seed_log_lines
from sandbox.stack import SandboxStack

SAMPLE = Path(__file__).parent / "samples" / "arize_breach.json"
READY_TIMEOUT = 60.0
INCIDENT_TIMEOUT = 60.0


def run_demo(remediator: list[str], *, keep: bool = True) -> int:
    """Run the demo; return the process exit code (0 when every check passed)."""
    started = time.monotonic()
    workdir = Path("var") / "demo" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    _say(f"demo workspace: {workdir}")
    stack = SandboxStack(workdir).start()
    catalog = stack.write_catalog(workdir / "services.yaml")
    _say(
        f"emulators: PagerDuty {stack.pagerduty_url} (HTTPS, self-signed), Slack "
        f"{stack.slack_url}, AWS (moto) {stack.aws_url}, and Qdrant, OpenAI-compatible, gateway "
        f"and GCP Logging emulators; service catalog {catalog}"
    )
    # The story: retrieval is broken (the vector index answers wrong neighbours) and the gateway
    # logs show timeouts on it; the LLM endpoint is fine. The owner of the vector DB must be paged.
    stack.vectordb.corrupt_index = True
    _say("world: the support-articles index returns wrong neighbours; the LLM endpoint is healthy")
    payload = json.loads(SAMPLE.read_text())
    breach_time = datetime.now(UTC) - timedelta(minutes=1)
    payload["triggered_at"] = breach_time.isoformat().replace("+00:00", "Z")
    seed_log_lines(
        stack.aws_url,
        stack.log_group,
        "gateway-1",
        demo_log_lines(payload["model_id"], payload["model_version"], breach_time),
    )
    port = _free_port()
    env = _service_env(stack, workdir, port)
    log_path = workdir / "service.log"
    service = None
    try:
        with log_path.open("wb") as log_file:
            service = subprocess.Popen(
                [*remediator, "serve"], env=env, stdout=log_file, stderr=subprocess.STDOUT
            )
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, service, log_path)
            _say(f"service ready at {base} (SQLite {workdir / 'remediator.db'})")
            code = _play(base, env, payload, stack, remediator)
    finally:
        if service is not None:
            service.terminate()
            try:
                service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.kill()
        stack.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    _say(f"demo {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.1f}s")
    return code


def _play(
    base: str, env: dict[str, str], payload: dict[str, Any], stack: SandboxStack, cmd: list[str]
) -> int:
    headers = {"Authorization": f"Bearer {env['REMEDIATOR_WEBHOOK_TOKEN']}"}
    answer = httpx.post(f"{base}/webhooks/arize", json=payload, headers=headers, timeout=10)
    _say(f"POST /webhooks/arize -> {answer.status_code} {answer.text}")
    if answer.status_code != 202:
        return 1
    alert_id = answer.json()["alert_id"]
    alert = _wait_processed(base, alert_id, headers)
    if alert is None or alert["state"] != "done" or not alert["incident_id"]:
        _say(f"the alert was not processed: {alert}")
        return 1
    incident_id = alert["incident_id"]
    print(flush=True)  # noqa: T201
    show = subprocess.run(
        [*cmd, "audit", "show", incident_id], env=env, text=True, capture_output=True, check=False
    )
    print(show.stdout, end="", flush=True)  # noqa: T201
    verify = subprocess.run(
        [*cmd, "audit", "verify"], env=env, text=True, capture_output=True, check=False
    )
    print((verify.stdout + verify.stderr).strip(), flush=True)  # noqa: T201
    print(flush=True)  # noqa: T201
    review = Path(env["REMEDIATOR_DATABASE_URL"].removeprefix("sqlite:///")).parent / "review.md"
    export = subprocess.run(
        [*cmd, "audit", "export", incident_id, "--output", str(review)],
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    if export.returncode == 0:
        _say(f"post-incident review (Markdown) written to {review}")
    failed = show.returncode or verify.returncode or export.returncode
    return _check_emulators(stack, incident_id, failed)


def _check_emulators(stack: SandboxStack, incident_id: str, code: int) -> int:
    triggers = stack.pagerduty.triggers()
    messages = stack.slack.snapshot()["messages"]
    expected_key = f"remediator/incident/{incident_id}/search-platform"
    teams = {key: team for team, key in stack.team_keys.items()}
    paged = [(t["dedup_key"], teams.get(t["routing_key"], "the settings' key")) for t in triggers]
    _say(
        f"PagerDuty emulator holds {len(triggers)} trigger(s): "
        + ", ".join(
            f"{t['payload']['severity']} to {team} ({key})"
            for t, (key, team) in zip(triggers, paged, strict=True)
        )
    )
    _say(
        f"Slack emulator holds {len(messages)} message(s) in {stack.channel}: "
        + " | ".join(m["text"] for m in messages)
    )
    _say(f"gateway route changes (failovers): {len(stack.gateway.history)}")
    problems = []
    if paged != [(expected_key, "search-platform")]:
        problems.append(
            f"expected one page to search-platform (the vector DB's owner) with {expected_key}"
        )
    if stack.gateway.history:
        problems.append("expected no failover: the endpoint is healthy")
    if len(messages) != 1:
        problems.append("expected one Slack message")
    if stack.pagerduty.snapshot()["rejected"]:
        problems.append("the PagerDuty emulator rejected an event")
    if code:
        problems.append("`remediator audit show`, `audit verify` or `audit export` failed")
    for problem in problems:
        _say(f"CHECK FAILED: {problem}")
    return 1 if problems else 0


def _service_env(stack: SandboxStack, workdir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    # The sample alert names its monitor, not an Arize monitor id: the Arize emulator runs, but
    # the demo's service is not given its API (scenarios 73 and 74 show that part).
    env.update({k: v for k, v in stack.service_env().items() if "_ARIZE_" not in k})
    env.update(stack.catalog_env())
    env["REMEDIATOR_CATALOG_FILE"] = str((workdir / "services.yaml").resolve())
    env.update(
        {
            "REMEDIATOR_ENV": "dev",
            "REMEDIATOR_DATABASE_URL": f"sqlite:///{workdir.resolve() / 'remediator.db'}",
            "REMEDIATOR_WEBHOOK_TOKEN": secrets.token_urlsafe(24),
            "REMEDIATOR_AUDIT_KEY": secrets.token_urlsafe(32),
            "REMEDIATOR_PORT": str(port),
            "REMEDIATOR_HOST": "127.0.0.1",
            "REMEDIATOR_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "REMEDIATOR_WORKER_POLL_SECONDS": "0.2",
        }
    )
    return env


def _wait_ready(base: str, service: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(f"the service exited ({service.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the service was not ready within {READY_TIMEOUT:.0f}s; see {log_path}")


def _wait_processed(base: str, alert_id: str, headers: dict[str, str]) -> dict[str, Any] | None:
    deadline = time.monotonic() + INCIDENT_TIMEOUT
    alert: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        alert = httpx.get(f"{base}/alerts/{alert_id}", headers=headers, timeout=5).json()
        finished = alert["incident_run_state"] in ("completed", "failed", "skipped")
        if alert["state"] == "failed" or (alert["state"] == "done" and finished):
            return alert
        time.sleep(0.2)
    return alert


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)  # noqa: T201
