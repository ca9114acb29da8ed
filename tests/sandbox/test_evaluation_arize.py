"""Scenarios with an Arize monitor: the world's monitor is checked like the API's, and the
Arize expectations fail a run that does not meet them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox.evaluation.arize import ExpectedArize, SeenArize, compare_arize
from sandbox.evaluation.runner import ScenarioError, load_scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def copy_scenario(name: str, into: Path) -> Path:
    return Path(shutil.copytree(SCENARIOS / name, into / name))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("status: MUTED", "arize.monitor.status"),
        ("metric: PSI", "metric of a TRACING monitor"),
        ("id: mon-support-bot", "not base64 of Monitor:N:x"),
        ("colour: red", "arize.monitor.colour: unknown key"),
    ],
)
def test_a_monitor_the_api_would_not_return_is_refused_and_named(
    tmp_path: Path, change: str, named: str
) -> None:
    folder = copy_scenario("case-73-eu-latency", tmp_path)
    world = (folder / "world.yaml").read_text()
    key = change.split(":")[0]
    lines = [line for line in world.splitlines() if not line.strip().startswith(f"{key}:")]
    at = lines.index("  monitor:") + 1
    lines.insert(at, f"    {change}")
    (folder / "world.yaml").write_text("\n".join(lines) + "\n")

    with pytest.raises(ScenarioError) as refused:
        load_scenario(folder)

    assert "world.yaml" in str(refused.value) and named in str(refused.value)


def test_the_shipped_arize_scenarios_load_with_their_monitor() -> None:
    for name in ("case-73-eu-latency", "case-74-eu-latency"):
        scenario = load_scenario(SCENARIOS / name)
        assert scenario.world.arize is not None
        assert scenario.steps[0].body["monitor_id"] == scenario.world.arize.monitor.id


def test_arize_expectations_fail_a_run_that_misses_them() -> None:
    expected = ExpectedArize(
        filled=["metric", "threshold"],
        tags_at_end=[],
        resolved_by_monitor=True,
        incident_status="resolved",
        open_pages=0,
    )
    met = SeenArize(
        filled=["metric", "threshold", "url"],
        tags_at_end=[],
        resolved_by_monitor=True,
        incident_statuses=["resolved"],
    )
    missed = SeenArize(
        filled=["url"],
        tags_at_end=["remediator-incident-1a2b3c4d"],
        incident_statuses=["open"],
        open_pages=1,
    )

    assert compare_arize(expected, met) == []
    problems = compare_arize(expected, missed)
    assert len(problems) == 5
    assert any("tags_at_end" in p for p in problems)
    assert compare_arize(None, missed) == []
