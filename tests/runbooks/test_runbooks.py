"""Runbooks: the shipped ones load, matching is specific and deterministic, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.catalog import SHIPPED_CATALOG, load_catalog
from runbooks.library import SHIPPED_RUNBOOKS, load_runbooks, match_runbook, validate_folder
from runbooks.loader import ConfigError, load_model, parse_model
from runbooks.schema import (
    DIAGNOSES,
    METRICS,
    FailoverAction,
    PageAction,
    Runbook,
    identify_metric,
    lint_runbook,
    metric_from_name,
    normalise_metric,
)

BASE = """\
name: {name}
version: 1
description: A test runbook.
match:
  metrics: [latency_p95]
{extra}probes:
  endpoint: {{timeout_seconds: 5}}
actions:
  endpoint_isolated:
    failover: {{target: backup_region, approval: required}}
    page: {{severity: error}}
{actions}approval:
  approvers: [U0ALICE]
"""


def text(name: str = "slow", extra: str = "", actions: str = "") -> str:
    return BASE.format(name=name, extra=extra, actions=actions)


def runbook(name: str = "slow", extra: str = "", actions: str = "") -> Runbook:
    return parse_model(text(name, extra, actions), Runbook, Path(f"{name}.yaml"))


def write(folder: Path, filename: str, content: str) -> Path:
    path = folder / filename
    path.write_text(content)
    return path


def breach(
    runbooks: list[Runbook],
    *,
    metric: str | None = "latency_p95",
    service: str | None = None,
    model: str | None = None,
    environment: str | None = "production",
    segment: dict[str, str] | None = None,
) -> str | None:
    found = match_runbook(
        runbooks,
        metric=metric,
        service=service,
        model=model,
        environment=environment,
        segment=segment,
    )
    return found.name if found else None


def test_the_shipped_runbooks_load_without_errors_or_warnings_and_cover_every_metric() -> None:
    runbooks, warnings = validate_folder(SHIPPED_RUNBOOKS)
    assert warnings == []
    for metric in METRICS:
        found = match_runbook(
            runbooks, metric=metric, service="any", model=None, environment="production"
        )
        assert found is not None and metric in found.match.metrics, metric


def test_the_support_bot_runbook_needs_alice_to_approve_its_failover() -> None:
    runbooks = load_runbooks(SHIPPED_RUNBOOKS)
    found = match_runbook(
        runbooks,
        metric="latency_p95_ms",
        service="support-bot",
        model="support-bot",
        environment="production",
        segment={"region": "eu-west-1"},
    )
    assert found is not None and found.ref == "support-bot-latency@2.1.0"
    failover = found.spec("endpoint_isolated", "failover")
    assert failover is not None and failover.needs_approval
    assert found.approval.approvers == ["U0ALICE"]
    assert breach(runbooks, service="search-bot") == "latency"
    assert breach(runbooks, service="support-bot", environment="staging") == "staging"


def test_named_failover_targets_of_shipped_runbooks_exist_in_the_shipped_catalog() -> None:
    catalog = load_catalog(SHIPPED_CATALOG)
    for loaded in load_runbooks(SHIPPED_RUNBOOKS):
        for diagnosis in DIAGNOSES:
            failover = loaded.spec(diagnosis, "failover")
            if not isinstance(failover, FailoverAction):
                continue
            if failover.target in ("backup_region", "fallback_model"):
                continue
            for service in loaded.match.services:
                routes = catalog.services[service].failover
                assert routes is not None, loaded.name
                assert failover.target in [target.name for target in routes.targets]


def test_the_most_specific_runbook_wins_and_ties_go_to_the_first_name() -> None:
    general = runbook("general")
    eu = runbook("eu", "  segments: {region: [eu-west-1, eu-central-1]}\n")
    bot_prod = runbook("bot-prod", "  services: [bot]\n  environments: [Production]\n")
    bot_model = runbook("b-model", "  services: [bot]\n  models: [bot-v3]\n")
    runbooks = [general, eu, bot_prod, bot_model]
    assert breach(runbooks) == "general"
    assert breach(runbooks, segment={"region": "eu-west-1"}) == "eu"
    assert breach(runbooks, segment={"region": "us-east-1"}) == "general"
    assert breach(runbooks, service="bot", segment={"region": "eu-west-1"}) == "bot-prod"
    # bot-prod and b-model both have two constraints; the name decides, whatever the order.
    assert breach(runbooks, service="bot", model="bot-v3") == "b-model"
    assert breach(list(reversed(runbooks)), service="bot", model="bot-v3") == "b-model"


def test_no_runbook_matches_an_unknown_or_uncovered_metric() -> None:
    runbooks = [runbook("only", "  services: [bot]\n")]
    assert breach(runbooks, metric="latency_p50", service="bot") is None
    assert breach(runbooks, metric=None, service="bot") is None
    assert breach(runbooks, metric="error_rate", service="bot") is None
    assert breach(runbooks, service=None) is None


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("latency_p95_ms", "latency_p95"),
        ("p95_latency", "latency_p95"),
        ("LLM Latency P99 (ms)", "latency_p99"),
        ("latencyP99", "latency_p99"),
        ("llm_error_rate", "error_rate"),
        ("query_cost_usd", "cost_per_query"),
        ("total_tokens", "token_usage"),
        ("hallucination_rate", "hallucination_score"),
        ("availability_pct", "uptime"),
        ("latency_p50", None),
        ("cost", None),
    ],
)
def test_metric_aliases_normalise_to_the_vocabulary(name: str, metric: str | None) -> None:
    assert normalise_metric(name) == metric


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("RagAnswersSlow", "latency_p95"),
        ("ChatbotFivexxSpike", "error_rate"),
        ("chatbot_5xx_spike", "error_rate"),
        ("rag-answers-slow", "latency_p95"),
        ("LLMLatencyP99High", "latency_p99"),
        ("SupportBotHighErrorRate", "error_rate"),
        ("Http5xxRate", "error_rate"),
        ("RagSpendTooHigh", "cost_per_query"),
        ("TokenCostHigh", "cost_per_query"),
        ("PromptTokensExploding", "token_usage"),
        ("AnswerQualityDrop", "quality_score"),
        ("ChatbotHallucinating", "hallucination_score"),
        ("SupportBotAvailability", "uptime"),
        ("support-bot p95 latency", "latency_p95"),
        ("latency_p95_ms", "latency_p95"),
        ("SlowAnswersAndErrors", None),  # two metrics: says nothing for sure
        ("RagIndexStale", None),
    ],
)
def test_an_alert_name_says_its_metric_through_its_words(name: str, metric: str | None) -> None:
    assert metric_from_name(name) == metric


def test_the_metric_label_wins_when_the_vocabulary_knows_it_else_the_alert_name() -> None:
    assert identify_metric("error_rate", "RagAnswersSlow") == "error_rate"
    assert identify_metric("llm_requests_total", "RagAnswersSlow") == "latency_p95"
    assert identify_metric(None, "RagAnswersSlow") == "latency_p95"
    assert identify_metric("llm_requests_total", "RagIndexStale") is None


@pytest.mark.parametrize("minutes", ["0", "-5", "1441", "soon"])
def test_the_failback_retry_interval_is_validated(tmp_path: Path, minutes: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(text() + f"failback_retry_minutes: {minutes}\n")
    with pytest.raises(ConfigError) as caught:
        load_model(path, Runbook)
    assert "failback_retry_minutes" in str(caught.value)


def test_a_failback_retry_interval_without_any_failover_warns() -> None:
    failing_over = parse_model(text() + "failback_retry_minutes: 10\n", Runbook, Path("a"))
    no_failover = text().replace("    failover: {target: backup_region, approval: required}\n", "")
    paging_only = parse_model(no_failover + "failback_retry_minutes: 10\n", Runbook, Path("b"))
    assert failing_over.failback_retry_minutes == 10
    assert not any("failback_retry_minutes" in w for w in lint_runbook(failing_over))
    assert any("failback_retry_minutes" in w for w in lint_runbook(paging_only))


def test_aliases_in_a_runbook_file_are_stored_as_vocabulary_names() -> None:
    loaded = parse_model(
        text().replace("[latency_p95]", "[p99_latency_ms, llm_error_rate]"), Runbook, Path("a")
    )
    assert loaded.match.metrics == ["latency_p99", "error_rate"]


def test_an_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "slow.yaml", text().replace("  endpoint: {", "  endpoint: {timout: 1, "))
    with pytest.raises(ConfigError) as caught:
        load_runbooks(tmp_path)
    assert str(caught.value) == f"{path}:7: probes.endpoint.timout: unknown key (not in the schema)"


def test_unknown_action_probe_and_diagnosis_names_are_errors_naming_them(tmp_path: Path) -> None:
    content = text().replace("    page:", "    reboot: {}\n    page:")
    content = content.replace("probes:\n", "probes:\n  tracing:\n")
    content = content.replace("approval:\n", "actions_typo: 1\napproval:\n")
    path = write(tmp_path, "slow.yaml", content)
    with pytest.raises(ConfigError) as caught:
        load_runbooks(tmp_path)
    assert caught.value.problems == [
        f"{path}:7: probes.tracing: unknown key (not in the schema)",
        f"{path}:12: actions.endpoint_isolated.reboot: unknown key (not in the schema)",
        f"{path}:14: actions_typo: unknown key (not in the schema)",
    ]


def test_version_is_required_and_is_an_integer_or_semver(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", text().replace("version: 1\n", ""))
    with pytest.raises(ConfigError, match=r"a.yaml:1: version: Field required"):
        load_runbooks(tmp_path)
    path.write_text(text().replace("version: 1", "version: 1.2"))
    with pytest.raises(ConfigError, match=r"a.yaml:2: version: .* quoted semver string"):
        load_runbooks(tmp_path)
    path.write_text(text().replace("version: 1", "version: '1.2.0-rc.1'"))
    assert load_runbooks(tmp_path)[0].ref == "slow@1.2.0-rc.1"


def test_approvers_must_be_slack_ids_not_names(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", text().replace("[U0ALICE]", "[U0ALICE, '@bob']"))
    with pytest.raises(ConfigError, match=r"a.yaml:13: approval.approvers: .*'@bob'"):
        load_runbooks(tmp_path)


def test_duplicate_names_across_files_name_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", text("slow"))
    second = write(tmp_path, "b.yaml", text("slow"))
    with pytest.raises(ConfigError) as caught:
        load_runbooks(tmp_path)
    assert str(caught.value) == f"{second}:1: name: runbook 'slow' is also defined in {first}"


def test_a_folder_with_two_broken_files_reports_both(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", text("good"))
    broken = write(tmp_path, "broken.yaml", text("broken").replace("severity: error", "sev: 1"))
    invalid = write(tmp_path, "invalid.yaml", "name: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_runbooks(tmp_path)
    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0] == f"{broken}:11: actions.endpoint_isolated.page.severity: Field required"
    assert (
        problems[1]
        == f"{broken}:11: actions.endpoint_isolated.page.sev: unknown key (not in the schema)"
    )
    assert problems[2].startswith(f"{invalid}:2: not valid YAML")


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder of runbooks"):
        load_runbooks(tmp_path / "nowhere")


def test_an_action_not_listed_for_a_diagnosis_is_not_allowed() -> None:
    loaded = runbook()
    assert [spec.kind for spec in loaded.allowed("endpoint_isolated")] == ["failover", "page"]
    assert loaded.permits("endpoint_isolated", "failover")
    assert not loaded.permits("endpoint_isolated", "rollback")
    assert not loaded.permits("suspect_change", "failover")
    assert loaded.allowed("suspect_change") == []
    assert loaded.allowed("the model says so") == []
    assert not loaded.permits("endpoint_isolated", "delete_everything")
    page = loaded.spec("endpoint_isolated", "page")
    assert isinstance(page, PageAction) and page.pages_on_call


def test_a_name_without_settings_lists_it_with_safe_defaults() -> None:
    loaded = runbook(actions="  suspect_change:\n    rollback:\n")
    rollback = loaded.spec("suspect_change", "rollback")
    assert rollback is not None and rollback.needs_approval
    assert loaded.approval.ttl_seconds == 900
    assert loaded.approval.on_timeout.action == "page"
    assert loaded.payload_policy == "hash"
    assert not loaded.analyst.enabled


def test_warning_and_info_pages_only_reach_slack() -> None:
    loaded = parse_model(text().replace("severity: error", "severity: warning"), Runbook, Path("a"))
    page = loaded.spec("endpoint_isolated", "page")
    assert isinstance(page, PageAction) and not page.pages_on_call


def test_empty_approvers_is_valid_but_warns_that_nobody_can_approve(tmp_path: Path) -> None:
    loaded = parse_model(text().replace("[U0ALICE]", "[]"), Runbook, Path("a"))
    assert lint_runbook(loaded) == [
        "actions.endpoint_isolated.failover: approval is required but approval.approvers is "
        "empty, so nobody can approve it and it always times out (page instead)",
        "failback: approval is required but approval.approvers is empty, so the service stays "
        "on its failover route until someone moves it back by hand",
    ]
    path = write(tmp_path, "a.yaml", text().replace("[U0ALICE]", "[]"))
    runbooks, warnings = validate_folder(tmp_path)
    assert [r.name for r in runbooks] == ["slow"]
    assert len(warnings) == 2 and all(w.startswith(f"{path}: ") for w in warnings)


def test_lint_names_diagnoses_that_can_never_be_reached() -> None:
    loaded = parse_model(
        text(actions="  segment_only:\n    notify:\n").replace("endpoint: {", "logs: {"),
        Runbook,
        Path("a"),
    )
    assert lint_runbook(loaded) == [
        "actions.endpoint_isolated: listed, but probes has none of endpoint, "
        "so this diagnosis is never reached",
        "actions.segment_only: listed, but diagnosis.segment_keys is empty, "
        "so this diagnosis is never reached",
    ]


def test_validate_warns_about_an_empty_folder_and_ignored_yml_files(tmp_path: Path) -> None:
    stray = write(tmp_path, "slow.yml", text())
    runbooks, warnings = validate_folder(tmp_path)
    assert runbooks == []
    assert warnings == [
        f"{stray}: ignored: runbook files must end in .yaml",
        f"{tmp_path}: no runbooks, so no breach matches a runbook",
    ]
