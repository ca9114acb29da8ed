"""The diagnosis rules: which diagnosis the findings lead to, and the evidence shown for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.graph.rules import Candidate, Diagnosis, apply_rules
from runbooks.schema import DiagnosisRules
from tools.result import ToolResult, ToolStatus

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BREACH: dict[str, Any] = {
    "source": "arize",
    "monitor_id": "mon-1",
    "status": "triggered",
    "metric": "latency_p95",
    "model_id": "support-bot",
    "service": "support-bot",
    "segment": {},
    "triggered_at": NOW.isoformat(),
}
RULES = DiagnosisRules(change_window_minutes=60, min_error_lines=5, segment_keys=["region"])
Findings = dict[str, list[dict[str, Any]]]


def result(
    tool: str,
    status: str,
    summary: str | None = None,
    *,
    evidence: dict[str, Any] | None = None,
    asked: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return ToolResult(
        tool=tool,
        status=ToolStatus(status),
        summary=summary or f"{tool} looks {status}",
        asked=asked or {},
        evidence=evidence or {},
        error=error,
    ).model_dump(mode="json")


def logs(error_lines: int, *top: tuple[int, str], tool: str = "cloudwatch_logs") -> dict[str, Any]:
    evidence = {
        "lines": error_lines + 100,
        "error_lines": error_lines,
        "top_errors": [{"count": n, "message": m} for n, m in top],
    }
    return result(tool, "degraded" if error_lines else "ok", evidence=evidence)


def deployment(minutes: float, version: str = "v2", kind: str = "model") -> dict[str, Any]:
    return {
        "kind": kind,
        "version": version,
        "previous_version": "v1",
        "service": "support-bot",
        "model_id": "support-bot",
        "actor": "ci@example.com",
        "deployed_at": (NOW - timedelta(minutes=minutes)).isoformat(),
        "minutes_before_breach": minutes,
    }


def changes(*deployments: dict[str, Any]) -> dict[str, Any]:
    if not deployments:
        return result("changes", "no_data", "no deployment in the 60 min before the breach")
    return result("changes", "ok", evidence={"deployments": list(deployments)})


def healthy(**override: list[dict[str, Any]]) -> Findings:
    findings: Findings = {
        "logs": [logs(0)],
        "vector_db": [result("vector_db", "ok")],
        "embeddings": [result("embeddings", "ok")],
        "endpoint": [result("endpoint", "ok", asked={"model": "gpt-4o-mini"})],
        "changes": [changes()],
    }
    findings.update(override)
    return findings


def run(
    findings: Findings, breach: dict[str, Any] | None = None, rules: DiagnosisRules = RULES
) -> Diagnosis:
    return apply_rules(breach=breach or BREACH, findings=findings, rules=rules, now=NOW)


def candidate(diagnosis: Diagnosis, kind: str) -> Candidate:
    return next(c for c in diagnosis.candidates if c.kind == kind)


def test_a_degraded_vector_db_is_a_dependency_fault_to_page_its_owner_for() -> None:
    wrong = "the canary's nearest neighbour is 7, expected 33: the index answers wrongly"

    diagnosis = run(healthy(vector_db=[result("vector_db", "degraded", wrong)]))

    assert diagnosis.kind == "dependency_degraded"
    assert (diagnosis.component, diagnosis.owner_hint) == ("vector_db", "vector_db")
    assert "index answers wrongly" in diagnosis.summary
    chosen = candidate(diagnosis, "dependency_degraded")
    assert chosen.verdict == "chosen"
    assert any("answers wrongly" in e for e in chosen.evidence_for)
    assert not diagnosis.conflicting


def test_embeddings_drift_names_the_embedding_service() -> None:
    drift = "similarity to golden vectors fell to 0.71 (threshold 0.98)"

    diagnosis = run(healthy(embeddings=[result("embeddings", "degraded", drift)]))

    assert diagnosis.kind == "dependency_degraded"
    assert diagnosis.owner_hint == "embeddings"
    assert "0.71" in diagnosis.summary


@pytest.mark.parametrize(
    ("vector_db", "embeddings", "named", "other"),
    [
        ("degraded", "degraded", "vector_db", "embeddings"),
        ("down", "degraded", "vector_db", "embeddings"),
        ("degraded", "down", "embeddings", "vector_db"),
    ],
)
def test_with_both_dependencies_at_fault_the_worse_is_named_and_the_other_is_evidence(
    vector_db: str, embeddings: str, named: str, other: str
) -> None:
    diagnosis = run(
        healthy(
            vector_db=[result("vector_db", vector_db)],
            embeddings=[result("embeddings", embeddings)],
        )
    )

    assert diagnosis.kind == "dependency_degraded"
    assert diagnosis.owner_hint == named
    assert other in diagnosis.summary
    assert any(e.startswith(other) for e in candidate(diagnosis, diagnosis.kind).evidence_for)
    assert not diagnosis.conflicting


def test_log_lines_blaming_a_healthy_vector_store_are_a_red_herring() -> None:
    noisy = logs(40, (40, "vector store timeout after 3000 ms"), (3, "upstream error"))
    slow = "gpt-4o-mini: 2 slow, 1 ok of 3 diagnostic prompts"

    diagnosis = run(healthy(logs=[noisy], endpoint=[result("endpoint", "degraded", slow)]))

    assert diagnosis.kind == "endpoint_isolated"
    dependency = candidate(diagnosis, "dependency_degraded")
    assert dependency.verdict == "rejected"
    herring = [e for e in dependency.evidence_against if "red herring" in e]
    assert herring and "vector store timeout" in herring[0]
    assert not any("vector store" in e for e in dependency.evidence_for)
    assert any("40 log error lines" in e for e in candidate(diagnosis, diagnosis.kind).evidence_for)


def test_log_lines_blaming_a_degraded_vector_store_support_it() -> None:
    noisy = logs(40, (40, "qdrant query failed: 503"))

    diagnosis = run(healthy(logs=[noisy], vector_db=[result("vector_db", "degraded")]))

    assert diagnosis.kind == "dependency_degraded"
    assert any("qdrant" in e for e in candidate(diagnosis, diagnosis.kind).evidence_for)


@pytest.mark.parametrize(
    ("endpoint", "log_errors", "why"),
    [("degraded", 0, "endpoint degraded"), ("ok", 12, "12 log error lines")],
)
def test_a_recent_deployment_while_the_service_misbehaves_is_the_suspect(
    endpoint: str, log_errors: int, why: str
) -> None:
    findings = healthy(
        logs=[logs(log_errors, (log_errors, "prompt template error"))],
        endpoint=[result("endpoint", endpoint)],
        changes=[changes(deployment(45, "v1.9", "prompt"), deployment(12, "v2", "model"))],
    )

    diagnosis = run(findings)

    assert diagnosis.kind == "suspect_change"
    assert diagnosis.component == "deployment"
    assert diagnosis.change is not None
    assert (diagnosis.change["version"], diagnosis.change["kind"]) == ("v2", "model")
    assert diagnosis.change["minutes_before_breach"] == 12
    assert "v2 (from v1) 12 min before the breach" in diagnosis.summary
    assert why in diagnosis.summary
    assert not diagnosis.conflicting
    if endpoint == "degraded":
        assert candidate(diagnosis, "endpoint_isolated").verdict == "outranked"


def test_a_deployment_without_minutes_is_placed_by_its_time_against_the_breach() -> None:
    row = deployment(0)
    del row["minutes_before_breach"]
    row["deployed_at"] = (NOW - timedelta(minutes=20)).isoformat()

    diagnosis = run(healthy(endpoint=[result("endpoint", "down")], changes=[changes(row)]))

    assert diagnosis.kind == "suspect_change"
    assert diagnosis.change is not None and diagnosis.change["minutes_before_breach"] == 20


@pytest.mark.parametrize(
    ("minutes", "reason"), [(90, "outside the 60 min window"), (-3, "cannot have caused it")]
)
def test_a_deployment_outside_the_window_or_after_the_breach_is_not_suspect(
    minutes: float, reason: str
) -> None:
    findings = healthy(
        endpoint=[result("endpoint", "degraded")], changes=[changes(deployment(minutes))]
    )

    diagnosis = run(findings)

    assert diagnosis.kind == "endpoint_isolated"
    assert diagnosis.change is None
    change = candidate(diagnosis, "suspect_change")
    assert change.verdict == "rejected"
    assert any(reason in e for e in change.evidence_against)


def test_a_deployment_in_the_window_is_the_suspect_even_while_the_probes_look_healthy() -> None:
    # A prompt template or a config flag changes what no probe sees: with nothing else to explain
    # the breach, the change in the runbook's window is the suspect.
    findings = healthy(logs=[logs(2, (2, "one error"))], changes=[changes(deployment(10))])

    diagnosis = run(findings)

    assert diagnosis.kind == "suspect_change"
    assert diagnosis.change is not None and diagnosis.change["version"] == "v2"
    assert "nothing else explains the breach" in diagnosis.summary
    change = candidate(diagnosis, "suspect_change")
    assert any("within the 60 min window" in e for e in change.evidence_for)
    assert any("looks healthy" in e and "fewer than 5" in e for e in change.evidence_against)
    assert candidate(diagnosis, "no_fault_found").verdict == "rejected"
    assert not diagnosis.conflicting


def test_a_faulty_dependency_still_outranks_a_change_the_service_shows_no_sign_of() -> None:
    findings = healthy(
        vector_db=[result("vector_db", "degraded")], changes=[changes(deployment(10))]
    )

    diagnosis = run(findings)

    assert diagnosis.kind == "dependency_degraded"
    assert candidate(diagnosis, "suspect_change").verdict == "outranked"
    assert not diagnosis.conflicting  # a change without a misbehaving service is weak evidence


def scoped(minutes: float, **fields: Any) -> dict[str, Any]:
    return {**deployment(minutes), **fields}


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"environment": "staging"}, "another environment (staging, the breach is in production)"),
        ({"service": "billing-bot"}, "another service (billing-bot"),
        ({"region": "us-east-1"}, "another region (us-east-1, the breach is in eu-west-1)"),
        ({"model_id": "support-bot-v2"}, "another model (support-bot-v2"),
    ],
)
def test_a_change_that_cannot_have_caused_the_breach_is_never_the_suspect(
    fields: dict[str, Any], why: str
) -> None:
    breach = {**BREACH, "environment": "production", "segment": {"region": "eu-west-1"}}
    findings = healthy(
        endpoint=[result("endpoint", "down")], changes=[changes(scoped(10, **fields))]
    )

    diagnosis = run(findings, breach=breach)

    assert diagnosis.kind == "endpoint_isolated"
    assert diagnosis.change is None
    change = candidate(diagnosis, "suspect_change")
    assert change.verdict == "rejected"
    assert any(why in e and "cannot have caused it" in e for e in change.evidence_against)


@pytest.mark.parametrize(
    "fields",
    [
        {"environment": "PRODUCTION"},  # Arize spells environments in either case
        {"environment": None, "region": None, "model_id": None},  # it may have gone everywhere
        {"region": "eu-west-1"},
    ],
)
def test_a_change_of_the_same_service_environment_and_region_counts(
    fields: dict[str, Any],
) -> None:
    breach = {**BREACH, "environment": "production", "segment": {"region": "eu-west-1"}}

    diagnosis = run(healthy(changes=[changes(scoped(10, **fields))]), breach=breach)

    assert diagnosis.kind == "suspect_change"


def test_the_catalog_service_scopes_changes_when_the_alert_names_none() -> None:
    breach = {**BREACH, "service": None, "model_id": "sb-prod"}
    mine = scoped(10, service="support-bot", model_id=None, version="mine")
    theirs = scoped(5, service="other-bot", model_id=None, version="theirs")

    diagnosis = apply_rules(
        breach=breach,
        findings=healthy(changes=[changes(mine, theirs)]),
        rules=RULES,
        now=NOW,
        service="support-bot",
    )

    assert diagnosis.kind == "suspect_change"
    assert diagnosis.change is not None and diagnosis.change["version"] == "mine"


def test_a_breach_in_the_primary_region_is_never_segment_only() -> None:
    breach = {**BREACH, "segment": {"region": "eu-west-1"}}

    primary = apply_rules(
        breach=breach, findings=healthy(), rules=RULES, now=NOW, primary_region="eu-west-1"
    )
    elsewhere = apply_rules(
        breach=breach, findings=healthy(), rules=RULES, now=NOW, primary_region="us-east-1"
    )

    assert primary.kind == "no_fault_found"
    segment = candidate(primary, "segment_only")
    assert segment.verdict == "rejected"
    assert any("primary region" in e for e in segment.evidence_against)
    assert elsewhere.kind == "segment_only"


def test_every_faulty_dependency_is_named_the_worse_first() -> None:
    diagnosis = run(
        healthy(
            vector_db=[result("vector_db", "degraded")],
            embeddings=[result("embeddings", "down")],
        )
    )

    assert diagnosis.kind == "dependency_degraded"
    assert diagnosis.dependencies == ["embeddings", "vector_db"]
    assert diagnosis.owner_hint == "embeddings"
    assert "embeddings is down; vector_db is degraded" in diagnosis.summary
    assert run(healthy()).dependencies == []


@pytest.mark.parametrize("error", ["timeout", "APITimeoutError: Request timed out."])
def test_an_endpoint_that_timed_out_is_an_endpoint_fault_named_by_model_and_region(
    error: str,
) -> None:
    down = result(
        "endpoint",
        "down",
        "gpt-4o-mini did not answer any of 3 prompts (3 timeout)",
        asked={"base_url": "http://llm.local/v1", "model": "gpt-4o-mini"},
        error=error,
    )
    breach = {**BREACH, "segment": {"region": "eu-west-1", "provider": "openai"}}

    diagnosis = run(healthy(endpoint=[down]), breach=breach)

    assert diagnosis.kind == "endpoint_isolated"
    assert diagnosis.component == "endpoint provider=openai model=gpt-4o-mini region=eu-west-1"
    assert diagnosis.inconclusive_probes == []
    assert candidate(diagnosis, "segment_only").verdict == "rejected"  # endpoint not healthy


def test_a_breach_in_a_listed_segment_with_everything_healthy_is_segment_only() -> None:
    breach = {**BREACH, "segment": {"region": "eu-west-1", "cohort": "beta"}}

    diagnosis = run(healthy(), breach=breach)

    assert diagnosis.kind == "segment_only"
    assert diagnosis.component == "region=eu-west-1"
    assert "confined to region=eu-west-1" in diagnosis.summary
    assert candidate(diagnosis, "no_fault_found").verdict == "rejected"


@pytest.mark.parametrize("segment_keys", [[], ["region"]])
def test_segment_only_needs_the_breach_key_in_segment_keys(segment_keys: list[str]) -> None:
    breach = {**BREACH, "segment": {"cohort": "beta"}}
    rules = DiagnosisRules(segment_keys=segment_keys)

    diagnosis = run(healthy(), breach=breach, rules=rules)

    assert diagnosis.kind == "no_fault_found"
    segment = candidate(diagnosis, "segment_only")
    assert any("not in segment_keys" in e for e in segment.evidence_against)


def test_missing_and_failed_probes_are_inconclusive_evidence_not_a_crash() -> None:
    timed_out = result("vector_db", "error", "vector_db probe timed out after 5s", error="timeout")
    findings: Findings = {
        "vector_db": [timed_out],
        "endpoint": [result("endpoint", "degraded")],
        "embeddings": [],
        "changes": [{"status": "ok", "evidence": {"deployments": ["garbage", {"kind": "x"}]}}],
    }

    diagnosis = run(findings)

    assert diagnosis.kind == "endpoint_isolated"
    assert diagnosis.inconclusive_probes == ["vector_db"]
    dependency = candidate(diagnosis, "dependency_degraded")
    assert dependency.verdict == "rejected"
    assert any("timed out, inconclusive" in e for e in dependency.evidence_against)
    assert any(
        "vector_db probe timed out" in e
        for e in candidate(diagnosis, "endpoint_isolated").evidence_against
    )
    assert not diagnosis.conflicting


def test_when_every_probe_fails_nothing_is_concluded_and_the_result_is_flagged() -> None:
    findings: Findings = {
        "logs": [result("cloudwatch_logs", "error", "CloudWatch Logs query failed")],
        "endpoint": [result("endpoint", "error", "gpt-4o-mini gave unusable answers")],
        "vector_db": [{"tool": "vector_db", "status": "weird", "evidence": "not a dict"}],
        "changes": [
            result("changes", "error", "changes probe timed out after 5s", error="timeout")
        ],
    }
    breach = {**BREACH, "triggered_at": "not a time", "segment": "not a mapping"}

    diagnosis = run(findings, breach=breach)

    assert diagnosis.kind == "no_fault_found"
    assert diagnosis.inconclusive_probes == ["logs", "vector_db", "endpoint", "changes"]
    assert diagnosis.conflicting
    assert "every probe was inconclusive" in diagnosis.summary


def test_no_findings_at_all_is_no_fault_found_without_conflict() -> None:
    diagnosis = run({})

    assert diagnosis.kind == "no_fault_found"
    assert diagnosis.inconclusive_probes == []
    assert not diagnosis.conflicting


@pytest.mark.parametrize(
    "override",
    [
        {"endpoint": [result("endpoint", "down")]},
        {"changes": [changes(deployment(5))], "logs": [logs(30, (30, "upstream error"))]},
    ],
    ids=["endpoint down too", "suspect change too"],
)
def test_a_degraded_dependency_with_another_strong_cause_is_conflicting(
    override: Findings,
) -> None:
    diagnosis = run(healthy(vector_db=[result("vector_db", "degraded")], **override))

    assert diagnosis.kind == "dependency_degraded"
    assert diagnosis.conflicting
    assert "conflicting" in diagnosis.summary
    assert any(c.verdict == "outranked" for c in diagnosis.candidates)


def test_the_same_findings_in_any_order_give_the_same_diagnosis() -> None:
    findings = healthy(
        logs=[
            logs(8, (5, "vector store timeout"), (3, "embedding call failed"), tool="gcp_logs"),
            logs(4, (4, "upstream error")),
        ],
        endpoint=[result("endpoint", "degraded")],
        changes=[changes(deployment(30, "v3"), deployment(30, "v2"), deployment(80, "v1"))],
    )
    breach = {**BREACH, "segment": {"region": "us-east-1", "cohort": "beta"}}
    reordered = {name: list(reversed(rows)) for name, rows in reversed(list(findings.items()))}
    reordered["changes"] = [
        changes(deployment(80, "v1"), deployment(30, "v2"), deployment(30, "v3"))
    ]
    reordered_breach = {**breach, "segment": {"cohort": "beta", "region": "us-east-1"}}

    first = run(findings, breach=breach).to_dict()

    assert run(findings, breach=breach).to_dict() == first
    assert run(reordered, breach=reordered_breach).to_dict() == first
    assert first["change"]["version"] == "v2"


def test_the_diagnosis_survives_a_round_trip_through_json() -> None:
    findings = healthy(endpoint=[result("endpoint", "degraded")], changes=[changes(deployment(7))])

    data = run(findings).to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["kind"] == "suspect_change"
    assert [c["kind"] for c in data["candidates"]] == [
        "dependency_degraded",
        "suspect_change",
        "endpoint_isolated",
        "segment_only",
        "no_fault_found",
    ]
    assert set(data["candidates"][0]) == {"kind", "verdict", "evidence_for", "evidence_against"}


def test_segment_only_needs_the_endpoint_probed_healthy() -> None:
    breach = {**BREACH, "segment": {"region": "eu-west-1"}}
    rules = DiagnosisRules(segment_keys=["region"])
    unprobed = {k: v for k, v in healthy().items() if k != "endpoint"}

    confined = run(healthy(), breach=breach, rules=rules)
    unproven = run(unprobed, breach=breach, rules=rules)

    assert confined.kind == "segment_only"
    assert unproven.kind == "no_fault_found"
    assert any(
        "not probed healthy" in e for e in candidate(unproven, "segment_only").evidence_against
    )


def test_a_cost_breach_after_a_deployment_is_a_suspect_change_without_errors() -> None:
    deployed = result(
        "changes",
        "ok",
        evidence={
            "deployments": [{"kind": "prompt", "version": "p-9", "minutes_before_breach": 15}]
        },
    )
    cost = {**BREACH, "metric": "cost_per_query_usd", "segment": {}}

    diagnosis = run(healthy(changes=[deployed]), breach=cost)

    assert diagnosis.kind == "suspect_change"
    assert diagnosis.change is not None and diagnosis.change["version"] == "p-9"
