"""Scenario folders for the evaluation: their schema, loading, and staging a world in the sandbox.

A scenario is a folder with `alert.json` (one alert body or a list of `AlertStep`s), `world.yaml`
(`World`: the state of every outside system) and `expected.yaml` (`Expected`: what a correct agent
does there). scenarios/README.md describes the format for scenario authors.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.alerts.alertmanager import map_alertmanager_payload
from agent.alerts.arize import BreachMappingError, load_field_paths, map_arize_payload
from agent.alerts.models import Breach
from agent.changes.models import ChangeKind
from runbooks.library import SHIPPED_RUNBOOKS
from runbooks.loader import ConfigError, parse_model
from runbooks.schema import ActionKind, Runbook, Severity
from runbooks.schema import Diagnosis as DiagnosisKind
from sandbox.aws import demo_log_lines, logs_client, seed_log_lines
from sandbox.evaluation.arize import ArizeWorld, ExpectedArize, stage_arize
from sandbox.evaluation.arize_prompts import (
    PromptWorld,
    StagedPrompts,
    check_deployments,
    stage_prompts,
)
from sandbox.evaluation.catalog import CatalogWorld, RouteModel, write_catalog
from sandbox.evaluation.causes import ExpectedCause
from sandbox.evaluation.checks import Moment, Order, Texts
from sandbox.evaluation.systems import (
    LASTING,
    EmbeddingsWorld,
    EndpointWorld,
    Strict,
    Systems,
    ToolsWorld,
    VectorDbWorld,
    WorldChange,
    set_systems,
)
from sandbox.fault_proxy import FaultProxyState, create_fault_proxy
from sandbox.openai_state import ToolCall
from sandbox.server import EmulatorServer
from sandbox.stack import CHAT_MODEL, DEMO_SERVICE, DIAGNOSTIC_ANSWERS, FALLBACK_MODEL, SandboxStack

__all__ = [
    "LASTING",
    "CatalogWorld",
    "EmbeddingsWorld",
    "EndpointWorld",
    "ToolsWorld",
    "VectorDbWorld",
    "WorldChange",
]

ANALYST_MODEL = "analyst-model"
RouteName = Literal["primary", "backup-region", "fallback-model"]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
M = TypeVar("M", bound=BaseModel)


class RouteWorld(Strict):
    """Who serves a route: the gateway's primary route or one of the catalog's failover targets."""

    provider: str = Field("openai", pattern=r"^[a-z0-9][a-z0-9-]*$")
    region: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    model: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


DEFAULT_ROUTES: dict[str, RouteWorld] = {
    "primary": RouteWorld(provider="openai", region="eu-west-1", model=CHAT_MODEL),
    "backup-region": RouteWorld(provider="openai", region="us-east-1", model=CHAT_MODEL),
    "fallback-model": RouteWorld(provider="openai", region="eu-west-1", model=FALLBACK_MODEL),
}


class LogLine(Strict):
    """Log lines of a model: `count` copies of one message, minutes before the breach.

    `model` names another model writing to the same log group (default: the breached one).
    """

    msg: str = Field(min_length=1, max_length=500)
    model: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "ERROR"
    count: int = Field(1, ge=1, le=200)
    minutes_before: float = Field(5, ge=0, le=25)


class LogsWorld(Strict):
    """The service's logs: a preset plus extra lines, in CloudWatch (default) or GCP Logging.

    Presets: `quiet` (healthy traffic), `none` (no line at all), `missing` (the CloudWatch log
    group does not exist), `vector_timeouts` (the demo's vector store timeouts),
    `upstream_errors` (the model provider answering 503). A plain string line is written verbatim,
    `{model_id}` and `{model_version}` replaced.
    """

    preset: Literal["quiet", "none", "missing", "vector_timeouts", "upstream_errors"] = "quiet"
    lines: list[LogLine | str] = Field(default_factory=list)
    source: Literal["cloudwatch", "gcp"] = "cloudwatch"

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"preset": data}
        if isinstance(data, list):
            return {"preset": "none", "lines": data}
        return data


class DeploymentWorld(Strict):
    """A deployment recorded through POST /events/deployments (negative minutes: after it)."""

    kind: ChangeKind
    version: str | None = Field(None, min_length=1, max_length=200)
    """Required unless `arize_prompt` names the emulated prompt whose version this is."""
    previous_version: str | None = None
    minutes_before_breach: float = Field(ge=-120, le=7 * 24 * 60)
    service: str = DEMO_SERVICE
    model_id: str | None = None
    environment: str | None = None
    description: str | None = None
    arize_prompt: str | None = None
    """An emulated Arize prompt (`arize_prompts`); its version's id becomes `version`."""
    arize_version: int | None = Field(None, ge=1)
    """Which of that prompt's versions (1-based, in the order `arize_prompts` lists them)."""

    @model_validator(mode="after")
    def _version_given(self) -> DeploymentWorld:
        if self.version is None and self.arize_prompt is None:
            raise ValueError("give a version (or arize_prompt and arize_version)")
        return self


class AnalystWorld(Strict):
    """What the sandbox analyst model answers (with `llm`): a proposal, plain text, or an error."""

    hypothesis: dict[str, Any] | None = None
    proposal: dict[str, Any] | None = None
    text: str | None = None
    http_status: int | None = Field(None, ge=400, le=599)

    @model_validator(mode="after")
    def _one_form(self) -> AnalystWorld:
        forms = [self.proposal is not None, self.text is not None, self.http_status is not None]
        if sum(forms) != 1:
            raise ValueError("give exactly one of: hypothesis+proposal, text, http_status")
        if (self.hypothesis is None) != (self.proposal is None):
            raise ValueError("hypothesis and proposal go together")
        return self


class RunbooksWorld(Strict):
    """The runbooks the service loads: the shipped library, inline ones, or both."""

    shipped: bool = True
    inline: list[Runbook] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shipped(cls, data: Any) -> Any:
        return {"shipped": True} if data == "shipped" else data


class SettingsWorld(Strict):
    """Service settings a scenario may change (the runner sets every other one)."""

    group_wait_seconds: float | None = Field(None, ge=0, le=30)
    repeat_interval_seconds: float | None = Field(None, gt=0)
    page_severity: Severity | None = None
    logs_lookback_minutes: int | None = Field(None, gt=0)
    logs_query_timeout_seconds: float | None = Field(None, gt=0, le=30)


class ApprovalWorld(Strict):
    """What the approvers do when the agent asks for approval."""

    answer: Literal["approve", "reject", "none", "wait"] = "none"
    """`none` (default): nobody answers and the request expires (the clock is moved past it);
    `wait`: nobody answers and time does not jump (a resolve may cancel the request)."""
    by: str | None = Field(None, pattern=r"^[UW][A-Z0-9]{2,}$")
    """Who clicks (a Slack user id); default: the first approver listed in the request."""
    strangers: list[str] = Field(default_factory=list)
    """Slack users not on the list who click Approve first; each click must be refused."""
    after_seconds: float = Field(0, ge=0, le=60)
    """How long after the request appears in Slack the answer comes (real time)."""


class ApprovalAnswer(ApprovalWorld):
    """The answer to one approval request: the first unused entry of its action kind."""

    action: ActionKind | None = None
    """The action asked for (failover, failback, rollback, …); none: any request."""


class World(Strict):
    """The state of every outside system while the scenario's alerts arrive."""

    summary: str = ""
    requires_llm: bool = False
    vector_db: VectorDbWorld = Field(default_factory=VectorDbWorld)
    embeddings: EmbeddingsWorld = Field(default_factory=EmbeddingsWorld)
    routes: dict[RouteName, RouteWorld] = Field(default_factory=dict)
    endpoint: dict[str, EndpointWorld] = Field(default_factory=dict)
    """Region or provider → state; a provider's state applies to every route it serves."""
    tools: ToolsWorld = Field(default_factory=ToolsWorld)
    catalog: CatalogWorld = Field(default_factory=CatalogWorld)
    changes: list[WorldChange] = Field(default_factory=list)
    """How the world changes during the run (before a step, or seconds after the first alert)."""
    approvals: list[ApprovalAnswer] = Field(default_factory=list)
    """One answer per approval request, matched by action kind; the rest get `approval`."""
    logs: LogsWorld = Field(default_factory=LogsWorld)
    deployments: list[DeploymentWorld] = Field(default_factory=list)
    arize_prompts: list[PromptWorld] = Field(default_factory=list)
    """Prompts in the Arize emulator (`sandbox/evaluation/arize_prompts.py`)."""
    analyst: AnalystWorld | None = None
    runbooks: RunbooksWorld = Field(default_factory=RunbooksWorld)
    settings: SettingsWorld = Field(default_factory=SettingsWorld)
    approval: ApprovalWorld = Field(default_factory=ApprovalWorld)
    arize: ArizeWorld | None = None
    """Arize's REST API for the agent: the monitor the alert names (`sandbox.evaluation.arize`)."""
    timeout_seconds: float = Field(60, gt=0, le=600)

    @field_validator("endpoint")
    @classmethod
    def _endpoint_keys(
        cls, endpoint: dict[str, EndpointWorld], info: ValidationInfo
    ) -> dict[str, EndpointWorld]:
        _check_endpoint_keys(endpoint, info.data.get("routes", {}))
        return endpoint

    @model_validator(mode="after")
    def _change_keys(self) -> World:
        check_deployments(self.arize_prompts, self.deployments)
        if self.arize_prompts and self.arize is not None:
            # Two emulators (monitors and tags; prompts) with their own keys and addresses: the
            # service reaches one Arize API, so a world stages one of them.
            raise ValueError("arize and arize_prompts cannot be staged in one world (yet)")
        for index, change in enumerate(self.changes):
            try:
                _check_endpoint_keys(change.endpoint, self.routes)
            except ValueError as exc:
                raise ValueError(f"changes.{index}.endpoint: {exc}") from None
        return self

    def initial(self) -> Systems:
        """Return the systems as they are when the first alert arrives."""
        return Systems(
            vector_db=self.vector_db,
            embeddings=self.embeddings,
            endpoint=self.endpoint,
            tools=self.tools,
        )

    def all_routes(self) -> dict[str, RouteWorld]:
        """Return every route, the defaults completed by the scenario's `routes`."""
        return merge_routes(self.routes)


def _check_endpoint_keys(
    endpoint: Mapping[str, EndpointWorld], routes: Mapping[RouteName, RouteWorld]
) -> None:
    merged = merge_routes(routes).values()
    known = {r.region for r in merged} | {r.provider for r in merged}
    unknown = sorted(set(endpoint) - known)
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)}: no region or provider of the routes "
            f"(known: {', '.join(sorted(known))})"
        )


def merge_routes(routes: Mapping[RouteName, RouteWorld]) -> dict[str, RouteWorld]:
    """Return the default routes with these replacing theirs (a missing model kept)."""
    merged = dict(DEFAULT_ROUTES)
    for name, route in routes.items():
        merged[name] = route.model_copy(update={"model": route.model or merged[name].model})
    return merged


ActionStatus = Literal["done", "failed", "dry_run", "proposed"]


class ExpectedAction(Strict):
    """One action the agent takes, with its outcome (and, when given, its severity)."""

    kind: ActionKind
    status: ActionStatus = "done"
    severity: Severity | None = None


class ExpectedFailover(Strict):
    """Where traffic must have been moved."""

    target: str | None = None
    region: str | None = None
    provider: str | None = None


class ExpectedAnalyst(Strict):
    """What the analyst must have done (checked only when the run had one)."""

    consulted: bool = True
    proposal: Literal["adopted", "discarded", "unusable"] | None = None


RunState = Literal["completed", "skipped", "failed", "waiting"]


class Expected(Strict):
    """What a correct agent does in the scenario's world; an omitted key is not checked."""

    incidents: int = Field(1, ge=0, le=20)
    runbook: str | None = None
    diagnosis: list[Literal[DiagnosisKind, "none"]] = Field(min_length=1)
    """One kind for every incident, or a list of one per incident in the order they opened."""
    owner: Literal["vector_db", "embeddings"] | None = None
    component: str | None = None
    run_state: RunState | list[RunState] = "completed"
    """One state for every incident, or one per incident in the order they opened."""
    actions: list[ExpectedAction] | None = None
    """Every action taken, exactly (in any order); [] means none."""
    not_taken: list[ActionKind] | None = None
    forbidden: list[ActionKind] = Field(default_factory=list)
    pages: dict[str, list[Severity]] | Literal["none"] | None = None
    failover: ExpectedFailover | Literal["none"] | None = None
    verification: Literal["passed", "failed", "none"] | None = None
    evidence: list[str] = Field(default_factory=list)
    max_slack_messages: int | None = Field(None, ge=0)
    max_llm_calls: int | None = Field(None, ge=0)
    analyst: ExpectedAnalyst | None = None
    approvals: list[Literal["approved", "rejected", "expired", "cancelled"]] | None = None
    """Each approval request's outcome, in order; [] means none was asked for."""
    refused_clicks: int | None = Field(None, ge=0)
    """How many clicks (of the world's strangers, or a `by` not listed) the service refused."""
    order: list[Order] = Field(default_factory=list)
    """Moments that must happen, each before another one (if that one happens at all)."""
    within_seconds: dict[Moment, float] = Field(default_factory=dict)
    """Moments that must happen within so many seconds of the first alert (service time)."""
    slack: Texts | None = None
    pagerduty: Texts | None = None
    routes: dict[str, RouteName] | None = None
    """Service → the route it must be on at the end of the run."""
    prompt_labels: dict[str, dict[str, int | None]] | None = None
    """Emulated Arize prompt → label → the version (1-based) it must be on at the end."""
    arize: ExpectedArize | None = None
    """What the agent did with the world's Arize monitor (enrichment, resolve, tags)."""
    alerts: dict[str, int] | None = None
    """Team → how many PagerDuty alerts it holds (distinct dedup keys), exactly."""
    causes: list[ExpectedCause] | None = None
    """The causes linked, exactly: owner and services; [] means none."""

    @field_validator("diagnosis", mode="before")
    @classmethod
    def _one_for_all(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_per_incident(self) -> Expected:
        if len(self.diagnosis) not in (1, self.incidents):
            raise ValueError(
                f"diagnosis: {len(self.diagnosis)} given for {self.incidents} incident(s)"
            )
        return self

    def run_states(self, count: int) -> list[str]:
        """Return the expected run state of each of `count` incidents."""
        if isinstance(self.run_state, list):
            return [str(state) for state in self.run_state]
        return [str(self.run_state)] * count

    def diagnoses(self) -> list[str]:
        """Return the expected diagnosis of each incident."""
        kinds = [str(kind) for kind in self.diagnosis]
        return kinds * self.incidents if len(kinds) == 1 else kinds


class AlertStep(Strict):
    """One delivery of the scenario's alert sequence."""

    body: dict[str, Any]
    delay_seconds: float = Field(0, ge=0, le=60)
    at_minutes: float = Field(0, ge=-30, le=30)
    then: Literal["settled", "correlated", "posted"] = "settled"

    @property
    def alertmanager(self) -> bool:
        """Tell whether the body is an Alertmanager webhook (version 4) rather than Arize."""
        return str(self.body.get("version")) == "4"

    def breaches(self) -> list[Breach]:
        """Map the body as the service will (raises BreachMappingError)."""
        if self.alertmanager:
            return [breach for breach, _ in map_alertmanager_payload(self.body)]
        return [map_arize_payload(self.body, load_field_paths(None))]

    def timed(self, breach_time: datetime) -> dict[str, Any]:
        """Return the body with its times set to the breach time plus `at_minutes`."""
        moment = (breach_time + timedelta(minutes=self.at_minutes)).isoformat()
        moment = moment.replace("+00:00", "Z")
        body = copy.deepcopy(self.body)
        if not self.alertmanager:
            body["triggered_at"] = moment
            return body
        for alert in body.get("alerts", []):
            alert["startsAt"] = moment
            if str(alert.get("status")) == "resolved":
                alert["endsAt"] = moment
        return body


class ScenarioError(ValueError):
    """A scenario folder that cannot be run; the message names the file and the key."""


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: its alert steps, its world and what is expected."""

    name: str
    path: Path
    steps: list[AlertStep]
    world: World
    expected: Expected


def load_scenario(path: Path) -> Scenario:
    """Load and check a scenario folder, or raise ScenarioError naming file and key."""
    path = Path(path)
    problems: list[str] = []
    steps = _load_steps(path / "alert.json", problems)
    world = _load_yaml(path / "world.yaml", World, problems)
    expected = _load_yaml(path / "expected.yaml", Expected, problems)
    if problems or steps is None or world is None or expected is None:
        raise ScenarioError("\n".join(problems))
    for index, change in enumerate(world.changes):
        if change.before_step is not None and change.before_step >= len(steps):
            problems.append(
                f"{path / 'world.yaml'}: changes.{index}.before_step: {change.before_step} "
                f"is past the last step ({len(steps) - 1})"
            )
    unknown = sorted(set(expected.routes or {}) - set(world.catalog.services))
    if unknown:
        problems.append(
            f"{path / 'expected.yaml'}: routes: {', '.join(unknown)}: not a service of the "
            f"catalog (services: {', '.join(world.catalog.services)})"
        )
    if problems:
        raise ScenarioError("\n".join(problems))
    return Scenario(path.name, path, steps, world, expected)


def _load_yaml(file: Path, model: type[M], problems: list[str]) -> M | None:
    try:
        return parse_model(file.read_text(encoding="utf-8"), model, file)
    except OSError as exc:
        problems.append(f"{file}: cannot read: {exc.strerror or exc}")
    except ConfigError as exc:
        problems.extend(exc.problems)
    return None


def _load_steps(file: Path, problems: list[str]) -> list[AlertStep] | None:
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(f"{file}: cannot read: {exc.strerror or exc}")
        return None
    except json.JSONDecodeError as exc:
        problems.append(f"{file}:{exc.lineno}: not valid JSON: {exc.msg}")
        return None
    items = raw if isinstance(raw, list) else [{"body": raw}]
    if not items:
        problems.append(f"{file}: (top level): an empty list of steps")
        return None
    steps: list[AlertStep] = []
    for index, item in enumerate(items):
        where = f"{file}: {index}" if isinstance(raw, list) else f"{file}:"
        try:
            step = AlertStep.model_validate(item)
            step.breaches()
        except ValidationError as exc:
            for error in exc.errors():
                key = ".".join(str(part) for part in error["loc"]) or "(top level)"
                problems.append(f"{where}.{key}: {error['msg']}".replace(":.", ": "))
            continue
        except BreachMappingError as exc:
            problems.append(f"{where}.body: the service would refuse this alert: {exc}")
            continue
        steps.append(step)
    return steps if len(steps) == len(items) else None


@dataclass(frozen=True)
class StagedWorld:
    """What staging produced: the files the service reads, and the routes by upstream model."""

    catalog: Path
    runbooks: Path
    routes: dict[str, RouteWorld]
    upstream: dict[str, RouteModel]
    """Upstream model name → the service and route it serves."""
    env: dict[str, str]
    """The secrets the catalog names."""
    cloudwatch: FaultProxyState
    """The faults of CloudWatch, a proxy in front of moto that the service talks to."""
    cloudwatch_url: str
    prompts: StagedPrompts | None = None
    """The Arize prompts emulator, when the world has prompts."""

    def set(self, stack: SandboxStack, systems: Systems) -> None:
        """Set the systems a world (or a change of it) names."""
        where = {name: (m.provider, m.region) for name, m in self.upstream.items()}
        set_systems(stack, systems, upstream=where, cloudwatch=self.cloudwatch)

    def route_of(self, service: str, model: str) -> str:
        """Return the route name an upstream model is, for a service (else the model)."""
        found = self.upstream.get(model)
        return found.route if found is not None and found.service == service else model


def upstream_model(route: RouteWorld) -> str:
    """Return the sandbox model serving the demo service's route: one per model and place."""
    return f"{route.model}-{route.provider}-{route.region}"


def stage_world(
    stack: SandboxStack,
    world: World,
    folder: Path,
    *,
    breach: Breach,
    llm: bool,
    servers: list[EmulatorServer],
) -> StagedWorld:
    """Set the started sandbox to the world: catalog, routes, faults, logs and the analyst.

    Servers started here (the CloudWatch fault proxy) are appended to `servers` to be stopped.
    """
    routes = world.all_routes()
    plan = {name: (r.provider, r.region, r.model or CHAT_MODEL) for name, r in routes.items()}
    upstream, env = write_catalog(stack, world.catalog, plan, folder / "services.yaml")
    runbooks = _write_runbooks(world.runbooks, folder / "runbooks", folder / "services.yaml")
    for model in upstream:
        stack.openai.add_chat_model(model, default="OK", rules=dict(DIAGNOSTIC_ANSWERS))
    cloudwatch = FaultProxyState(upstream=stack.aws_url)
    proxy = EmulatorServer(create_fault_proxy(cloudwatch)).start()
    servers.append(proxy)
    prompts = stage_prompts(world.arize_prompts, servers)
    staged = StagedWorld(
        folder / "services.yaml", runbooks, routes, upstream, env, cloudwatch, proxy.url, prompts
    )
    staged.set(stack, world.initial())
    _stage_logs(stack, world.logs, breach)
    stage_arize(stack, world.arize)
    if llm:
        _stage_analyst(stack, world.analyst)
    return staged


def copy_shipped_runbooks(folder: Path, catalog: Path) -> Path:
    """Copy the shipped runbooks into `folder`, leaving out those naming services the catalog
    lacks (the service refuses them, as a deployment would leave out runbooks of services it does
    not run); return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    services = set(yaml.safe_load(catalog.read_text(encoding="utf-8"))["services"])
    for file in sorted(SHIPPED_RUNBOOKS.glob("*.yaml")):
        named = yaml.safe_load(file.read_text(encoding="utf-8"))["match"].get("services")
        if not named or set(named) <= services:
            shutil.copy(file, folder / file.name)
    return folder


def _write_runbooks(choice: RunbooksWorld, folder: Path, catalog: Path) -> Path:
    """Write the runbooks; a shipped one naming services the world's catalog lacks is left out.

    (The service refuses a runbook that names a service its catalog does not have, as a
    deployment of the library would leave out the runbooks of services it does not run.)
    """
    folder.mkdir(parents=True, exist_ok=True)
    if choice.shipped:
        copy_shipped_runbooks(folder, catalog)
    for runbook in choice.inline:
        text = yaml.safe_dump(runbook.model_dump(mode="json", exclude_none=True), sort_keys=False)
        (folder / f"inline-{runbook.name}.yaml").write_text(text, encoding="utf-8")
    return folder


def _stage_logs(stack: SandboxStack, logs: LogsWorld, breach: Breach) -> None:
    model, version = breach.model_id or DEMO_SERVICE, breach.model_version or ""
    anchor = breach.triggered_at
    assert anchor is not None, "the runner sets every alert's trigger time"
    if logs.preset == "missing":
        logs_client(stack.aws_url).delete_log_group(logGroupName=stack.log_group)
    lines = _preset_lines(logs.preset, model, version, anchor)
    for item in logs.lines:
        if isinstance(item, str):
            text = item.replace("{model_id}", model).replace("{model_version}", version)
            lines.append((anchor - timedelta(minutes=2), "DEFAULT", text))
            continue
        for i in range(item.count):
            moment = anchor - timedelta(minutes=item.minutes_before) + timedelta(seconds=5 * i)
            writer = item.model or model
            record = {"model": writer, "version": version, "level": item.level, "msg": item.msg}
            lines.append((moment, item.level, json.dumps(record | {"request": f"x-{i:04d}"})))
    if logs.source == "cloudwatch":
        if lines:
            written = [(moment, text) for moment, _, text in lines]
            seed_log_lines(stack.aws_url, stack.log_group, "gw-eval", written)
        return
    for moment, level, text in lines:
        payload = json.loads(text) if text.startswith("{") else None
        stack.gcp.add_entry(
            timestamp=moment,
            log_name="gateway",
            severity=level if level in LOG_LEVELS else "DEFAULT",
            text_payload=None if payload else text,
            json_payload=payload,
            labels={"model_id": str((payload or {}).get("model", model)), "model_version": version},
            resource={"type": "k8s_container", "labels": {}},
        )


def _preset_lines(
    preset: str, model: str, version: str, anchor: datetime
) -> list[tuple[datetime, str, str]]:
    if preset == "vector_timeouts":
        return [
            (moment, str(json.loads(text).get("level", "INFO")), text)
            for moment, text in demo_log_lines(model, version, anchor)
        ]
    if preset not in ("quiet", "upstream_errors"):
        return []
    lines = []
    for i in range(12):
        moment = anchor - timedelta(minutes=12) + timedelta(seconds=60 * i)
        record = {"model": model, "version": version, "level": "INFO", "msg": "completed"}
        if preset == "upstream_errors" and i % 3 != 2:
            record.update(level="ERROR", msg="upstream 503 from the model provider")
        lines.append((moment, str(record["level"]), json.dumps(record | {"request": f"q-{i}"})))
    return lines


NEUTRAL_ANALYSIS = {
    "hypothesis": {
        "summary": "the evidence does not single out one component",
        "suspected_component": "unknown",
        "confidence": 0.2,
        "evidence_refs": [],
    },
    "proposal": {"action": "notify", "rationale": "keep the team informed"},
}


def _stage_analyst(stack: SandboxStack, script: AnalystWorld | None) -> None:
    if script is None:
        reply: str | ToolCall = ToolCall("submit_analysis", NEUTRAL_ANALYSIS)
    elif script.text is not None:
        reply = script.text
    else:
        answer = {"hypothesis": script.hypothesis, "proposal": script.proposal}
        reply = ToolCall("submit_analysis", answer)
    model = stack.openai.add_chat_model(ANALYST_MODEL, default=reply)
    if script is not None and script.http_status is not None:
        model.fail_next(script.http_status, times=LASTING)
