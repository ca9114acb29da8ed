"""Configuration checked before it matters: `runbooks validate`, `serve`/`worker` refusing a
runbook the catalog contradicts, and commands that need a database saying what to run."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from runbooks.catalog import SHIPPED_CATALOG
from runbooks.library import SHIPPED_RUNBOOKS

KEY = "cli-config-audit-key-0123456789"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("REMEDIATOR_RUNBOOKS_DIR", "REMEDIATOR_CATALOG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REMEDIATOR_ENV", "dev")
    monkeypatch.setenv("REMEDIATOR_AUDIT_KEY", KEY)
    monkeypatch.setenv("REMEDIATOR_AUDIT_SIGNING_KEY_FILE", str(tmp_path / "signing.pem"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def broken_runbooks(folder: Path) -> Path:
    """The shipped runbooks with one failover target misspelt and one approver unknown."""
    shutil.copytree(SHIPPED_RUNBOOKS, folder)
    latency = folder / "latency.yaml"
    latency.write_text(
        latency.read_text()
        .replace("target: backup_region", "target: backup_regoin")
        .replace("[S0SREONCALL]", "[S0NOBODY]")
    )
    return folder


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of `path` holding `text`."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_validate_reads_the_runbooks_folder_setting(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = env / "mine"
    folder.mkdir()
    (folder / "only.yaml").write_text(
        "name: only\nversion: 3\ndescription: d\nmatch: {metrics: [error_rate]}\n"
    )
    monkeypatch.setenv("REMEDIATOR_RUNBOOKS_DIR", str(folder))
    code, out, _ = run("runbooks", "validate")
    assert code == 0, out
    assert f"1 runbook(s) valid in {folder}: only@3" in out

    (folder / "only.yaml").write_text("name: only\nversion: 3\ncolour: red\n")
    code, _, err = run("runbooks", "validate")
    assert code == 1 and f"{folder / 'only.yaml'}:3: colour: unknown key" in err
    # A folder given on the command line still wins over the setting.
    code, out, _ = run("runbooks", "validate", str(SHIPPED_RUNBOOKS))
    assert code == 0 and "support-bot-latency@" in out


def test_validate_checks_names_against_the_catalog_setting(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = broken_runbooks(env / "rb")
    code, out, err = run("runbooks", "validate", str(folder))
    assert code == 0, err  # no catalog: the names cannot be checked, and it says so
    assert "runbooks name are not checked" in err

    monkeypatch.setenv("REMEDIATOR_CATALOG_FILE", str(SHIPPED_CATALOG))
    code, out, err = run("runbooks", "validate", str(folder))
    assert code == 1 and out == ""
    latency = folder / "latency.yaml"
    target_line, approver_line = line_of(latency, "backup_regoin"), line_of(latency, "S0NOBODY")
    assert f"{latency}:{target_line}: actions.endpoint_isolated.failover.target" in err
    assert "'backup_regoin'" in err
    assert f"{latency}:{approver_line}: approval.approvers.0: approver 'S0NOBODY'" in err

    monkeypatch.delenv("REMEDIATOR_CATALOG_FILE")
    code, _, err = run("runbooks", "validate", str(folder), "--catalog", str(SHIPPED_CATALOG))
    assert code == 1 and "'backup_regoin'" in err


def test_validate_refuses_a_second_actions_block(env: Path) -> None:
    folder = env / "rb"
    folder.mkdir()
    (folder / "twice.yaml").write_text(
        "name: twice\nversion: 1\ndescription: d\nmatch: {metrics: [error_rate]}\n"
        "actions:\n  no_fault_found: {page: {severity: error}}\n"
        "actions:\n  no_fault_found: {notify: {}}\n"
    )
    code, _, err = run("runbooks", "validate", str(folder))
    assert code == 1
    assert f"{folder / 'twice.yaml'}:7:" in err and "duplicate key 'actions'" in err


@pytest.mark.parametrize("command", [["serve"], ["worker"]])
def test_serve_and_worker_refuse_to_start_listing_every_mistake(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("REMEDIATOR_DATABASE_URL", f"sqlite:///{env / 'r.db'}")
    monkeypatch.setenv("REMEDIATOR_CATALOG_FILE", str(SHIPPED_CATALOG))
    monkeypatch.setenv("REMEDIATOR_RUNBOOKS_DIR", str(broken_runbooks(env / "rb")))
    code, _, err = run(*command)
    assert code == 2
    refusal = err[err.index("error: ") :]  # after any log line of the start-up before it
    assert "'backup_regoin'" in refusal and "'S0NOBODY'" in refusal


DATABASE_COMMANDS = [
    ["approvals"],
    ["approvals", "--all"],
    ["approve", str(uuid.uuid4()), "--as", "U0ALICE"],
    ["audit", "verify"],
    ["audit", "checkpoint"],
    ["audit", "show", str(uuid.uuid4())],
    ["audit", "export", str(uuid.uuid4())],
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS + [["db", "current"]], ids=" ".join)
def test_without_a_database_a_command_says_what_to_run_and_creates_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.delenv("REMEDIATOR_DATABASE_URL", raising=False)  # the default, in ./var
    before = sorted(p.name for p in env.iterdir())
    code, out, err = run(*command)
    assert code == 2
    assert err.splitlines() == [
        "error: no database at ./var/remediator.db: run `remediator db upgrade` "
        "(or point REMEDIATOR_DATABASE_URL at the database)"
    ]
    assert out == ""
    assert sorted(p.name for p in env.iterdir()) == before  # no file, no folder


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_a_database_without_schema_is_named_in_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    sqlite3.connect(env / "empty.db").close()
    monkeypatch.setenv("REMEDIATOR_DATABASE_URL", "sqlite:///empty.db")
    code, _, err = run(*command)
    assert code == 2
    assert err.splitlines() == [
        "error: the database sqlite:///empty.db has no schema: run `remediator db upgrade` "
        "(or point REMEDIATOR_DATABASE_URL at the database)"
    ]


def test_a_schema_behind_the_code_and_an_unreachable_server_are_named(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATOR_DATABASE_URL", "sqlite:///old.db")
    code, _, _ = run("db", "upgrade", "0001_initial")
    assert code == 0
    code, _, err = run("approvals")
    assert code == 2 and len(err.splitlines()) == 1
    assert "is at schema revision 0001_initial, this version needs" in err

    monkeypatch.setenv("REMEDIATOR_DATABASE_URL", "postgresql+psycopg://u:secret@127.0.0.1:1/x")
    code, _, err = run("approvals")
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(
        "error: cannot open the database postgresql+psycopg://u:***@127.0.0.1:1/x"
    )
    assert "secret" not in err


def test_db_upgrade_still_creates_the_database(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMEDIATOR_DATABASE_URL", raising=False)
    code, out, _ = run("db", "upgrade")
    assert code == 0 and (env / "var" / "remediator.db").is_file()
    code, out, err = run("approvals")
    assert code == 0 and out.strip() == "no pending approval requests", err
