"""The runbook schema: which breaches a runbook covers, what it probes, and what it allows.

The safety rule lives here: an action that a runbook does not list under a diagnosis is not
allowed for that diagnosis, whatever a model proposes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

MetricName = Literal[
    "latency_p95",
    "latency_p99",
    "error_rate",
    "cost_per_query",
    "token_usage",
    "quality_score",
    "hallucination_score",
    "uptime",
]
ProbeName = Literal["logs", "vector_db", "embeddings", "endpoint", "changes"]
Diagnosis = Literal[
    "dependency_degraded", "endpoint_isolated", "suspect_change", "segment_only", "no_fault_found"
]
ActionKind = Literal["page", "failover", "rollback", "rollback_prompt", "notify", "failback"]
Severity = Literal["critical", "error", "warning", "info"]
ApprovalMode = Literal["auto", "required"]
PayloadPolicy = Literal["full", "hash", "none"]

METRICS: tuple[MetricName, ...] = get_args(MetricName)
DIAGNOSES: tuple[Diagnosis, ...] = get_args(Diagnosis)
ACTION_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)
PAGING_SEVERITIES: frozenset[Severity] = frozenset({"critical", "error"})
MAX_STEPS = 10
MAX_STEP_CHARS = 300

# Words that say nothing about which metric is meant ("llm_latency_p95_ms" is latency_p95).
_NOISE = frozenset(
    "llm model avg mean ms msec milliseconds s sec seconds pct percent percentage usd".split()
)
# Matched as word sets, so word order does not matter: "p95_latency" is latency_p95.
_ALIASES: dict[MetricName, tuple[str, ...]] = {
    "latency_p95": ("latency p95", "p95", "response time p95"),
    "latency_p99": ("latency p99", "p99", "response time p99"),
    "error_rate": ("error rate", "errors rate", "error", "errors", "failure rate"),
    "cost_per_query": ("cost per query", "cost query", "cost per request", "cost per call"),
    "token_usage": ("token usage", "tokens", "token count", "total tokens", "tokens per query"),
    "quality_score": ("quality score", "quality", "answer quality", "eval score"),
    "hallucination_score": ("hallucination score", "hallucination", "hallucination rate"),
    "uptime": ("uptime", "availability"),
}
_WORDS_TO_METRIC: dict[frozenset[str], MetricName] = {
    frozenset(alias.split()): metric for metric, aliases in _ALIASES.items() for alias in aliases
}
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
# Slack user ids start with U (W on Enterprise Grid), user group ids with S.
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")


# Single words that say which metric an alert name is about ("RagAnswersSlow", "Chatbot5xxSpike").
# A percentile word beats a generic latency word; a name whose words point at two metrics says
# nothing for sure and names none.
_SYNONYMS: dict[str, MetricName] = {
    **dict.fromkeys(("p95", "latency", "slow", "slowness", "duration", "lag"), "latency_p95"),
    "p99": "latency_p99",
    **dict.fromkeys(
        (
            "err",
            "errs",
            "error",
            "errors",
            "5xx",
            "5xxs",
            "http5xx",
            "fivexx",
            "failure",
            "failures",
            "failing",
            "exceptions",
        ),
        "error_rate",
    ),
    **dict.fromkeys(("cost", "costs", "spend", "spending", "expensive", "price"), "cost_per_query"),
    **dict.fromkeys(("token", "tokens"), "token_usage"),
    **dict.fromkeys(("quality", "grounded", "groundedness", "relevance"), "quality_score"),
    **dict.fromkeys(("hallucination", "hallucinations", "hallucinating"), "hallucination_score"),
    **dict.fromkeys(("uptime", "availability", "available", "unavailable", "down"), "uptime"),
}
_SPECIFIC: dict[frozenset[MetricName], MetricName] = {
    frozenset({"latency_p95", "latency_p99"}): "latency_p99",
    # "TokenCostHigh": the spend is what breached, tokens are how it is counted.
    frozenset({"cost_per_query", "token_usage"}): "cost_per_query",
}


def metric_words(name: str) -> list[str]:
    """Split a camelCase, snake_case or kebab-case name into lower-case words."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.strip())
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)  # "LLMLatency" → "LLM Latency"
    return [word for word in re.split(r"[^a-z0-9]+", spaced.lower()) if word]


def normalise_metric(name: str) -> MetricName | None:
    """Return the vocabulary name of a metric name as Arize or Alertmanager spell it, or None."""
    return _WORDS_TO_METRIC.get(frozenset(metric_words(name)) - _NOISE)


def metric_from_name(name: str) -> MetricName | None:
    """Return the metric an alert or monitor name is about, or None when it does not say.

    The whole name is tried first as a metric name (`latency_p95_ms`, `p95_latency`); then each
    of its words against the synonym table (`RagAnswersSlow` is latency_p95,
    `ChatbotFivexxSpike` error_rate). Words pointing at two metrics name none, except a percentile
    with a latency word (the percentile) and tokens with spend (the spend).
    """
    exact = normalise_metric(name)
    if exact is not None:
        return exact
    found = {_SYNONYMS[word] for word in metric_words(name) if word in _SYNONYMS}
    if len(found) == 1:
        return next(iter(found))
    return _SPECIFIC.get(frozenset(found))


def identify_metric(*names: str | None) -> MetricName | None:
    """Return the metric the first of these names that says one names (None: none does).

    Callers pass the alert's metric field or label first, then its monitor or alert name: an
    explicit metric that the vocabulary knows wins over what the alert's name suggests.
    """
    for name in names:
        metric = metric_from_name(name) if name else None
        if metric is not None:
            return metric
    return None


def _canonical_metric(value: object) -> object:
    if not isinstance(value, str):
        return value
    metric = normalise_metric(value)
    if metric is None:
        raise ValueError(f"unknown metric {value!r} (known: {', '.join(METRICS)})")
    return metric


Metric = Annotated[MetricName, BeforeValidator(_canonical_metric)]


class Strict(BaseModel):
    """A runbook section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Listing(Strict):
    """A section whose keys switch things on: `name:` with no value means name with defaults."""

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: {} if value is None else value for key, value in data.items()}
        return data


class Match(Strict):
    """Which breaches the runbook covers; an omitted constraint matches anything."""

    metrics: list[Metric] = Field(min_length=1)
    services: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    environments: list[str] = Field(default_factory=list)
    segments: dict[str, Annotated[list[str], Field(min_length=1)]] = Field(default_factory=dict)

    @property
    def specificity(self) -> int:
        """Count the constraints beyond the metric: each list given and each segment key."""
        lists = [self.services, self.models, self.environments]
        return sum(1 for values in lists if values) + len(self.segments)

    def matches(
        self,
        *,
        metric: MetricName | None,
        service: str | None,
        model: str | None,
        environment: str | None,
        segment: dict[str, str],
    ) -> bool:
        """Tell whether a breach with these attributes falls under this runbook."""
        if metric is None or metric not in self.metrics:
            return False
        if self.services and service not in self.services:
            return False
        if self.models and model not in self.models:
            return False
        # Arize spells environments both "production" and "PRODUCTION".
        wanted = {env.casefold() for env in self.environments}
        if wanted and (environment or "").casefold() not in wanted:
            return False
        return all(segment.get(key) in values for key, values in self.segments.items())


class ProbeSpec(Strict):
    """One investigation probe and how long it may take."""

    timeout_seconds: float = Field(10, gt=0, le=300)


class Probes(Listing):
    """The probes the investigation runs; an unlisted probe is not run."""

    logs: ProbeSpec | None = None
    vector_db: ProbeSpec | None = None
    embeddings: ProbeSpec | None = None
    endpoint: ProbeSpec | None = None
    changes: ProbeSpec | None = None

    def enabled(self) -> dict[ProbeName, ProbeSpec]:
        """Return the listed probes in a fixed order."""
        names: tuple[ProbeName, ...] = get_args(ProbeName)
        return {name: spec for name in names if (spec := getattr(self, name)) is not None}


class DiagnosisRules(Strict):
    """Thresholds of the diagnosis rules."""

    change_window_minutes: int = Field(
        60,
        gt=0,
        le=7 * 24 * 60,
        description="A deployment this many minutes or less before the breach is a suspect_change.",
    )
    min_error_lines: int = Field(
        5, ge=1, description="Log lines at ERROR or above before the logs count as evidence."
    )
    segment_keys: list[str] = Field(
        default_factory=list,
        description="Segment keys that may confine a breach (segment_only); "
        "empty: segment_only is never diagnosed.",
    )


class Action(Strict):
    """An allowed action and whether a person must approve it first."""

    kind: ActionKind
    approval: ApprovalMode = "required"

    @property
    def needs_approval(self) -> bool:
        """Tell whether the action waits for an approver."""
        return self.approval == "required"


class PageAction(Action):
    """Tell on-call: critical and error page through PagerDuty, warning and info go to Slack."""

    kind: Literal["page"] = "page"
    approval: ApprovalMode = "auto"
    severity: Severity

    @property
    def pages_on_call(self) -> bool:
        """Tell whether this page goes to PagerDuty rather than only to Slack."""
        return self.severity in PAGING_SEVERITIES


class FailoverAction(Action):
    """Move the service's route elsewhere."""

    kind: Literal["failover"] = "failover"
    target: str = Field(
        min_length=1,
        description="`backup_region`, `fallback_model`, or a failover target named in the catalog.",
    )


class RollbackAction(Action):
    """Roll back the most recent deployment of the service."""

    kind: Literal["rollback"] = "rollback"


class RollbackPromptAction(Action):
    """Move a prompt's label (`production`) back to the version before the suspect one, in Arize.

    Taken only where the suspect change is an Arize prompt version; for any other change the
    runbook's `rollback` proposal stands. Approval is required unless the runbook says `auto`.
    """

    kind: Literal["rollback_prompt"] = "rollback_prompt"
    label: str = Field(
        "production",
        min_length=1,
        max_length=64,
        pattern=r"^[^/]+$",
        description="The label that marks the deployed version (Arize labels are case-sensitive).",
    )


class NotifyAction(Action):
    """Post to the service's Slack channel; never pages."""

    kind: Literal["notify"] = "notify"
    approval: ApprovalMode = "auto"
    severity: Severity = "warning"


class FailbackAction(Action):
    """Move the service back to its primary route."""

    kind: Literal["failback"] = "failback"


ActionSpec = (
    PageAction
    | FailoverAction
    | RollbackAction
    | RollbackPromptAction
    | NotifyAction
    | FailbackAction
)


class AllowedActions(Listing):
    """The actions allowed for one diagnosis; an unlisted action is not allowed."""

    failover: FailoverAction | None = None
    rollback: RollbackAction | None = None
    rollback_prompt: RollbackPromptAction | None = None
    failback: FailbackAction | None = None
    page: PageAction | None = None
    notify: NotifyAction | None = None

    def listed(self) -> list[ActionSpec]:
        """Return the allowed actions, remedies first, then who is told."""
        specs = [
            self.failover,
            self.rollback_prompt,
            self.rollback,
            self.failback,
            self.page,
            self.notify,
        ]
        return [spec for spec in specs if spec is not None]


class Actions(Listing):
    """The allowed actions per diagnosis; a diagnosis not listed allows nothing."""

    dependency_degraded: AllowedActions = Field(default_factory=AllowedActions)
    endpoint_isolated: AllowedActions = Field(default_factory=AllowedActions)
    suspect_change: AllowedActions = Field(default_factory=AllowedActions)
    segment_only: AllowedActions = Field(default_factory=AllowedActions)
    no_fault_found: AllowedActions = Field(default_factory=AllowedActions)


class OnTimeout(Strict):
    """What happens when no approver answers in time: never the action that was asked for."""

    action: Literal["page", "notify"] = "page"
    severity: Severity = "error"


class ApprovalPolicy(Strict):
    """Who may approve, and for how long a request stays open."""

    ttl_seconds: int = Field(900, gt=0, le=24 * 3600)
    approvers: list[str] = Field(
        default_factory=list,
        description="Slack user ids (U…, W…) and user group ids (S…); "
        "an empty list means NOBODY may approve, so every approval times out.",
    )
    on_timeout: OnTimeout = Field(default_factory=OnTimeout)

    @field_validator("approvers")
    @classmethod
    def _slack_ids(cls, approvers: list[str]) -> list[str]:
        wrong = [who for who in approvers if not _SLACK_ID.match(who)]
        if wrong:
            raise ValueError(
                f"not Slack user or user group ids: {', '.join(map(repr, wrong))} "
                "(ids look like U0123ABCD or S0123ABCD, not names)"
            )
        return approvers


class Analyst(Strict):
    """Whether the optional LLM analyst may be asked about an inconclusive diagnosis."""

    enabled: bool = False
    max_calls: int = Field(1, ge=0, le=10)


class Notify(Strict):
    """How the incident is told in Slack."""

    slack_thread: bool = True
    verbosity: Literal["summary_only", "decisions", "every_step"] = Field(
        "decisions",
        description="summary_only: the opening and closing messages; decisions: also the "
        "diagnosis, approvals and actions; every_step: also each probe.",
    )


def _one_line(value: object) -> object:
    if not isinstance(value, str):
        return value
    line = " ".join(value.split())
    if not line:
        raise ValueError("an empty step: say what to do")
    if len(line) > MAX_STEP_CHARS:
        raise ValueError(f"a step of {len(line)} characters: at most {MAX_STEP_CHARS}")
    return line


Step = Annotated[str, BeforeValidator(_one_line), Field(min_length=1, max_length=MAX_STEP_CHARS)]


class NextSteps(Strict):
    """What a person should do next, per diagnosis: shown in the report and the page, never run.

    Each step is one line (whitespace, newlines included, is folded into single spaces); a
    diagnosis not listed gets no suggestions.
    """

    dependency_degraded: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)
    endpoint_isolated: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)
    suspect_change: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)
    segment_only: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)
    no_fault_found: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _no_repeats(self) -> NextSteps:
        for diagnosis in DIAGNOSES:
            steps: list[str] = getattr(self, diagnosis)
            repeated = sorted({step for step in steps if steps.count(step) > 1})
            if repeated:
                raise ValueError(f"{diagnosis}: step listed twice: {repeated[0]!r}")
        return self

    def of(self, diagnosis: str) -> list[str]:
        """Return the steps suggested for a diagnosis; none for an unknown one."""
        return list(getattr(self, diagnosis)) if diagnosis in DIAGNOSES else []


class Runbook(Strict):
    """A named, versioned policy for one family of breaches."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    version: int | str = Field(
        description="An integer or a semver string; it is part of every approval digest."
    )
    description: str = Field(min_length=1)
    match: Match
    probes: Probes = Field(default_factory=Probes)
    diagnosis: DiagnosisRules = Field(default_factory=DiagnosisRules)
    actions: Actions = Field(default_factory=Actions)
    failback: Literal["auto", "approval"] = Field(
        "approval",
        description="After a failover, how the route moves back once the breach resolves "
        "(only once the primary route answers its known-answer prompts right).",
    )
    failback_retry_minutes: int | None = Field(
        None,
        ge=1,
        le=24 * 60,
        description="While a failback is held back (the primary still fails its probe, or "
        "another incident still depends on the failover), try again every this many minutes; "
        "unset: only a later resolution of the service tries again.",
    )
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    analyst: Analyst = Field(default_factory=Analyst)
    payload_policy: PayloadPolicy = Field(
        "hash", description="How this runbook's prompts and responses enter the audit trail."
    )
    notify: Notify = Field(default_factory=Notify)
    next_steps: NextSteps = Field(
        default_factory=NextSteps,
        description="Suggested next steps per diagnosis (at most 10, one line each), shown to "
        "the person reading the Slack report and the page; the agent never runs them.",
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("must be an integer or a quoted semver string such as '1.2.0'")
        if isinstance(value, int) and value < 1:
            raise ValueError("an integer version starts at 1")
        if isinstance(value, str) and not _SEMVER.match(value):
            raise ValueError(f"{value!r} is not a semver string such as '1.2.0'")
        return value

    @property
    def ref(self) -> str:
        """Return `name@version`, the runbook's identity in audit events and approval digests."""
        return f"{self.name}@{self.version}"

    def allowed(self, diagnosis: str) -> list[ActionSpec]:
        """Return the actions this runbook allows for a diagnosis; none for an unknown one."""
        if diagnosis not in DIAGNOSES:
            return []
        section: AllowedActions = getattr(self.actions, diagnosis)
        return section.listed()

    def permits(self, diagnosis: str, action_kind: str) -> bool:
        """Tell whether the runbook lists this action for this diagnosis."""
        return self.spec(diagnosis, action_kind) is not None

    def spec(self, diagnosis: str, action_kind: str) -> ActionSpec | None:
        """Return the listed action of this kind for a diagnosis, or None when not allowed."""
        return next((a for a in self.allowed(diagnosis) if a.kind == action_kind), None)


# Without these probes the diagnosis cannot be reached (the rules need their evidence).
_EVIDENCE: dict[Diagnosis, frozenset[ProbeName]] = {
    "dependency_degraded": frozenset({"vector_db", "embeddings"}),
    "endpoint_isolated": frozenset({"endpoint"}),
    "suspect_change": frozenset({"changes"}),
}


def lint_runbook(runbook: Runbook) -> list[str]:
    """Return warnings about a valid runbook that will not behave as its author likely meant."""
    warnings: list[str] = []
    nobody = not runbook.approval.approvers
    for diagnosis in DIAGNOSES:
        for spec in runbook.allowed(diagnosis):
            if spec.needs_approval and nobody:
                warnings.append(
                    f"actions.{diagnosis}.{spec.kind}: approval is required but "
                    "approval.approvers is empty, so nobody can approve it and it always times "
                    f"out ({runbook.approval.on_timeout.action} instead)"
                )
    if runbook.failback_retry_minutes is not None and not _fails_over(runbook):
        warnings.append(
            "failback_retry_minutes: set, but no diagnosis allows a failover, so there is never "
            "a failback to retry"
        )
    if runbook.failback == "approval" and nobody and _fails_over(runbook):
        warnings.append(
            "failback: approval is required but approval.approvers is empty, so the service "
            "stays on its failover route until someone moves it back by hand"
        )
    enabled = set(runbook.probes.enabled())
    for diagnosis, needed in _EVIDENCE.items():
        if runbook.allowed(diagnosis) and not enabled & needed:
            warnings.append(
                f"actions.{diagnosis}: listed, but probes has none of "
                f"{', '.join(sorted(needed))}, so this diagnosis is never reached"
            )
    if runbook.allowed("segment_only") and not runbook.diagnosis.segment_keys:
        warnings.append(
            "actions.segment_only: listed, but diagnosis.segment_keys is empty, "
            "so this diagnosis is never reached"
        )
    if not any(runbook.allowed(diagnosis) for diagnosis in DIAGNOSES):
        warnings.append("actions: nothing is allowed, so the agent can only record its findings")
    if runbook.analyst.enabled and runbook.analyst.max_calls == 0:
        warnings.append("analyst: enabled with max_calls 0, so it is never consulted")
    return warnings


def _fails_over(runbook: Runbook) -> bool:
    return any(runbook.permits(diagnosis, "failover") for diagnosis in DIAGNOSES)
