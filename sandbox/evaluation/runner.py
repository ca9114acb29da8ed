"""Scored scenario evaluation: play each scenario against the sandbox and compare with expected.

Each run gets a fresh sandbox, a fresh SQLite database and the service in-process; the world is
staged, the alerts are posted over HTTP, and once every alert has settled the audit trail and the
emulators say what the agent did. The service reads the catalog's secrets and the sandbox's
AWS credentials from an environment of the run's own; the process environment is left alone.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Literal

import httpx
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy import Engine
from sqlmodel import Session, select

from agent.api.app import create_app
from agent.outbox.models import OutboxMessage, OutboxState
from agent.settings import Settings
from agent.store.db import make_engine
from sandbox.aws import SANDBOX_CREDENTIALS, SANDBOX_REGION
from sandbox.evaluation.approvers import Approvers, ScenarioClock
from sandbox.evaluation.arize import after_settled, arize_settings, observe_arize
from sandbox.evaluation.compare import compare
from sandbox.evaluation.observe import Observation, observe, summarise
from sandbox.evaluation.scenario import (
    ANALYST_MODEL,
    AlertStep,
    Scenario,
    ScenarioError,
    StagedWorld,
    WorldChange,
    load_scenario,
    stage_world,
)
from sandbox.server import EmulatorServer
from sandbox.stack import DEMO_LOG_GROUP, SandboxStack

__all__ = [
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "format_table",
    "find_scenarios",
    "load_scenario",
    "run_all",
    "run_scenario",
    "to_json",
]

FINISHED = ("completed", "failed", "skipped")
SIGNING_SECRET = secrets.token_hex(16)
# Scenarios spend most of their time waiting on probes and timeouts, not on the CPU: two per
# core keep a 2-core machine busy without starving the service under test.
DEFAULT_JOBS = max(1, min(8, 2 * (os.cpu_count() or 1)))
APPROVAL_OUTCOMES = ("approved", "rejected", "expired", "cancelled")
ACTION_ORDER = ("failover", "rollback_prompt", "rollback", "failback", "page", "notify")
Outcome = Literal["pass", "fail", "skip"]


@dataclass
class ScenarioResult:
    """How one scenario went: pass, fail (with the reasons) or skip, and what was seen."""

    name: str
    outcome: Outcome
    expected: str
    got: str
    failures: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    """From the first alert posted until every alert had settled."""
    total_seconds: float = 0.0
    """Including starting and stopping the sandbox."""
    llm: bool = False
    llm_calls: int = 0
    observation: Observation | None = None

    @property
    def passed(self) -> bool:
        """Tell whether the scenario passed."""
        return self.outcome == "pass"


class _ScenarioSettings(Settings):
    """Settings from the scenario alone: no environment variable or .env file leaks in."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def run_scenario(scenario: Scenario, *, workdir: Path, llm: bool = False) -> ScenarioResult:
    """Run one scenario in a fresh sandbox under `workdir` and score it against its expectations."""
    started = time.monotonic()
    expected_text = summarise(scenario.expected)
    if scenario.world.requires_llm and not llm:
        return ScenarioResult(
            scenario.name, "skip", expected_text, "-", ["needs the sandbox analyst (--llm)"]
        )
    workdir.mkdir(parents=True, exist_ok=True)
    breach_time = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    steps = [step.model_copy(update={"body": step.timed(breach_time)}) for step in scenario.steps]
    failures: list[str] = []
    observation: Observation | None = None
    elapsed = 0.0
    # moto keeps its state per process, not per server: a log group of its own keeps one
    # scenario's log lines out of the next one's investigation.
    stack = SandboxStack(workdir / "sandbox", log_group=f"{DEMO_LOG_GROUP}/{secrets.token_hex(6)}")
    servers: list[EmulatorServer] = []
    try:
        stack.start()
        breach = steps[0].breaches()[0]
        staged = stage_world(
            stack, scenario.world, workdir, breach=breach, llm=llm, servers=servers
        )
        settings = _settings(scenario, stack, staged, workdir, llm=llm)
        scenario_clock = ScenarioClock()
        env = _service_environment(stack, staged)
        app = create_app(settings, now=scenario_clock.now, env=env)
        servers.append(EmulatorServer(app, lifespan="on").start())
        approvers = Approvers(
            scenario.world.approval,
            stack=stack,
            url=servers[-1].url,
            signing_secret=SIGNING_SECRET,
            engine=make_engine(settings.database_url),
            clock=scenario_clock,
            answers=scenario.world.approvals,
        )
        changes = _Changes(scenario.world.changes, stack, staged)
        token = settings.webhook_token.get_secret_value()
        client = _Client(servers[-1].url, token, approvers, changes)
        client.deploy(scenario, breach_time, staged)
        clock = time.monotonic()
        deadline = clock + scenario.world.timeout_seconds
        arize_engine = make_engine(settings.database_url)
        try:
            failures += client.play(steps, deadline)
            failures += after_settled(stack, scenario.world.arize, arize_engine, deadline)
            failures += _outbox_sent(arize_engine, deadline)
        finally:
            changes.stop()
        elapsed = time.monotonic() - clock
        observation = observe(settings, stack, staged)
        observation.refused_clicks = approvers.refused
        observation.arize = observe_arize(stack, scenario.world.arize, arize_engine)
        arize_engine.dispose()
    except Exception as exc:  # a broken run is a failed scenario, not the end of the evaluation
        failures.append(f"the run broke: {type(exc).__name__}: {exc}")
    finally:
        for server in reversed(servers):
            server.stop()
        stack.stop()
    if observation is not None:
        failures += compare(scenario.expected, observation, llm=llm)
    return ScenarioResult(
        name=scenario.name,
        outcome="fail" if failures else "pass",
        expected=expected_text,
        got=observation.summary() if observation is not None else "-",
        failures=failures,
        elapsed_seconds=round(elapsed, 2),
        total_seconds=round(time.monotonic() - started, 2),
        llm=llm,
        llm_calls=observation.llm_calls if observation is not None else 0,
        observation=observation,
    )


def find_scenarios(folder: Path) -> list[Path]:
    """Return the scenario folders (those holding a world.yaml) under `folder`, sorted by name."""
    return sorted(path.parent for path in Path(folder).glob("*/world.yaml"))


def run_all(
    paths: Sequence[Path],
    *,
    llm: bool = False,
    jobs: int = DEFAULT_JOBS,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[ScenarioResult]:
    """Run every scenario folder, `jobs` at a time, each in a process of its own.

    Results come back in the order of `paths`; `progress(done, total, name)` after each ends.
    A process per scenario (spawned, not forked) shares nothing with the others: moto's
    state, the service's module-level caches and the emulators' ports are its own.
    """
    results: list[ScenarioResult | None] = [None] * len(paths)
    with TemporaryDirectory(prefix="remediator-eval-") as scratch:
        work = [(Path(path), Path(scratch) / f"{index:03d}") for index, path in enumerate(paths)]
        if jobs <= 1:
            for index, (path, workdir) in enumerate(work):
                results[index] = run_folder(path, workdir, llm)
                if progress is not None:
                    progress(index + 1, len(paths), path.name)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=context, max_tasks_per_child=1) as pool:
                futures: dict[Future[ScenarioResult], int] = {
                    pool.submit(run_folder, path, workdir, llm): index
                    for index, (path, workdir) in enumerate(work)
                }
                done = 0
                for future in as_completed(futures):
                    index = futures[future]
                    results[index] = _result_of(future, work[index][0])
                    done += 1
                    if progress is not None:
                        progress(done, len(paths), work[index][0].name)
    return [r for r in results if r is not None]


def _result_of(future: Future[ScenarioResult], path: Path) -> ScenarioResult:
    try:
        return future.result()
    except Exception as exc:  # a crashed worker process is that scenario's failure
        return ScenarioResult(path.name, "fail", "-", "-", [f"the run broke: {exc!r}"])


def run_folder(path: Path, workdir: Path, llm: bool) -> ScenarioResult:
    """Load and run one scenario folder (a failure to load is a failed scenario)."""
    quiet_logs()
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        return ScenarioResult(path.name, "fail", "-", "-", [f"not loaded: {exc}"])
    return run_scenario(scenario, workdir=workdir, llm=llm)


def quiet_logs() -> None:
    """Keep the service's own logs out of the table (a spawned process starts unconfigured)."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "botocore", "httpx", "werkzeug"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def format_table(results: Sequence[ScenarioResult], *, wall_seconds: float | None = None) -> str:
    """Return the results as a plain-text table, the slowest five, and each failure's reasons."""
    header = ("scenario", "expected", "got", "result", "time", "LLM calls")
    rows = [
        (
            r.name,
            r.expected,
            r.got,
            r.outcome.upper(),
            f"{r.elapsed_seconds:.1f}s",
            str(r.llm_calls),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    counts = Counter(r.outcome for r in results)
    total = sum(r.total_seconds for r in results)
    wall = f" ({wall_seconds:.1f}s wall clock)" if wall_seconds is not None else ""
    lines.append(
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped "
        f"of {len(results)} in {total:.1f}s{wall}"
    )
    slowest = sorted(results, key=lambda r: r.total_seconds, reverse=True)[:5]
    lines.append(
        "slowest: " + ", ".join(f"{r.name} {r.total_seconds:.1f}s" for r in slowest)
        if slowest
        else "slowest: -"
    )
    for result in results:
        if result.outcome != "pass":
            lines.append(f"{result.name} ({result.outcome}):")
            lines += [f"  - {reason}" for reason in result.failures]
    return "\n".join(line.rstrip() for line in lines)


def to_json(results: Sequence[ScenarioResult]) -> str:
    """Return the results as a JSON document (one object per scenario)."""
    return json.dumps({"results": [asdict(result) for result in results]}, indent=2, default=str)


def _outbox_sent(engine: Engine, deadline: float) -> list[str]:
    """Wait until the Slack outbox holds nothing waiting (a busy or throttled channel's messages
    go at its pace, after the runs); return a problem if some still wait at the deadline."""
    while True:
        with Session(engine) as session:
            waiting = session.exec(
                select(OutboxMessage.key).where(OutboxMessage.state == OutboxState.pending)
            ).all()
        if not waiting:
            return []
        if time.monotonic() >= deadline:
            return [f"slack: {len(waiting)} message(s) still waiting in the outbox at the deadline"]
        time.sleep(0.1)


def _service_environment(stack: SandboxStack, staged: StagedWorld) -> dict[str, str]:
    """Return where the service reads the catalog's secrets and the sandbox's AWS credentials."""
    return {**SANDBOX_CREDENTIALS, "AWS_DEFAULT_REGION": SANDBOX_REGION, **staged.env}


def _settings(
    scenario: Scenario, stack: SandboxStack, staged: StagedWorld, workdir: Path, *, llm: bool
) -> Settings:
    values: dict[str, Any] = {
        "env": "dev",
        "database_url": f"sqlite:///{workdir / 'remediator.db'}",
        "webhook_token": secrets.token_urlsafe(24),
        "audit_key": secrets.token_urlsafe(32),
        "audit_signing_key_file": workdir / "audit-signing-key.pem",
        "audit_checkpoint_seconds": 0,
        "worker_poll_seconds": 0.05,
        "catalog_file": staged.catalog,
        "runbooks_dir": staged.runbooks,
        "pagerduty_routing_key": stack.routing_key,
        "pagerduty_events_url": stack.pagerduty_url,
        "pagerduty_ca_bundle": stack.cert_path,
        "slack_bot_token": stack.slack_token,
        "slack_base_url": stack.slack_url,
        "slack_channel": stack.channel,
        # Through the fault proxy: CloudWatch can be slow or fail while moto stays whole.
        "aws_endpoint_url": staged.cloudwatch_url,
        "aws_region": SANDBOX_REGION,
        "cloudwatch_log_groups": [stack.log_group],
        "logs_query_timeout_seconds": 5,
        "slack_signing_secret": SIGNING_SECRET,
    }
    if llm:
        values.update(
            analyst_base_url=stack.urls["openai"] + "/v1",
            analyst_model=ANALYST_MODEL,
            analyst_api_key=stack.openai_key,
        )
    values.update(arize_settings(stack, scenario.world.arize))
    if staged.prompts is not None:
        values.update(staged.prompts.settings())
    values.update(scenario.world.settings.model_dump(exclude_none=True))
    return _ScenarioSettings(**values)


class _Changes:
    """The world's changes during the run: before a step, or on a timer from the first alert."""

    def __init__(self, changes: list[WorldChange], stack: SandboxStack, staged: StagedWorld):
        self._changes = changes
        self._stack = stack
        self._staged = staged
        self._timers: list[threading.Timer] = []

    def before(self, step: int) -> None:
        """Apply the changes due before this step is posted."""
        for change in self._changes:
            if change.before_step == step:
                self._staged.set(self._stack, change)

    def posted(self) -> None:
        """Start the timed changes' clocks when the first alert has been posted."""
        if self._timers:
            return
        for change in self._changes:
            if change.after_seconds is not None:
                due = change.after_seconds
                timer = threading.Timer(due, self._staged.set, (self._stack, change))
                timer.daemon = True
                timer.start()
                self._timers.append(timer)
        if not self._timers:
            self._timers.append(threading.Timer(0, lambda: None))  # started: nothing timed

    def stop(self) -> None:
        """Cancel the changes that have not happened yet."""
        for timer in self._timers:
            timer.cancel()


class _Client:
    """The scenario's side of the service's HTTP API."""

    def __init__(self, url: str, token: str, approvers: Approvers, changes: _Changes) -> None:
        self._approvers = approvers
        self._changes = changes
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False
        )

    def deploy(self, scenario: Scenario, breach_time: datetime, staged: StagedWorld) -> None:
        """Record the world's deployments, timed relative to the breach."""
        for change in scenario.world.deployments:
            payload = change.model_dump(exclude_none=True, exclude={"minutes_before_breach"})
            if staged.prompts is not None:
                payload = staged.prompts.deployment(payload)
            moment = breach_time - timedelta(minutes=change.minutes_before_breach)
            payload["deployed_at"] = moment.isoformat()
            self._http.post("/events/deployments", json=payload).raise_for_status()

    def play(self, steps: list[AlertStep], deadline: float) -> list[str]:
        """Post each step, wait as it says, then wait for every alert; return what went wrong."""
        posted: list[str] = []
        problems: list[str] = []
        for index, step in enumerate(steps):
            if step.delay_seconds:
                time.sleep(step.delay_seconds)
            self._changes.before(index)
            path = "/webhooks/alertmanager" if step.alertmanager else "/webhooks/arize"
            answer = self._http.post(path, json=step.body)
            if answer.status_code not in (200, 202):
                problems.append(
                    f"step {index}: {path} answered {answer.status_code}: {answer.text}"
                )
                continue
            self._changes.posted()
            body = answer.json()
            ids = (
                [a["alert_id"] for a in body["alerts"]] if step.alertmanager else [body["alert_id"]]
            )
            posted += ids
            if step.then != "posted" and not self._wait(ids, step.then, deadline):
                problems.append(f"step {index}: its alerts were not {step.then} in time")
        if not self._wait(posted, "settled", deadline):
            problems.append("timed out waiting for every alert and investigation to end")
        for alert_id in dict.fromkeys(posted):
            state = self._http.get(f"/alerts/{alert_id}").json()
            if state["state"] == "failed":
                problems.append(f"alert {alert_id} failed: {state.get('error')}")
        return problems

    def _held(self, alert: dict[str, Any]) -> bool:
        """Tell whether the alert's incident is resolved and waits only for a later try of
        something held (a failback onto a primary still failing), not for a person."""
        return (
            alert.get("incident_status") == "resolved"
            and alert["incident_run_state"] == "waiting"
            and not self._approvers.waiting_on(str(alert["incident_id"]))
        )

    def _wait(self, ids: list[str], until: str, deadline: float) -> bool:
        pending = list(dict.fromkeys(ids))
        while pending:
            body = self._http.get(f"/alerts/{pending[0]}").json()
            correlated = body["state"] in ("done", "failed")
            settled = body["state"] == "failed" or (
                correlated
                and (
                    body["incident_id"] is None
                    or body["incident_run_state"] in FINISHED
                    or self._held(body)
                )
            )
            if settled or (until == "correlated" and correlated):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                return False
            self._approvers.answer_pending()
            time.sleep(0.05)
        return True
