"""The eval's richer worlds: changes during the run, catalogs, per-request answers, new checks."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox.evaluation.checks import (
    Happening,
    Order,
    Record,
    Texts,
    check_order,
    check_routes,
    check_texts,
    check_within,
)
from sandbox.evaluation.runner import (
    ScenarioError,
    ScenarioResult,
    format_table,
    load_scenario,
    run_all,
)
from sandbox.evaluation.systems import (
    EndpointWorld,
    Systems,
    ToolsWorld,
    ToolWorld,
    VectorDbWorld,
    set_systems,
)
from sandbox.fault_proxy import FaultProxyState
from sandbox.stack import DIAGNOSTIC_ANSWERS, SandboxStack

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def copy_scenario(name: str, into: Path) -> Path:
    """Copy a shipped scenario folder, to change one of its files."""
    return Path(shutil.copytree(SCENARIOS / name, into / name))


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        ("world.yaml", "changes:\n  - {before_step: 1, vectr_db: down}\n", "changes.0.vectr_db"),
        ("world.yaml", "changes:\n  - {vector_db: down}\n", "exactly one of before_step"),
        ("world.yaml", "changes:\n  - {before_step: 5, vector_db: down}\n", "past the last step"),
        ("world.yaml", "changes:\n  - {before_step: 1, endpoint: {mars-1: healthy}}\n", "mars-1"),
        ("world.yaml", "tools:\n  pager: {state: failing}\n", "tools.pager"),
        ("world.yaml", "tools:\n  slack: {state: flaky}\n", "tools.slack.state"),
        ("world.yaml", "catalog:\n  services:\n    x-bot: {team: nobody}\n", "unknown team nobody"),
        ("world.yaml", "catalog:\n  usergroups:\n    U0ME: [U0BOB]\n", "starts with S"),
        ("world.yaml", "approvals:\n  - {action: failback, answer: maybe}\n", "approvals.0.answer"),
        ("world.yaml", "approvals:\n  - {action: failback, answr: approve}\n", "approvals.0.answr"),
        ("expected.yaml", "diagnosis: none\nroutes: {rag-search: primary}\n", "rag-search"),
        ("expected.yaml", "diagnosis: none\norder: [{first: paged, then: resolved}]\n", "paged"),
        ("expected.yaml", "diagnosis: none\nslack: {contain: [x]}\n", "slack.contain"),
    ],
)
def test_loading_refuses_a_wrong_new_key_and_names_file_and_key(
    tmp_path: Path, file: str, text: str, message: str
) -> None:
    folder = copy_scenario("case-57-eu-latency", tmp_path)
    (folder / file).write_text(text)

    with pytest.raises(ScenarioError) as refused:
        load_scenario(folder)

    assert file in str(refused.value)
    assert message in str(refused.value)


def test_setting_a_system_again_heals_what_an_earlier_state_broke(tmp_path: Path) -> None:
    stack = SandboxStack(tmp_path)
    upstream = {"m-openai-eu-west-1": ("openai", "eu-west-1")}
    stack.openai.add_chat_model("m-openai-eu-west-1", rules=dict(DIAGNOSTIC_ANSWERS))
    cloudwatch = FaultProxyState(upstream="http://127.0.0.1:1")
    broken = Systems(
        vector_db=VectorDbWorld(state="down"),
        endpoint={
            "eu-west-1": EndpointWorld(state="failing"),
            "openai": EndpointWorld(state="wrong_answers"),
        },
        tools=ToolsWorld(
            pagerduty=ToolWorld(state="failing", status=429, retry_after=2),
            cloudwatch=ToolWorld(state="slow", delay_seconds=4),
            gateway=ToolWorld(state="failing", status=403, times=2),
        ),
    )
    set_systems(stack, broken, upstream=upstream, cloudwatch=cloudwatch)
    assert stack.vectordb.faults and stack.pagerduty.faults
    assert stack.gateway.failing_regions == {"eu-west-1": 503}
    assert stack.openai.model("m-openai-eu-west-1").rules == {}
    assert cloudwatch.delay_seconds == 4
    # The gateway's faults hit its route writes only, never the traffic it carries.
    assert stack.gateway.take_fault("POST") is None
    assert stack.gateway.take_fault("PUT") is not None

    healed = Systems(
        vector_db=VectorDbWorld(),
        endpoint={"eu-west-1": EndpointWorld(), "openai": EndpointWorld()},
        tools=ToolsWorld(pagerduty=ToolWorld(), cloudwatch=ToolWorld(), gateway=ToolWorld()),
    )
    set_systems(stack, healed, upstream=upstream, cloudwatch=cloudwatch)
    assert not stack.vectordb.faults and not stack.pagerduty.faults and not stack.gateway.faults
    assert stack.gateway.failing_regions == {}
    assert stack.openai.model("m-openai-eu-west-1").rules == DIAGNOSTIC_ANSWERS
    assert cloudwatch.delay_seconds == 0


def _record(*moments: tuple[str, int]) -> Record:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return Record(
        moments=[
            Happening((name, name.split(":")[0]), start + timedelta(seconds=s))
            for name, s in moments
        ],
        start=start,
        slack_text="Failover of support-bot to backup-region FAILED",
        routes={"support-bot": "backup-region"},
    )


def test_order_says_which_came_first_and_a_first_that_never_happened() -> None:
    record = _record(("approval:expired", 900), ("page:critical", 901))

    assert check_order([Order(first="page:critical", then="approval:expired")], record) == [
        "order: approval:expired came before page:critical"
    ]
    assert check_order([Order(first="approval:expired", then="page:critical")], record) == []
    # `then` never happening is fine; `first` never happening is not.
    assert check_order([Order(first="page:critical", then="resolved")], record) == []
    assert check_order([Order(first="failover", then="page")], record) == [
        "order: failover never happened (expected before page)"
    ]


def test_within_measures_from_the_first_alert_on_the_service_clock() -> None:
    record = _record(("page:critical", 605))

    assert check_within({"page:critical": 120}, record) == [
        "within: page:critical after 605s, expected within 120s"
    ]
    assert check_within({"page": 700}, record) == []
    assert check_within({"failover": 700}, record) == [
        "within: failover never happened (expected within 700s)"
    ]


def test_texts_and_routes_are_checked_case_insensitively_and_by_service() -> None:
    record = _record()

    assert (
        check_texts(
            "slack", Texts(contains=["failed"], not_contains=["failed over to"]), record.slack_text
        )
        == []
    )
    assert check_texts("slack", Texts(not_contains=["support-bot to"]), record.slack_text) == [
        "slack: 'support-bot to' in the messages, expected none"
    ]
    assert check_texts("pagerduty", Texts(contains=["critical"]), "") == [
        "pagerduty: no 'critical' in the messages"
    ]
    assert check_routes({"support-bot": "primary"}, record) == [
        "routes: support-bot ends on backup-region, expected primary"
    ]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ScenarioResult]]:
    """Three shipped scenarios in parallel, and one whose dependency changes between firings."""
    scratch = tmp_path_factory.mktemp("worlds")
    moving = copy_scenario("case-15-eu-latency", scratch)
    (moving / "world.yaml").write_text(
        "vector_db: wrong_neighbour\n"
        "changes:\n  - {before_step: 2, vector_db: healthy, embeddings: down}\n"
    )
    expected = (moving / "expected.yaml").read_text()
    (moving / "expected.yaml").write_text(
        expected.replace("owner: vector_db\n", "").replace(
            "pages: {search-platform: [error, error]}",
            "pages: {search-platform: [error], ml-platform: [error]}",
        )
    )
    paths = [
        SCENARIOS / "case-52-eu-latency",
        SCENARIOS / "case-54-eu-latency",
        SCENARIOS / "case-46-eu-latency",
        moving.rename(scratch / "case-15-then-embeddings"),
    ]
    yield run_all(paths, jobs=3)


def test_a_primary_that_heals_fails_over_and_a_rejected_failback_keeps_the_route(
    results: list[ScenarioResult],
) -> None:
    result = results[0]

    assert result.name == "case-52-eu-latency"
    assert result.outcome == "pass", result.failures
    assert result.observation is not None
    assert [a for i in result.observation.incidents for a in i.approvals] == [
        "approved",
        "rejected",
    ]
    assert result.observation.record.routes == {"support-bot": "backup-region"}


def test_a_by_who_is_not_an_approver_is_refused_and_the_run_ends(
    results: list[ScenarioResult],
) -> None:
    result = results[1]

    assert result.outcome == "pass", result.failures
    assert result.observation is not None
    assert result.observation.refused_clicks == 1
    assert result.elapsed_seconds < 60  # the scenario's own deadline: it did not hang


def test_a_refused_route_switch_is_a_failed_failover_and_the_route_stays(
    results: list[ScenarioResult],
) -> None:
    result = results[2]

    assert result.outcome == "pass", result.failures
    assert result.observation is not None
    assert result.observation.failovers == []
    assert result.observation.record.routes == {"support-bot": "primary"}


def test_a_change_before_a_step_is_what_the_next_investigation_finds(
    results: list[ScenarioResult],
) -> None:
    result = results[3]

    # The index heals and the embedding service goes down before the monitor fires again: the
    # second incident pages the embeddings' owner, not the index's.
    assert result.outcome == "pass", result.failures
    assert result.observation is not None
    assert result.observation.pages == [("search-platform", "error"), ("ml-platform", "error")]


def test_the_table_ends_with_the_slowest_five_and_the_wall_clock(
    results: list[ScenarioResult],
) -> None:
    table = format_table(results, wall_seconds=12.5)

    assert "of 4 in" in table and "(12.5s wall clock)" in table
    slowest = next(line for line in table.splitlines() if line.startswith("slowest: "))
    names = [part.rsplit(" ", 1)[0] for part in slowest.removeprefix("slowest: ").split(", ")]
    assert sorted(names) == sorted(r.name for r in results)
