"""Turn the investigation's findings into one diagnosis, with the evidence for and against each.

`findings` maps a probe name (`logs`, `vector_db`, `embeddings`, `endpoint`, `changes`) to the
ToolResults it produced, each dumped to JSON; other keys are ignored. The rules, in order of
precedence (the first that holds is the diagnosis):

1. dependency_degraded: the vector_db or embeddings probe says degraded or down. Every faulty
   dependency is named (`dependencies`, so each owner is told); the one that is down comes first
   (vector_db when both are equally bad) and is the `owner_hint`. Log lines that mention a
   dependency are never a reason: while its probe is ok they are a red herring, counted against
   this diagnosis.
2. suspect_change: a deployment that could have caused the breach happened at most
   `change_window_minutes` before it (a deployment after the breach cannot have caused it). It
   could have caused it when it is of the same service (the same model when the breach names no
   service), in the same environment, and, when it names them, in an overlapping region and of
   the same model (`agent.changes.scope`); any other is evidence against, never a suspect.
   Probes cannot see everything a change affects (a prompt template, a config flag), so with no
   other explanation (rule 1) such a change is the suspect even while the service looks healthy;
   whether it misbehaves too (endpoint degraded or down, at least `min_error_lines` log error
   lines, a cost or token breach) is evidence. The most recent such deployment is the suspect.
3. endpoint_isolated: the endpoint probe is degraded or down (a `down` after timeouts counts).
4. segment_only: the breach carries a segment key listed in `segment_keys`, the endpoint probe
   ran and answered ok, and the breach is not in the service's primary region (the region its
   primary route serves from): the service as a whole is proven healthy, so the breach is
   confined to that segment. A breach in the primary region is never confined: it is the
   service's main traffic. Without that proof it is no_fault_found.
5. no_fault_found: otherwise.

Through the precedence, rule 2 holds only with healthy dependencies, rule 3 only without a
suspect change, rule 4 only with a healthy endpoint too. Healthy means not degraded or down: a
probe that was not run, or that failed, is no proof of a fault.

A probe with a result of status `error` (a probe that timed out among them) is inconclusive: it is
listed in `inconclusive_probes` and counted against the certainty of the candidates it bears on.

`conflicting` is set when two rules have strong evidence at once (a degraded dependency together
with a faulty endpoint, or together with a suspect change) and when no probe gave a usable
finding while one at least failed. A suspect change with a faulty endpoint is no conflict: the
change explains the endpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from agent.changes.scope import BreachScope, out_of_scope
from runbooks.schema import Diagnosis as DiagnosisKind
from runbooks.schema import DiagnosisRules, identify_metric

Verdict = Literal["chosen", "outranked", "rejected"]

PROBES = ("logs", "vector_db", "embeddings", "endpoint", "changes")
DEPENDENCIES = ("vector_db", "embeddings")
PRECEDENCE: tuple[DiagnosisKind, ...] = (
    "dependency_degraded",
    "suspect_change",
    "endpoint_isolated",
    "segment_only",
    "no_fault_found",
)
FAULTY = frozenset({"degraded", "down"})
SPEND_METRICS = frozenset({"cost_per_query", "token_usage"})
# Statuses that carry a finding, ranked so the worst result of a probe speaks for it.
_RANK = {"down": 4, "degraded": 3, "ok": 2, "no_data": 1}
_MENTIONS = {
    "vector_db": re.compile(r"vector|qdrant|pinecone|weaviate|milvus|chroma|faiss|retriev", re.I),
    "embeddings": re.compile(r"embed", re.I),
}
_TEXT = 200
_SUMMARY = 300


@dataclass(frozen=True)
class Candidate:
    """One diagnosis considered, the evidence for and against it, and how it fared."""

    kind: DiagnosisKind
    verdict: Verdict
    evidence_for: list[str]
    evidence_against: list[str]


@dataclass(frozen=True)
class Diagnosis:
    """The diagnosis the rules reached, and every candidate they weighed."""

    kind: DiagnosisKind
    summary: str
    component: str | None
    owner_hint: str | None
    change: dict[str, Any] | None
    candidates: list[Candidate]
    conflicting: bool
    inconclusive_probes: list[str]
    dependencies: list[str]
    """Every dependency found degraded or down (dependency_degraded), the `owner_hint` first."""

    def to_dict(self) -> dict[str, Any]:
        """Return the diagnosis as plain JSON values."""
        return asdict(self)


@dataclass(frozen=True)
class _Probe:
    """What one probe's results say together."""

    name: str
    status: str | None  # the worst usable status; "error" when none was usable; None: not run
    summary: str
    asked: Mapping[str, Any]
    failure: str | None  # "timed out" or "errored" when a result failed

    def said(self) -> str:
        """Return `name status: summary` on one line."""
        return _line(f"{self.name} {self.status}: {self.summary}")

    def inconclusive(self) -> str:
        """Return why this probe proves nothing either way."""
        return _line(f"{self.name} probe {self.failure}, inconclusive: {self.summary}")


@dataclass(frozen=True)
class _Deployment:
    minutes: float
    row: Mapping[str, Any]

    def said(self) -> str:
        kind = f"{self.row['kind']} " if self.row.get("kind") else ""
        version = self.row.get("version") or "of unknown version"
        previous = self.row.get("previous_version")
        since = f" (from {previous})" if previous else ""
        when = (
            f"{self.minutes:g} min before" if self.minutes >= 0 else f"{-self.minutes:g} min after"
        )
        return _line(f"{kind}deployment {version}{since} {when} the breach")


@dataclass(frozen=True)
class _Facts:
    """What the findings establish, before any rule is applied."""

    probes: dict[str, _Probe]
    deployments: list[_Deployment]
    unrelated: list[str]  # deployments that cannot have caused the breach, and why
    suspect: _Deployment | None  # the most recent deployment within the window
    window: int
    error_lines: int
    log_noise: str | None  # set when the error lines reach min_error_lines
    mentions: dict[str, str]  # dependency -> what the log errors say of it
    misbehaving: list[str]  # why the service itself looks at fault
    faulty: list[str]  # the degraded or down dependencies, the one to name first
    segment: Mapping[str, Any]
    matched: list[str]  # `key=value` of the breach's segment keys listed in the rules
    primary: str | None  # set when the breach is in the service's primary region
    rules: DiagnosisRules


def apply_rules(
    *,
    breach: Mapping[str, Any],
    findings: Mapping[str, Sequence[Mapping[str, Any]]],
    rules: DiagnosisRules,
    now: datetime,
    service: str | None = None,
    primary_region: str | None = None,
) -> Diagnosis:
    """Apply the rules in precedence order and return the first that holds, with all evidence.

    `service` is the catalog's name of the breached service (when the alert names none) and
    `primary_region` the region its primary route serves from (None: not known).
    """
    facts = _facts(breach, findings, rules, now, service, primary_region)
    probes, suspect, faulty = facts.probes, facts.suspect, facts.faulty
    endpoint = probes["endpoint"]
    holds: dict[DiagnosisKind, bool] = {
        "dependency_degraded": bool(faulty),
        # A change in scope and in the window is the suspect even while the probes look healthy.
        "suspect_change": suspect is not None,
        "endpoint_isolated": endpoint.status in FAULTY,
        # Confinement needs proof that the service as a whole is fine (the endpoint probed ok),
        # and a segment that is not the service's main traffic (its primary region).
        "segment_only": bool(facts.matched) and endpoint.status == "ok" and not facts.primary,
        "no_fault_found": True,
    }
    kind = next(k for k in PRECEDENCE if holds[k])
    weigh = {
        "dependency_degraded": _for_dependency,
        "suspect_change": _for_change,
        "endpoint_isolated": _for_endpoint,
        "segment_only": _for_segment,
        "no_fault_found": _for_nothing,
    }
    candidates = []
    for k in PRECEDENCE:
        pro, con = weigh[k](facts)
        candidates.append(Candidate(k, _verdict(k, kind, holds[k]), pro, con))
    inconclusive = [name for name in PROBES if probes[name].failure]
    conflicts = []
    if faulty and endpoint.status in FAULTY:
        conflicts.append(f"the endpoint is {endpoint.status} too")
    if faulty and suspect is not None and facts.misbehaving:
        conflicts.append(f"recent change: {suspect.said()}")
    if inconclusive and not any(p.status in FAULTY | {"ok"} for p in probes.values()):
        conflicts.append("every probe was inconclusive")
    component, owner, change = None, None, None
    if kind == "dependency_degraded":
        component = owner = faulty[0]
        summary = "; ".join(f"{d} is {probes[d].status}" for d in faulty)
        summary += f": {probes[faulty[0]].summary}"
    elif kind == "suspect_change" and suspect is not None:
        component, change = "deployment", _change(suspect)
        summary = suspect.said()
        if facts.misbehaving:
            summary += f", and the service misbehaves: {', '.join(facts.misbehaving)}"
        else:
            summary += (
                f" within the {facts.window} min window, and nothing else explains the breach "
                "(probes cannot see every effect of a change)"
            )
    elif kind == "endpoint_isolated":
        component = _endpoint_component(endpoint, breach, facts.segment)
        summary = f"{component} is {endpoint.status} while its dependencies are healthy: "
        summary += endpoint.summary
    elif kind == "segment_only":
        component = ", ".join(facts.matched)
        summary = f"the breach is confined to {component}: endpoint and dependencies are healthy"
    else:
        summary = "no probe found a fault"
        summary += f" ({', '.join(inconclusive)} inconclusive)" if inconclusive else ""
    if conflicts:
        summary += f" (conflicting: {'; '.join(conflicts)})"
    return Diagnosis(
        kind=kind,
        summary=_line(summary, _SUMMARY),
        component=component,
        owner_hint=owner,
        change=change,
        candidates=candidates,
        conflicting=bool(conflicts),
        inconclusive_probes=inconclusive,
        dependencies=list(faulty) if kind == "dependency_degraded" else [],
    )


def _facts(
    breach: Mapping[str, Any],
    findings: Mapping[str, Sequence[Mapping[str, Any]]],
    rules: DiagnosisRules,
    now: datetime,
    service: str | None,
    primary_region: str | None,
) -> _Facts:
    probes = {name: _probe(name, _rows(findings.get(name))) for name in PROBES}
    anchor = _when(breach.get("triggered_at")) or _aware(now)
    scope = BreachScope.of(breach, service)
    deployments, unrelated = _deployments(_rows(findings.get("changes")), anchor, scope)
    window = rules.change_window_minutes
    suspect = next((d for d in deployments if 0 <= d.minutes <= window), None)
    error_lines, mentions = _logs(_rows(findings.get("logs")))
    log_noise = f"{error_lines} log error lines" if error_lines >= rules.min_error_lines else None
    endpoint = probes["endpoint"].status
    misbehaving = [f"endpoint {endpoint}"] if endpoint in FAULTY else []
    misbehaving += [log_noise] if log_noise else []
    # A cost or token breach is itself the misbehaviour: no probe measures spend.
    metric = identify_metric(_str(breach.get("metric")), _str(breach.get("monitor_name")))
    if metric in SPEND_METRICS:
        misbehaving.append(f"the breach itself: {metric} is over its threshold")
    faulty = sorted(
        (d for d in DEPENDENCIES if probes[d].status in FAULTY),
        key=lambda d: (probes[d].status != "down", DEPENDENCIES.index(d)),
    )
    raw = breach.get("segment")
    segment: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    keys = dict.fromkeys(rules.segment_keys)
    matched = [f"{key}={segment[key]}" for key in keys if segment.get(key)]
    region = scope.region
    primary = region if region and primary_region and region == primary_region else None
    # fmt: off
    return _Facts(probes, deployments, unrelated, suspect, window, error_lines, log_noise,
                  mentions, misbehaving, faulty, segment, matched, primary, rules)
    # fmt: on


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


Evidence = tuple[list[str], list[str]]


def _weigh(probe: _Probe, pro: list[str], con: list[str], *, fault_is_for: bool) -> None:
    """File a probe's finding for or against a candidate that a fault of it supports (or not)."""
    if probe.status in FAULTY:
        (pro if fault_is_for else con).append(probe.said())
    elif probe.status == "ok":
        (con if fault_is_for else pro).append(probe.said())
    elif fault_is_for and probe.status != "error":
        con.append(f"{probe.name}: not probed")
    if probe.failure:
        con.append(probe.inconclusive())


def _for_dependency(facts: _Facts) -> Evidence:
    pro: list[str] = []
    con: list[str] = []
    for name in DEPENDENCIES:
        probe = facts.probes[name]
        _weigh(probe, pro, con, fault_is_for=True)
        noise = facts.mentions.get(name)
        if noise is None:
            continue
        if probe.status in FAULTY:
            pro.append(f"logs: {noise}, consistent with the {name} probe")
        elif probe.status == "ok":
            con.append(f"logs: {noise}, but the {name} probe is ok: a red herring, not a reason")
        else:
            pro.append(f"logs: {noise}, unconfirmed: no usable {name} probe, not a reason alone")
    return pro, con


def _for_change(facts: _Facts) -> Evidence:
    pro: list[str] = []
    con: list[str] = []
    window, probes = facts.window, facts.probes
    for deployment in facts.deployments:
        if deployment.minutes < 0:
            con.append(f"{deployment.said()}: it cannot have caused it")
        elif deployment.minutes <= window:
            pro.append(f"{deployment.said()}, within the {window} min window")
        else:
            con.append(f"{deployment.said()}: outside the {window} min window")
    con.extend(f"{line}: it cannot have caused it" for line in facts.unrelated)
    changes = probes["changes"]
    if changes.status is None:
        con.append("changes: not probed")
    elif not facts.deployments and changes.status != "error":
        con.append(f"changes: no deployment in the {window} min before the breach")
    if facts.misbehaving:
        pro.append(f"the service misbehaves: {', '.join(facts.misbehaving)}")
    else:
        # Not a reason against: probes cannot see every effect of a change.
        con.append(
            f"the service itself looks healthy: endpoint {probes['endpoint'].status or 'not run'}, "
            f"{facts.error_lines} log error line(s) (fewer than {facts.rules.min_error_lines}); "
            "a change's effect may be out of the probes' sight"
        )
    con.extend(probes[name].inconclusive() for name in PROBES if probes[name].failure)
    con.extend(f"{probes[d].said()} (the dependency explains the breach)" for d in facts.faulty)
    return pro, con


def _for_endpoint(facts: _Facts) -> Evidence:
    pro: list[str] = []
    con: list[str] = []
    endpoint = facts.probes["endpoint"]
    _weigh(endpoint, pro, con, fault_is_for=True)
    if endpoint.status in FAULTY and facts.log_noise:
        pro.append(f"logs: {facts.log_noise}")
    for name in DEPENDENCIES:
        _weigh(facts.probes[name], pro, con, fault_is_for=False)
    if facts.suspect is not None:
        con.append(f"recent change: {facts.suspect.said()} (it explains the endpoint better)")
    return pro, con


def _for_segment(facts: _Facts) -> Evidence:
    pro = [f"the breach is in segment {m}" for m in facts.matched]
    con: list[str] = []
    if not facts.segment:
        con.append("the breach carries no segment")
    elif not facts.matched:
        keys = ", ".join(sorted(str(k) for k in facts.segment))
        listed = ", ".join(facts.rules.segment_keys) or "none"
        con.append(f"the breach's segment keys ({keys}) are not in segment_keys ({listed})")
    for name in ("endpoint", *DEPENDENCIES):
        _weigh(facts.probes[name], pro, con, fault_is_for=False)
    if facts.probes["endpoint"].status != "ok":
        con.append(
            "the endpoint was not probed healthy: nothing shows the rest of the traffic is fine"
        )
    if facts.primary:
        con.append(
            f"region={facts.primary} is the service's primary region: its main traffic, "
            "never a segment"
        )
    if facts.suspect is not None:
        con.append(f"recent change: {facts.suspect.said()}")
    return pro, con


def _for_nothing(facts: _Facts) -> Evidence:
    pro: list[str] = []
    con: list[str] = []
    for name in (n for n in PROBES if n != "changes"):
        _weigh(facts.probes[name], pro, con, fault_is_for=False)
    changes = facts.probes["changes"]
    if facts.suspect is not None:
        con.append(f"recent change: {facts.suspect.said()}")
    elif changes.status in ("ok", "no_data"):
        pro.append(f"changes: no deployment in the {facts.window} min before the breach")
    if changes.failure:
        con.append(changes.inconclusive())
    return pro, con


def _verdict(kind: DiagnosisKind, chosen: DiagnosisKind, holds: bool) -> Verdict:
    if kind == chosen:
        return "chosen"
    return "outranked" if holds and kind != "no_fault_found" else "rejected"


def _rows(value: object) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    rows = [row for row in value if isinstance(row, Mapping)]
    # Sorted so that the order in which parallel probes finished does not change the outcome.
    return sorted(rows, key=_text_of)


def _text_of(row: Mapping[str, Any]) -> str:
    """Return a stable sort key for a JSON row, whatever the order of its keys."""
    return json.dumps(row, sort_keys=True, default=str)


def _status(row: Mapping[str, Any]) -> str:
    status = str(row.get("status"))
    return status if status in _RANK else "error"


def _probe(name: str, rows: Sequence[Mapping[str, Any]]) -> _Probe:
    if not rows:
        return _Probe(name, None, "not run", {}, None)
    usable = [r for r in rows if _status(r) in _RANK]
    failed = [r for r in rows if _status(r) not in _RANK]
    worst = max(usable, key=lambda r: _RANK[_status(r)]) if usable else failed[0]
    failure = None
    if failed:
        timed_out = any(
            r.get("error") == "timeout" or "timed out" in str(r.get("summary")) for r in failed
        )
        failure = "timed out" if timed_out else "errored"
    asked = worst.get("asked")
    asked = asked if isinstance(asked, Mapping) else {}
    summary = _line(str(worst.get("summary") or worst.get("error") or ""))
    return _Probe(name, _status(worst), summary, asked, failure)


def _logs(rows: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, str]]:
    """Return the error lines of the usable log results and which dependencies they mention."""
    error_lines = 0
    mentioned: dict[str, dict[str, int]] = {name: {} for name in DEPENDENCIES}
    for row in rows:
        evidence = row.get("evidence")
        if _status(row) not in _RANK or not isinstance(evidence, Mapping):
            continue
        error_lines += _count(evidence.get("error_lines"))
        top = evidence.get("top_errors")
        for item in top if isinstance(top, list) else []:
            message = str(item.get("message", "")) if isinstance(item, Mapping) else ""
            for name, pattern in _MENTIONS.items():
                if pattern.search(message):
                    counts = mentioned[name]
                    counts[message] = counts.get(message, 0) + _count(item.get("count"))
    mentions = {}
    for name, counts in mentioned.items():
        if counts:
            example = min(counts, key=lambda m: (-counts[m], m))
            total = sum(counts.values())
            mentions[name] = _line(f"{total} error line(s) mention {name} (e.g. {example!r})")
    return error_lines, mentions


def _deployments(
    rows: Sequence[Mapping[str, Any]], anchor: datetime, scope: BreachScope
) -> tuple[list[_Deployment], list[str]]:
    """Return the deployments the usable change results list that could have caused the breach,
    the most recent first, and those that could not (said, with why)."""
    found = []
    unrelated = []
    for row in rows:
        evidence = row.get("evidence")
        listed = evidence.get("deployments") if isinstance(evidence, Mapping) else None
        if _status(row) not in _RANK or not isinstance(listed, list):
            continue
        for item in listed:
            if not isinstance(item, Mapping):
                continue
            minutes = item.get("minutes_before_breach")
            if not isinstance(minutes, int | float) or isinstance(minutes, bool):
                deployed = _when(item.get("deployed_at"))
                if deployed is None:
                    continue
                minutes = round((anchor - deployed).total_seconds() / 60, 1)
            deployment = _Deployment(float(minutes), item)
            why = out_of_scope(item, scope)
            if why is None:
                found.append(deployment)
            else:
                unrelated.append(f"{deployment.said()}: {why}")
    # Deployments after the breach sort last: only those before it can be the suspect.
    found.sort(key=lambda d: (d.minutes < 0, abs(d.minutes), _text_of(d.row)))
    return found, sorted(unrelated)


def _change(deployment: _Deployment) -> dict[str, Any]:
    plain = (str, int, float, bool, type(None))
    change = {str(k): v for k, v in deployment.row.items() if isinstance(v, plain)}
    change["minutes_before_breach"] = deployment.minutes
    return dict(sorted(change.items()))


def _endpoint_component(
    endpoint: _Probe, breach: Mapping[str, Any], segment: Mapping[str, Any]
) -> str:
    asked = endpoint.asked
    parts = {
        "provider": asked.get("provider") or segment.get("provider") or breach.get("provider"),
        "model": asked.get("model") or breach.get("model_id"),
        "region": asked.get("region") or segment.get("region") or breach.get("region"),
    }
    return " ".join(["endpoint", *(f"{k}={v}" for k, v in parts.items() if v)])


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _when(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return _aware(value)
    if not isinstance(value, str):
        return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _line(text: str, limit: int = _TEXT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
