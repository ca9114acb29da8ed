"""The scored evaluation: scenarios load strictly, run against the sandbox, and are scored."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks.library import SHIPPED_RUNBOOKS, load_runbooks
from sandbox.evaluation.runner import (
    ScenarioError,
    ScenarioResult,
    find_scenarios,
    format_table,
    load_scenario,
    run_all,
    to_json,
)

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def copy_scenario(name: str, into: Path) -> Path:
    """Copy a shipped scenario folder, to change one of its files."""
    return Path(shutil.copytree(SCENARIOS / name, into / name))


def test_loading_refuses_a_world_with_an_unknown_or_wrong_key_and_names_it(tmp_path: Path) -> None:
    folder = copy_scenario("case-01-eu-latency", tmp_path)
    (folder / "world.yaml").write_text("vector_db: wrong_neighbour\nvectr_db: down\n")
    with pytest.raises(ScenarioError) as refused:
        load_scenario(folder)
    assert f"{folder / 'world.yaml'}:2: vectr_db: unknown key" in str(refused.value)

    (folder / "world.yaml").write_text("endpoint:\n  eu-west-1: {state: flaky}\n")
    with pytest.raises(ScenarioError) as refused:
        load_scenario(folder)
    assert "world.yaml:2: endpoint.eu-west-1.state" in str(refused.value)


def test_loading_refuses_an_alert_the_service_would_refuse(tmp_path: Path) -> None:
    folder = copy_scenario("case-01-eu-latency", tmp_path)
    (folder / "alert.json").write_text(json.dumps([{"body": {"status": "Triggered"}}]))

    with pytest.raises(ScenarioError, match=r"alert.json: 0.body: .*monitor identity"):
        load_scenario(folder)


def test_the_shipped_scenarios_load_and_cover_every_runbook_and_diagnosis() -> None:
    scenarios = [load_scenario(path) for path in find_scenarios(SCENARIOS)]

    assert len(scenarios) >= 30
    runbooks = {s.expected.runbook for s in scenarios}
    assert {r.name for r in load_runbooks(SHIPPED_RUNBOOKS)} <= runbooks
    diagnoses = {d for s in scenarios for d in s.expected.diagnoses()}
    assert {
        "dependency_degraded",
        "suspect_change",
        "endpoint_isolated",
        "segment_only",
        "no_fault_found",
    } <= diagnoses


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ScenarioResult]]:
    """Two shipped scenarios, one whose expectations forbid what happens, and one needing --llm."""
    scratch = tmp_path_factory.mktemp("evaluation")
    forbidding = copy_scenario("case-01-eu-latency", scratch)
    expected = (forbidding / "expected.yaml").read_text()
    (forbidding / "expected.yaml").write_text(
        expected.replace("forbidden: [failover, rollback]", "forbidden: [page]")
    )
    paths = [
        SCENARIOS / "case-01-eu-latency",
        SCENARIOS / "case-18-staging-latency",
        forbidding.rename(scratch / "case-01-forbids-paging"),
        SCENARIOS / "case-26-latency",
    ]
    seen: list[tuple[int, int, str]] = []
    found = run_all(paths, progress=lambda done, total, name: seen.append((done, total, name)))
    assert [done for done, _, _ in seen] == [1, 2, 3, 4]
    yield found


def test_a_degraded_vector_db_scenario_passes(results: list[ScenarioResult]) -> None:
    result = results[0]

    assert result.outcome == "pass", result.failures
    assert result.observation is not None
    assert result.observation.pages == [("search-platform", "error")]
    assert result.llm_calls == 0


def test_a_staging_failover_scenario_passes_and_records_the_move(
    results: list[ScenarioResult],
) -> None:
    result = results[1]

    assert result.outcome == "pass", result.failures
    assert result.observation is not None
    assert result.observation.failovers == [
        {"target": "backup-region", "provider": "openai", "region": "us-east-1"}
    ]


def test_a_forbidden_action_that_happens_fails_the_scenario_and_says_so(
    results: list[ScenarioResult],
) -> None:
    result = results[2]

    assert result.outcome == "fail"
    assert "forbidden action taken: page (done)" in result.failures


def test_a_scenario_that_needs_the_analyst_is_skipped_without_llm(
    results: list[ScenarioResult],
) -> None:
    assert results[3].outcome == "skip"


def test_the_table_and_the_json_hold_a_row_per_scenario(results: list[ScenarioResult]) -> None:
    table = format_table(results)
    document = json.loads(to_json(results))

    rows: dict[str, str] = {}
    for line in table.splitlines():
        rows.setdefault(line.split(" ")[0], line)  # the rows come before the failures' reasons
    assert "PASS" in rows["case-01-eu-latency"]
    assert "dependency_degraded | page | paged search-platform:error" in rows["case-01-eu-latency"]
    assert "FAIL" in rows["case-01-forbids-paging"]
    assert "SKIP" in rows["case-26-latency"]
    assert "2 passed, 1 failed, 1 skipped of 4" in table
    assert "  - forbidden action taken: page (done)" in table
    assert [r["name"] for r in document["results"]] == [r.name for r in results]
    assert document["results"][1]["observation"]["failovers"][0]["region"] == "us-east-1"
    assert document["results"][2]["outcome"] == "fail"
