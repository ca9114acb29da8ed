"""Scoring: every way what the agent did differs from what the scenario expects."""

from __future__ import annotations

from sandbox.evaluation.arize import compare_arize
from sandbox.evaluation.arize_prompts import compare_labels
from sandbox.evaluation.causes import compare_causes
from sandbox.evaluation.checks import check_order, check_routes, check_texts, check_within
from sandbox.evaluation.observe import Observation
from sandbox.evaluation.scenario import Expected, ExpectedFailover

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
    got_states = [i.run_state for i in incidents]
    if got_states != expected.run_states(len(incidents)):
        problems.append(
            f"run state: expected {expected.run_states(len(incidents))}, got {got_states}"
        )
    for incident in incidents:
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
    record = seen.record
    problems += check_order(expected.order, record)
    problems += check_within(expected.within_seconds, record)
    problems += check_texts("slack", expected.slack, record.slack_text)
    problems += check_texts("pagerduty", expected.pagerduty, record.pagerduty_text)
    problems += check_routes(expected.routes or {}, record)
    problems += compare_labels(expected.prompt_labels, seen.prompt_labels)
    problems += compare_arize(expected.arize, seen.arize)
    problems += compare_causes(expected.alerts, expected.causes, seen.alerts, seen.causes)
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
