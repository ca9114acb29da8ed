"""Runbooks checked before they matter: duplicate keys, every name checked against the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks.catalog import SHIPPED_CATALOG, load_catalog
from runbooks.library import (
    SHIPPED_RUNBOOKS,
    check_against_catalog,
    load_runbooks,
    references,
    validate_folder,
)
from runbooks.loader import ConfigError

CATALOG = """\
teams:
  bots: {approvers: [U0ALICE]}
  oncall: {approvers: [S0ONCALL]}
services:
  chat:
    models: [chat-v1]
    team: bots
    failover:
      backend: file
      routes_file: routes.json
      targets:
        - {name: backup-region, provider: openai, model: chat-v1, region: us-east-1}
  search:
    models: [search-v1]
    team: bots
"""

RUNBOOK = """\
name: {name}
version: 1
description: d
match:
  metrics: [latency_p95]
{match}
probes: {{endpoint: {{}}}}
actions:
  endpoint_isolated:
    failover: {{target: {target}}}
    page: {{severity: error}}
approval:
  approvers: [{approvers}]
"""


def write_runbook(
    folder: Path,
    name: str = "slow",
    *,
    match: str = "",
    target: str = "backup_region",
    approvers: str = "U0ALICE",
) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(RUNBOOK.format(name=name, match=match, target=target, approvers=approvers))
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "services.yaml"
    path.write_text(CATALOG)
    return path


def problems(folder: Path, catalog: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_folder(folder, load_catalog(catalog))
    return caught.value.problems


def test_a_key_given_twice_at_any_depth_is_refused_with_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "rb"
    path = write_runbook(folder)
    text = path.read_text()
    # A second `actions:` block: plain YAML would keep only this one, silently.
    path.write_text(text + "actions:\n  no_fault_found: {page: {severity: warning}}\n")
    with pytest.raises(ConfigError) as top:
        load_runbooks(folder)
    (problem,) = top.value.problems
    assert problem.startswith(f"{path}:{len(text.splitlines()) + 1}:")
    assert "duplicate key 'actions'" in problem and "first given on line 8" in problem

    nested = text.replace(
        "    page: {severity: error}\n", "    page: {severity: error}\n    page: {severity: info}\n"
    )
    path.write_text(nested)
    with pytest.raises(ConfigError) as deep:
        load_runbooks(folder)
    assert f"{path}:12:" in deep.value.problems[0]
    assert "duplicate key 'page'" in deep.value.problems[0]


def test_a_merge_key_may_be_overridden_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(
        "teams:\n  base: &base {slack_channel: C0A, approvers: [U0ALICE]}\n"
        "  other:\n    <<: *base\n    slack_channel: C0B\n"
    )
    teams = load_catalog(path).teams
    assert teams["other"].slack_channel == "C0B" and teams["other"].approvers == ["U0ALICE"]


def test_the_catalog_refuses_a_key_given_twice_too(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(CATALOG + "  chat:\n    models: [other]\n    team: bots\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert f"{path}:" in str(caught.value) and "duplicate key 'chat'" in str(caught.value)


def test_the_shipped_runbooks_fit_the_shipped_catalog() -> None:
    runbooks, warnings = validate_folder(SHIPPED_RUNBOOKS, load_catalog(SHIPPED_CATALOG))
    assert len(runbooks) == len(list(SHIPPED_RUNBOOKS.glob("*.yaml")))
    assert not [w for w in warnings if "catalog" in w or "failover target" in w]


def test_every_name_a_runbook_gives_is_a_reference() -> None:
    runbook = next(r for r in load_runbooks(SHIPPED_RUNBOOKS) if r.name == "support-bot-latency")
    found = {(ref.kind, ref.name) for ref in references(runbook)}
    assert found == {
        ("service", "support-bot"),
        ("failover target", "backup-region"),
        ("approver", "U0ALICE"),
    }


@pytest.mark.parametrize(
    ("runbook", "line", "expected"),
    [
        (
            {"match": "  services: [chat, chatt]"},
            6,
            "match.services.1: no service 'chatt' in the catalog (known: chat, search)",
        ),
        (
            {"match": "  models: [chat-v2]"},
            6,
            "match.models.0: no catalog service serves model 'chat-v2'",
        ),
        (
            {"target": "backup_regoin"},
            10,
            "failover target 'backup_regoin' is no service's failover target in the catalog "
            "(known: backup-region)",
        ),
        (
            # Named for a service whose failover has no such target: an error, not a warning.
            {"match": "  services: [search]"},
            10,
            "failover target 'backup_region' is not a failover target of search",
        ),
        (
            {"approvers": "U0ALICE, U0MALLORY"},
            13,
            "approval.approvers.1: approver 'U0MALLORY' is on no team's `approvers`",
        ),
    ],
)
def test_a_name_the_catalog_lacks_is_an_error_naming_file_line_and_key(
    tmp_path: Path, catalog: Path, runbook: dict[str, str], line: int, expected: str
) -> None:
    path = write_runbook(tmp_path / "rb", **runbook)
    (problem,) = problems(tmp_path / "rb", catalog)
    assert problem.startswith(f"{path}:{line}: ")
    assert expected in problem


def test_every_mistake_of_every_file_is_listed_at_once(tmp_path: Path, catalog: Path) -> None:
    folder = tmp_path / "rb"
    write_runbook(folder, "one", match="  services: [nope]")
    write_runbook(folder, "two", approvers="S0NOBODY", target="elsewhere")
    found = problems(folder, catalog)
    assert len(found) == 3
    assert any("one.yaml" in p and "'nope'" in p for p in found)
    assert any("two.yaml" in p and "'S0NOBODY'" in p for p in found)
    assert any("two.yaml" in p and "'elsewhere'" in p for p in found)


def test_the_reverse_a_service_no_runbook_covers_is_a_warning(
    tmp_path: Path, catalog: Path
) -> None:
    folder = tmp_path / "rb"
    write_runbook(folder, match="  services: [chat]")
    runbooks, warnings = validate_folder(folder, load_catalog(catalog))
    assert [r.name for r in runbooks] == ["slow"]
    assert any("catalog service 'search': no runbook covers it" in w for w in warnings)
    assert not any("'chat'" in w for w in warnings)


def test_a_generic_runbook_warns_where_its_failover_is_impossible(
    tmp_path: Path, catalog: Path
) -> None:
    folder = tmp_path / "rb"
    path = write_runbook(folder)  # any service: chat has the target, search has no failover
    runbooks, warnings = validate_folder(folder, load_catalog(catalog))
    assert len(runbooks) == 1
    assert any(
        w.startswith(f"{path}:10: ") and "service 'search' has no such target" in w
        for w in warnings
    )
    assert not any("no runbook covers" in w for w in warnings)


def test_a_catalog_without_any_failover_only_warns_about_a_generic_failover(
    tmp_path: Path,
) -> None:
    catalog = tmp_path / "services.yaml"
    catalog.write_text(
        CATALOG.split("    failover:")[0] + "  search:\n    models: [s]\n    team: bots\n"
    )
    folder = tmp_path / "rb"
    write_runbook(folder)
    runbooks, warnings = validate_folder(folder, load_catalog(catalog))
    assert len(runbooks) == 1
    assert sum("has no such target, so this failover is impossible" in w for w in warnings) == 2


def test_without_a_catalog_names_are_not_checked_and_the_loader_agrees(
    tmp_path: Path, catalog: Path
) -> None:
    folder = tmp_path / "rb"
    write_runbook(folder, match="  services: [nope]")
    assert [r.name for r in load_runbooks(folder)] == ["slow"]
    with pytest.raises(ConfigError):
        load_runbooks(folder, load_catalog(catalog))  # what the service loads at start


def test_check_against_catalog_returns_errors_and_warnings_apart(
    tmp_path: Path, catalog: Path
) -> None:
    path = write_runbook(tmp_path / "rb", match="  services: [chat]", approvers="U0BOB")
    runbook = load_runbooks(tmp_path / "rb")[0]
    errors, warnings = check_against_catalog([(path, runbook)], load_catalog(catalog))
    assert len(errors) == 1 and "'U0BOB'" in errors[0]
    assert len(warnings) == 1 and "'search'" in warnings[0]
