"""The remediator command: audit verify/show, db upgrade, and clear errors for bad input."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from agent.cli import app
from agent.incidents.models import Incident
from agent.store.db import make_engine, session_scope
from audit.service import append_event
from audit.sqltypes import utcnow

KEY = "cli-test-audit-key-0123456789"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("REMEDIATOR_ENV", "dev")
    monkeypatch.setenv("REMEDIATOR_DATABASE_URL", url)
    monkeypatch.setenv("REMEDIATOR_AUDIT_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    return url


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def seed(url: str) -> uuid.UUID:
    engine = make_engine(url)
    with session_scope(engine) as session:
        incident = Incident(
            fingerprint="f", title="p95 breach on bot", monitor_key="m", opened_at=utcnow()
        )
        session.add(incident)
        session.flush()
        for step in ("incident.opened", "decision.made", "action.succeeded"):
            append_event(
                session=session,
                key=KEY.encode(),
                kind=step,
                actor="agent",
                data={"summary": f"{step} happened"},
                incident_id=incident.id,
            )
        return incident.id


def test_db_upgrade_then_verify_and_show(env: str) -> None:
    code, out, _ = run("db", "upgrade")
    assert code == 0 and "0012_causes" in out
    incident_id = seed(env)

    code, out, _ = run("audit", "verify")
    assert code == 0
    assert "audit chain OK: 3 events verified" in out
    code, out, _ = run("audit", "show", str(incident_id))
    assert code == 0
    assert "p95 breach on bot" in out
    assert [line.split()[4] for line in out.splitlines()[3:]] == [
        "incident.opened",
        "decision.made",
        "action.succeeded",
    ]


def test_verify_exits_1_naming_the_edited_event(env: str) -> None:
    run("db", "upgrade")
    seed(env)
    with make_engine(env).begin() as connection:
        connection.execute(text("DROP TRIGGER audit_event_no_update"))
        connection.execute(text("UPDATE audit_event SET kind = 'nothing.happened' WHERE seq = 2"))

    code, _, err = run("audit", "verify")

    assert code == 1
    assert "BROKEN at sequence 2" in err


def test_verify_with_another_key_fails(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run("db", "upgrade")
    seed(env)
    monkeypatch.setenv("REMEDIATOR_AUDIT_KEY", "a-different-key-0123456789")
    assert run("audit", "verify")[0] == 1


def test_show_refuses_a_malformed_or_unknown_id(env: str) -> None:
    run("db", "upgrade")
    code, _, err = run("audit", "show", "not-a-uuid")
    assert code == 2 and "is not an incident id" in err
    code, _, err = run("audit", "show", str(uuid.uuid4()))
    assert code == 1 and "no incident" in err


def test_invalid_settings_are_named_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REMEDIATOR_ENV", "production")
    code, _, err = run("audit", "verify")
    assert code == 2
    assert "REMEDIATOR_WEBHOOK_TOKEN is a placeholder" in err
    assert "Traceback" not in err


def test_help_lists_the_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in ("serve", "worker", "db", "audit", "approve", "doctor", "baseline", "runbooks"):
        assert command in out
    # The harness is not the product's: `python -m sandbox` runs it from a checkout.
    for command in ("sandbox", "demo", "eval"):
        assert f" {command} " not in out


def test_export_writes_a_review_and_flags_a_broken_chain(env: str, tmp_path: Path) -> None:
    run("db", "upgrade")
    incident_id = seed(env)
    code, out, _ = run("audit", "export", str(incident_id))
    assert code == 0
    assert out.startswith("# Post-incident review: p95 breach on bot")
    assert "verified: 3 events through sequence 3" in out

    with make_engine(env).begin() as connection:
        connection.execute(text("DROP TRIGGER audit_event_no_update"))
        connection.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 3"))
    code, out, _ = run("audit", "export", str(incident_id))
    assert code == 0 and "**BROKEN at sequence 3**" in out

    # The JSON export signs what it proves: the service never signs a chain that does not verify.
    target = tmp_path / "review.jsonl"
    code, _, err = run("audit", "export", str(incident_id), "--format", "json", "-o", str(target))
    assert code == 1 and "event 3 does not verify" in err and not target.exists()
    assert run("audit", "export", str(incident_id), "--format", "pdf")[0] == 2


def test_checkpoint_makes_a_removed_tail_visible(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = tmp_path / "offsite" / "checkpoints.jsonl"
    monkeypatch.setenv("REMEDIATOR_AUDIT_CHECKPOINT_FILE", str(kept))
    run("db", "upgrade")
    seed(env)
    code, out, _ = run("audit", "checkpoint")
    assert code == 0 and "checkpoint of event 3" in out and kept.exists()

    with make_engine(env).begin() as connection:
        for trigger in ("audit_event_no_delete", "audit_checkpoint_no_delete"):
            connection.execute(text(f"DROP TRIGGER {trigger}"))
        second = connection.execute(text("SELECT hash FROM audit_event WHERE seq = 2")).scalar()
        connection.execute(text("DELETE FROM audit_event WHERE seq = 3"))
        connection.execute(text("DELETE FROM audit_checkpoint"))
        connection.execute(text(f"UPDATE audit_head SET seq = 2, hash = '{second}'"))

    code, _, err = run("audit", "verify")
    assert code == 1
    assert "BROKEN at sequence 3" in err and "signed checkpoint recorded 3" in err


def test_runbooks_validate_accepts_the_shipped_ones_and_names_a_mistake(tmp_path: Path) -> None:
    code, out, _ = run("runbooks", "validate")
    assert code == 0 and "runbook(s) valid" in out and "support-bot-latency@" in out

    (tmp_path / "bad.yaml").write_text(
        "name: x\nversion: 1\nmatch: {metrics: [latency_p95]}\ncolour: red\n"
    )
    code, _, err = run("runbooks", "validate", str(tmp_path))
    assert code == 1
    assert f"{tmp_path / 'bad.yaml'}:4: colour: unknown key" in err
