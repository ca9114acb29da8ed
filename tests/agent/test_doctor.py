"""`remediator doctor` checks every integration of the settings and the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.adapters.checks import run_checks
from agent.adapters.factory import Adapters, build_adapters
from agent.cli import app
from runbooks.catalog import load_catalog
from sandbox.stack import SandboxStack
from tests.conftest import make_settings, sandbox_overrides


@pytest.fixture
def catalog_env(sandbox: SandboxStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings and secrets in the environment, as an operator would set them."""
    catalog = sandbox.write_catalog(tmp_path / "services.yaml")
    env = {
        **sandbox.service_env(),
        **sandbox.catalog_env(),
        "REMEDIATOR_ENV": "dev",
        "REMEDIATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
        "REMEDIATOR_CATALOG_FILE": str(catalog),
        "REMEDIATOR_PAGERDUTY_CA_BUNDLE": str(sandbox.cert_path),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return catalog


def test_every_integration_answers_in_the_sandbox(
    sandbox: SandboxStack, catalog_env: Path, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, catalog_file=catalog_env, **sandbox_overrides(sandbox))

    rows = run_checks(settings, build_adapters(settings, load_catalog(catalog_env)))

    failing = [r for r in rows if not r.ok]
    assert failing == []
    roles = {(r.scope, r.role) for r in rows}
    for role in (
        "logs.cloudwatch_logs",
        "logs.gcp_logging",
        "vector_db",
        "embeddings",
        "endpoint",
        "failover",
        "pager.assistant-team",
        "pager.search-platform",
    ):
        assert ("support-bot", role) in roles
    assert {("settings", "logs"), ("settings", "pager"), ("settings", "chat")} <= roles


def test_doctor_command_prints_the_table_and_fails_on_a_bad_secret(
    catalog_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = CliRunner().invoke(app, ["doctor"])
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert "support-bot" in ok.stdout and "vector_db" in ok.stdout

    monkeypatch.setenv("SANDBOX_OPENAI_KEY", "sk-wrong")
    broken = CliRunner().invoke(app, ["doctor"])

    assert broken.exit_code == 1
    failing = [line for line in broken.stdout.splitlines() if "FAIL" in line]
    assert {line.split()[1] for line in failing} == {"embeddings", "endpoint"}


def test_a_missing_routing_key_variable_is_reported(
    catalog_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SANDBOX_PD_KEY_SEARCH_PLATFORM")
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "environment variable SANDBOX_PD_KEY_SEARCH_PLATFORM is not set" in result.stdout


def test_baseline_capture_records_golden_vectors_and_the_canary(catalog_env: Path) -> None:
    golden = catalog_env.parent / "baselines" / "golden.json"
    assert not golden.exists()

    result = CliRunner().invoke(app, ["baseline", "capture", "support-bot"])

    assert result.exit_code == 0, result.stdout + result.stderr
    assert golden.exists()
    assert "canary of support-articles saved" in result.stdout
    doctor = CliRunner().invoke(app, ["doctor"])
    assert "no golden vectors yet" not in doctor.stdout


def test_baseline_capture_of_an_unknown_service_is_refused(catalog_env: Path) -> None:
    result = CliRunner().invoke(app, ["baseline", "capture", "nope"])
    assert result.exit_code == 2
    assert "no service 'nope' in the catalog (known: support-bot)" in result.stderr


def test_an_invalid_catalog_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "services.yaml"
    bad.write_text("teams: {}\nservices:\n  bot: {models: [m], team: t, colour: red}\n")
    monkeypatch.setenv("REMEDIATOR_ENV", "dev")
    monkeypatch.setenv("REMEDIATOR_CATALOG_FILE", str(bad))
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 2
    assert f"{bad}:3: services.bot.colour: unknown key" in result.stderr


def test_doctor_says_where_approvals_can_be_given(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    without = run_checks(settings, Adapters(settings=settings, catalog=None, env={}))
    signed = make_settings(tmp_path, slack_signing_secret="s" * 32)
    with_slack = run_checks(signed, Adapters(settings=signed, catalog=None, env={}))

    [row] = [r for r in without if r.role == "approvals"]
    assert "Slack buttons are off" in row.detail and "remediator approve" in row.detail
    [row] = [r for r in with_slack if r.role == "approvals"]
    assert "/slack/interactions" in row.detail and "are off" not in row.detail
