"""Scored scenario evaluation: play each scenario against the sandbox and compare with expected.

Each run gets a fresh sandbox, a fresh SQLite database and the service in-process; the world is
staged, the alerts are posted over HTTP, and once every alert has settled the audit trail and the
emulators say what the agent did. The service reads the catalog's secrets and the sandbox's
AWS credentials from an environment of the run's own; the process environment is left alone.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Literal

import httpx
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlmodel import Session, col, select

from agent.api.app import create_app
from agent.incidents.models import Incident
from agent.settings import Settings
from agent.store.db import make_engine
from audit.models import AuditEvent
from sandbox.aws import SANDBOX_CREDENTIALS, SANDBOX_REGION
from sandbox.evaluation.approvers import Approvers, ScenarioClock
from sandbox.evaluation.scenario import (
    ANALYST_MODEL,
    AlertStep,
    Expected,
    ExpectedFailover,
    Scenario,
    ScenarioError,
    StagedWorld,
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
APPROVAL_OUTCOMES = ("approved", "rejected", "expired", "cancelled")
ACTION_ORDER = ("failover", "rollback", "failback", "page", "notify")
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


@dataclass
class SeenAction:
    """An action the audit trail shows the agent took, and its outcome."""

    kind: str
    status: str
    severity: str | None = None


@dataclass
class SeenIncident:
    """One incident as its audit events tell it."""

    id: str
    run_state: str
    runbook: str | None = None
    diagnosis: dict[str, Any] | None = None
    actions: list[SeenAction] = field(default_factory=list)
    not_taken: list[str] = field(default_factory=list)
    verification: list[str] = field(default_factory=list)
    analyst: list[str] = field(default_factory=list)
    """Per consultation: adopted, discarded or unusable."""
    approvals: list[str] = field(default_factory=list)
    """Each approval request's outcome: approved, rejected, expired or cancelled."""
    evidence: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """Return the diagnosis kind, or `none` when the run made none."""
        return str(self.diagnosis["kind"]) if self.diagnosis else "none"


@dataclass
class Observation:
    """What the agent did in a scenario: its audit trail and the emulators' records."""

    incidents: list[SeenIncident]
    pages: list[tuple[str, str]]
    """(team, severity) of each PagerDuty trigger; the settings' own key is `on-call`."""
    failovers: list[dict[str, Any]]
    slack_messages: int
    llm_calls: int
    refused_clicks: int = 0

    @property
    def actions(self) -> list[SeenAction]:
        """Return the actions of every incident."""
        return [a for incident in self.incidents for a in incident.actions]

    def evidence_text(self) -> str:
        """Return every diagnosis, candidate and probe summary as one lower-case text."""
        parts: list[str] = []
        for incident in self.incidents:
            parts += incident.evidence
            diagnosis = incident.diagnosis or {}
            parts.append(str(diagnosis.get("summary", "")))
            for candidate in diagnosis.get("candidates", []):
                parts += candidate.get("evidence_for", []) + candidate.get("evidence_against", [])
        return "\n".join(parts).casefold()

    def summary(self) -> str:
        """Return the diagnoses, actions and pages in one short line."""
        actions = [_action_text(a.kind, a.status) for a in self.actions]
        actions += [f"{kind}:not_taken" for i in self.incidents for kind in i.not_taken]
        return _line(
            [i.kind for i in self.incidents] or ["no incident"],
            actions,
            [f"{team}:{severity}" for team, severity in self.pages],
        )


def summarise(expected: Expected) -> str:
    """Return what a scenario expects in one short line, as `Observation.summary` words it."""
    actions = [_action_text(a.kind, a.status) for a in expected.actions or []]
    actions += [f"{kind}:not_taken" for kind in expected.not_taken or []]
    pages = expected.pages if isinstance(expected.pages, dict) else {}
    return _line(
        expected.diagnoses() or ["no incident"],
        actions if expected.actions is not None else ["…"],
        [f"{team}:{sev}" for team, severities in pages.items() for sev in severities],
    )


def _action_text(kind: str, status: str) -> str:
    return kind if status == "done" else f"{kind}:{status}"


def _line(diagnoses: list[str], actions: list[str], pages: list[str]) -> str:
    # Remedies first, then who is told (the order runbooks list actions in).
    rank = {kind: i for i, kind in enumerate(ACTION_ORDER)}
    actions = sorted(actions, key=lambda text: rank.get(text.split(":")[0], len(rank)))
    return (
        f"{', '.join(diagnoses)} | {', '.join(actions) or 'no action'} | "
        f"{'paged ' + ', '.join(pages) if pages else 'no page'}"
    )


TAKEN = ("done", "failed", "dry_run")


def compare(expected: Expected, seen: Observation, *, llm: bool) -> list[str]:
    """Return every way the observation differs from the expectations (empty: it passed)."""
    problems: list[str] = []
    incidents = seen.incidents
    if len(incidents) != expected.incidents:
        problems.append(f"incidents: expected {expected.incidents}, got {len(incidents)}")
    got_kinds = [i.kind for i in incidents]
    if got_kinds[: len(expected.diagnoses())] != expected.diagnoses():
        problems.append(f"diagnosis: expected {expected.diagnoses()}, got {got_kinds}")
    for incident in incidents:
        if incident.run_state != expected.run_state:
            problems.append(f"run state: expected {expected.run_state}, got {incident.run_state}")
        if expected.runbook and incident.runbook not in (None, expected.runbook):
            problems.append(f"runbook: expected {expected.runbook}, got {incident.runbook}")
    diagnosed = [i.diagnosis for i in incidents if i.diagnosis]
    if expected.owner and not any(d.get("owner_hint") == expected.owner for d in diagnosed):
        owners = [d.get("owner_hint") for d in diagnosed]
        problems.append(f"owner: expected {expected.owner}, got {owners}")
    if expected.component and not all(
        expected.component in str(d.get("component")) for d in diagnosed
    ):
        components = [d.get("component") for d in diagnosed]
        problems.append(f"component: expected {expected.component!r} in {components}")
    problems += _compare_actions(expected, seen)
    problems += _compare_effects(expected, seen)
    text = seen.evidence_text()
    problems += [
        f"evidence: no {s!r} in the findings" for s in expected.evidence if s.casefold() not in text
    ]
    if (
        expected.max_slack_messages is not None
        and seen.slack_messages > expected.max_slack_messages
    ):
        problems.append(
            f"slack: {seen.slack_messages} messages, at most {expected.max_slack_messages} expected"
        )
    if expected.approvals is not None:
        got_approvals = [a for i in incidents for a in i.approvals]
        if got_approvals != expected.approvals:
            problems.append(f"approvals: expected {expected.approvals}, got {got_approvals}")
    if expected.refused_clicks is not None and seen.refused_clicks != expected.refused_clicks:
        problems.append(
            f"refused clicks: expected {expected.refused_clicks}, got {seen.refused_clicks}"
        )
    if expected.max_llm_calls is not None and seen.llm_calls > expected.max_llm_calls:
        problems.append(f"LLM calls: {seen.llm_calls}, at most {expected.max_llm_calls} expected")
    if llm and expected.analyst is not None:
        consultations = [c for i in incidents for c in i.analyst]
        if expected.analyst.consulted != bool(consultations):
            problems.append(
                f"analyst: expected consulted={expected.analyst.consulted}, got {consultations}"
            )
        if expected.analyst.proposal and expected.analyst.proposal not in consultations:
            problems.append(
                f"analyst: expected a proposal {expected.analyst.proposal}, got {consultations}"
            )
    return problems


def _compare_actions(expected: Expected, seen: Observation) -> list[str]:
    problems = []
    taken = [a for a in seen.actions if a.status in TAKEN]
    for action in taken:
        if action.kind in expected.forbidden:
            problems.append(f"forbidden action taken: {action.kind} ({action.status})")
    if (
        "failover" in expected.forbidden
        and seen.failovers
        and not any(a.kind == "failover" for a in taken)
    ):
        problems.append(f"forbidden action taken: failover (the gateway moved: {seen.failovers})")
    if expected.actions is not None:
        missing = list(expected.actions)
        extra = []
        for action in sorted(seen.actions, key=lambda a: a.severity is None):
            match = next(
                (
                    e
                    for e in missing
                    if (e.kind, e.status) == (action.kind, action.status)
                    and e.severity in (None, action.severity)
                ),
                None,
            )
            if match is None:
                extra.append(action)
            else:
                missing.remove(match)
        if missing or extra:
            problems.append(
                "actions: "
                + "; ".join(
                    [f"missing {e.kind}:{e.status}" for e in missing]
                    + [f"unexpected {a.kind}:{a.status}" for a in extra]
                )
            )
    if expected.not_taken is not None:
        got = sorted(kind for i in seen.incidents for kind in i.not_taken)
        if got != sorted(expected.not_taken):
            problems.append(f"not taken: expected {sorted(expected.not_taken)}, got {got}")
    return problems


def _compare_effects(expected: Expected, seen: Observation) -> list[str]:
    problems = []
    if expected.pages is not None:
        want = {} if expected.pages == "none" else expected.pages
        got: dict[str, list[str]] = {}
        for team, severity in seen.pages:
            got.setdefault(team, []).append(severity)
        if got != want:
            problems.append(f"pages: expected {want or 'none'}, got {got or 'none'}")
    if expected.failover == "none" and seen.failovers:
        problems.append(f"failover: expected none, got {seen.failovers}")
    elif isinstance(expected.failover, ExpectedFailover):
        wanted = expected.failover.model_dump(exclude_none=True)
        first = seen.failovers[0] if seen.failovers else {}
        if not first or any(first.get(k) != v for k, v in wanted.items()):
            problems.append(f"failover: expected {wanted}, got {seen.failovers or 'none'}")
    if expected.verification is not None:
        got_verdicts = [v for i in seen.incidents for v in i.verification]
        if (expected.verification == "none") != (not got_verdicts) or (
            expected.verification != "none" and expected.verification not in got_verdicts
        ):
            problems.append(
                f"verification: expected {expected.verification}, got {got_verdicts or 'none'}"
            )
    return problems


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
    try:
        stack.start()
        breach = steps[0].breaches()[0]
        staged = stage_world(stack, scenario.world, workdir, breach=breach, llm=llm)
        settings = _settings(scenario, stack, staged, workdir, llm=llm)
        scenario_clock = ScenarioClock()
        app = create_app(settings, now=scenario_clock.now, env=_service_environment(stack))
        server = EmulatorServer(app, lifespan="on").start()
        try:
            approvers = Approvers(
                scenario.world.approval,
                stack=stack,
                url=server.url,
                signing_secret=SIGNING_SECRET,
                engine=make_engine(settings.database_url),
                clock=scenario_clock,
            )
            client = _Client(server.url, settings.webhook_token.get_secret_value(), approvers)
            client.deploy(scenario, breach_time)
            clock = time.monotonic()
            deadline = clock + scenario.world.timeout_seconds
            failures += client.play(steps, deadline)
            elapsed = time.monotonic() - clock
            observation = _observe(settings, stack, staged)
            observation.refused_clicks = approvers.refused
        finally:
            server.stop()
    except Exception as exc:  # a broken run is a failed scenario, not the end of the evaluation
        failures.append(f"the run broke: {type(exc).__name__}: {exc}")
    finally:
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
    progress: Callable[[int, int, str], None] | None = None,
) -> list[ScenarioResult]:
    """Load and run every scenario folder in order; `progress(done, total, name)` after each."""
    results = []
    with TemporaryDirectory(prefix="remediator-eval-") as scratch:
        for index, path in enumerate(paths, start=1):
            try:
                scenario = load_scenario(Path(path))
            except ScenarioError as exc:
                name = Path(path).name
                results.append(ScenarioResult(name, "fail", "-", "-", [f"not loaded: {exc}"]))
            else:
                results.append(
                    run_scenario(scenario, workdir=Path(scratch) / f"{index:03d}", llm=llm)
                )
            if progress is not None:
                progress(index, len(paths), results[-1].name)
    return results


def format_table(results: Sequence[ScenarioResult]) -> str:
    """Return the results as a plain-text table, with each failure's reasons below it."""
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
    lines.append(
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped "
        f"of {len(results)} in {total:.1f}s"
    )
    for result in results:
        if result.outcome != "pass":
            lines.append(f"{result.name} ({result.outcome}):")
            lines += [f"  - {reason}" for reason in result.failures]
    return "\n".join(line.rstrip() for line in lines)


def to_json(results: Sequence[ScenarioResult]) -> str:
    """Return the results as a JSON document (one object per scenario)."""
    return json.dumps({"results": [asdict(result) for result in results]}, indent=2, default=str)


def _service_environment(stack: SandboxStack) -> dict[str, str]:
    """Return where the service reads the catalog's secrets and the sandbox's AWS credentials."""
    return {**SANDBOX_CREDENTIALS, "AWS_DEFAULT_REGION": SANDBOX_REGION, **stack.catalog_env()}


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
        "aws_endpoint_url": stack.aws_url,
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
    values.update(scenario.world.settings.model_dump(exclude_none=True))
    return _ScenarioSettings(**values)


class _Client:
    """The scenario's side of the service's HTTP API."""

    def __init__(self, url: str, token: str, approvers: Approvers) -> None:
        self._approvers = approvers
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False
        )

    def deploy(self, scenario: Scenario, breach_time: datetime) -> None:
        """Record the world's deployments, timed relative to the breach."""
        for change in scenario.world.deployments:
            payload = change.model_dump(exclude_none=True, exclude={"minutes_before_breach"})
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
            path = "/webhooks/alertmanager" if step.alertmanager else "/webhooks/arize"
            answer = self._http.post(path, json=step.body)
            if answer.status_code not in (200, 202):
                problems.append(
                    f"step {index}: {path} answered {answer.status_code}: {answer.text}"
                )
                continue
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

    def _wait(self, ids: list[str], until: str, deadline: float) -> bool:
        pending = list(dict.fromkeys(ids))
        while pending:
            body = self._http.get(f"/alerts/{pending[0]}").json()
            correlated = body["state"] in ("done", "failed")
            settled = body["state"] == "failed" or (
                correlated
                and (body["incident_id"] is None or body["incident_run_state"] in FINISHED)
            )
            if settled or (until == "correlated" and correlated):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                return False
            self._approvers.answer_pending()
            time.sleep(0.05)
        return True


def _observe(settings: Settings, stack: SandboxStack, staged: StagedWorld) -> Observation:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            incidents = list(session.exec(select(Incident).order_by(col(Incident.opened_at))))
            events = list(session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))))
    finally:
        engine.dispose()
    seen = [
        _incident(
            incident, [(e.kind, json.loads(e.data)) for e in events if e.incident_id == incident.id]
        )
        for incident in incidents
    ]
    teams = {key: team for team, key in stack.team_keys.items()} | {stack.routing_key: "on-call"}
    failovers = []
    for change in stack.gateway.changes():
        route = change["route"]
        if staged.upstream.get(route["model"]) == "primary":
            continue  # a failback to the route from before the incident
        failovers.append(
            {
                "target": staged.upstream.get(route["model"], route["model"]),
                "provider": route.get("provider"),
                "region": route.get("region"),
            }
        )
    return Observation(
        incidents=seen,
        pages=[
            (teams.get(t["routing_key"], "?"), t["payload"]["severity"])
            for t in stack.pagerduty.triggers()
        ],
        failovers=failovers,
        slack_messages=len(stack.slack.snapshot()["messages"]),
        llm_calls=len(stack.openai.received(model=ANALYST_MODEL)),
    )


def _incident(incident: Incident, events: list[tuple[str, dict[str, Any]]]) -> SeenIncident:
    seen = SeenIncident(id=str(incident.id), run_state=str(incident.run_state))
    started: tuple[str, str | None] | None = None
    notices: list[SeenAction] = []
    for kind, data in events:
        if kind == "runbook.matched":
            seen.runbook = str(data.get("runbook", "")).split("@")[0]
        elif kind == "diagnosis.made":
            seen.diagnosis = data
        elif kind == "probe.completed":
            seen.evidence.append(str(data.get("summary", "")))
        elif kind in ("decision.made", "decision.updated"):
            # Notices are told in Slack as planned; the plan after the approvals is the last word.
            notices = [
                SeenAction("notify", "done", item.get("severity"))
                for item in data.get("plan", [])
                if item.get("kind") == "notify" and item.get("status") == "planned"
            ]
        elif kind.startswith("approval.") and kind.split(".", 1)[1] in APPROVAL_OUTCOMES:
            seen.approvals.append(kind.split(".", 1)[1])
        elif kind == "action.started":
            started = (str(data.get("action")), _severity(str(data.get("summary", ""))))
        elif kind in ("action.succeeded", "action.failed") and started is not None:
            status = "done" if kind == "action.succeeded" else "failed"
            seen.actions.append(SeenAction(started[0], status, started[1]))
            started = None
        elif kind == "action.dry_run":
            seen.actions.append(SeenAction(str(data.get("kind")), "dry_run", data.get("severity")))
        elif kind == "action.proposed":
            seen.actions.append(SeenAction(str(data.get("kind", "rollback")), "proposed", None))
        elif kind == "action.not_taken":
            seen.not_taken.append(str(data.get("kind")))
        elif kind.startswith("verification."):
            seen.verification.append(kind.split(".", 1)[1])
            seen.evidence.append(str(data.get("summary", "")))
        elif kind == "analyst.consulted":
            seen.analyst.append("adopted" if data.get("status") == "ok" else "unusable")
        elif kind == "analyst.proposal_discarded" and seen.analyst:
            seen.analyst[-1] = "discarded"
    seen.actions += notices
    return seen


def _severity(summary: str) -> str | None:
    """Return the severity a page's `action.started` summary names ("page X at error …")."""
    for severity in ("critical", "error", "warning", "info"):
        if f" at {severity}" in summary:
            return severity
    return None
