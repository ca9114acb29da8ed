"""An incident's JSON export proves itself: public key alone, offline, any change fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.incidents.models import Incident
from agent.store.db import make_engine, session_scope
from audit.proofs import seal_export, verify_export
from audit.service import append_event
from audit.signing import Ed25519Signer, TrustedKeys
from audit.sqltypes import utcnow

KEY = "export-test-audit-key-0123456789"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    monkeypatch.setenv("REMEDIATOR_ENV", "dev")
    monkeypatch.setenv("REMEDIATOR_DATABASE_URL", url)
    monkeypatch.setenv("REMEDIATOR_AUDIT_KEY", KEY)
    monkeypatch.setenv("REMEDIATOR_AUDIT_SIGNING_KEY_FILE", str(tmp_path / "keys" / "one.pem"))
    monkeypatch.chdir(tmp_path)
    assert run("db", "upgrade")[0] == 0
    return url


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def open_incidents(url: str, count: int) -> list[uuid.UUID]:
    with session_scope(make_engine(url)) as session:
        incidents = [
            Incident(fingerprint=f"f{n}", title=f"breach {n}", monitor_key="m", opened_at=utcnow())
            for n in range(count)
        ]
        session.add_all(incidents)
        session.flush()
        return [incident.id for incident in incidents]


def interleave(url: str, incidents: list[uuid.UUID], rounds: int, label: str = "step") -> None:
    """Write one event per incident per round, each in its own transaction, as the service does."""
    engine = make_engine(url)
    for n in range(rounds):
        for incident in incidents:
            with session_scope(engine) as session:
                append_event(
                    session=session,
                    key=KEY.encode(),
                    kind="probe.completed",
                    actor="agent.investigate",
                    data={"summary": f"{label} {n}: é ✓ <b>", "n": n, "ok": True, "x": 1.5},
                    incident_id=incident,
                )


def export(incident: uuid.UUID, target: Path) -> bytes:
    code, out, err = run("audit", "export", str(incident), "-f", "json", "-o", str(target))
    assert code == 0, err
    return target.read_bytes()


def events_of(raw: bytes) -> list[dict[str, object]]:
    return [r for r in map(json.loads, raw.splitlines()) if r["type"] == "event"]


def trusted(*public: Path) -> TrustedKeys:
    return TrustedKeys.from_files(public)


def test_an_export_copied_elsewhere_verifies_with_the_public_key_alone(
    env: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    wanted, *others = open_incidents(env, 3)
    interleave(env, [wanted, *others], 4)
    assert run("audit", "checkpoint")[0] == 0
    interleave(env, [*others, wanted], 3)  # newer than any checkpoint: the export signs one
    raw = export(wanted, tmp_path / "incident.jsonl")
    seqs = [event["seq"] for event in events_of(raw)]
    assert len(seqs) == 7 and seqs != list(range(seqs[0], seqs[0] + 7))  # interleaved

    elsewhere = tmp_path_factory.mktemp("auditor")
    shutil.copy(tmp_path / "incident.jsonl", elsewhere / "incident.jsonl")
    shutil.copy(tmp_path / "keys" / "one.pem.pub", elsewhere / "service.pub")
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REMEDIATOR_", "AWS_", "DATABASE"))
    }
    command = [sys.executable, "-m", "agent", "audit", "verify-export", "incident.jsonl"]
    done = subprocess.run(
        [*command, "--public-key", "service.pub"],
        cwd=elsewhere,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert f"7 event(s) of incident {wanted}" in done.stdout
    assert "unaltered and in order" in done.stdout
    assert sorted(p.name for p in elsewhere.iterdir()) == ["incident.jsonl", "service.pub"]

    (elsewhere / "incident.jsonl").write_bytes(raw.replace(b"step 2", b"step 3", 1))
    changed = subprocess.run(
        [*command, "--public-key", "service.pub"],
        cwd=elsewhere,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert changed.returncode == 1 and "NOT verified" in changed.stderr


def test_every_one_byte_change_of_the_file_fails(env: str, tmp_path: Path) -> None:
    first, second = open_incidents(env, 2)
    interleave(env, [first, second], 2)
    raw = export(first, tmp_path / "incident.jsonl")
    keys = trusted(tmp_path / "keys" / "one.pem.pub")
    assert verify_export(raw, keys).ok

    for at in range(len(raw)):
        for flip in (0x01, 0x20):
            changed = raw[:at] + bytes([raw[at] ^ flip]) + raw[at + 1 :]
            assert not verify_export(changed, keys).ok, (at, raw[at : at + 1])
    assert not verify_export(raw + b"\n", keys).ok
    assert not verify_export(raw[:-1], keys).ok


def test_an_event_changed_before_sealing_still_fails_its_proof(env: str, tmp_path: Path) -> None:
    """Even the service's own key cannot make an edited or moved event verify."""
    first, second = open_incidents(env, 2)
    interleave(env, [first, second], 3)
    raw = export(first, tmp_path / "incident.jsonl")
    signer = Ed25519Signer.from_file(tmp_path / "keys" / "one.pem")
    keys = trusted(tmp_path / "keys" / "one.pem.pub")
    lines = raw.decode().splitlines(keepends=True)[:-1]  # without the seal
    events = [n for n, line in enumerate(lines) if json.loads(line)["type"] == "event"]

    def resealed(body: list[str]) -> str:
        return (
            verify_export(seal_export("".join(body), signer, utcnow()).encode(), keys).reason or ""
        )

    edited = list(lines)
    record = json.loads(edited[events[1]])
    record["data"]["summary"] = "nothing happened"
    edited[events[1]] = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    assert "not the event at sequence" in resealed(edited)

    moved = list(lines)
    moved[events[0]], moved[events[1]] = moved[events[1]], moved[events[0]]
    assert "sequence numbers must rise" in resealed(moved)

    renumbered = list(lines)
    record = json.loads(renumbered[events[2]])
    record["seq"] += 1  # claims the place of the other incident's event after it
    renumbered[events[2]] = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    assert "not the event at sequence" in resealed(renumbered)

    unproven = list(lines)
    record = json.loads(unproven[events[0]])
    del record["proof"]
    unproven[events[0]] = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    assert "carries no proof" in resealed(unproven)


def test_after_a_key_rotation_old_checkpoints_verify_with_their_key_and_new_ones_with_the_new(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = open_incidents(env, 2)
    interleave(env, [first, second], 2)
    assert run("audit", "checkpoint")[0] == 0  # signed with key one
    old_id = Ed25519Signer.from_file(tmp_path / "keys" / "one.pem").key_id

    # The rotation: a new signing key; the old key's public key stays trusted for old checkpoints.
    code, out, _ = run("audit", "keygen", str(tmp_path / "keys" / "two.pem"))
    assert code == 0 and "key id" in out
    monkeypatch.setenv("REMEDIATOR_AUDIT_SIGNING_KEY_FILE", str(tmp_path / "keys" / "two.pem"))
    monkeypatch.setenv("REMEDIATOR_AUDIT_PUBLIC_KEYS", str(tmp_path / "keys" / "one.pem.pub"))
    interleave(env, [second, first], 2, label="after")
    code, out, _ = run("audit", "checkpoint")
    new_id = Ed25519Signer.from_file(tmp_path / "keys" / "two.pem").key_id
    assert code == 0 and new_id in out and new_id != old_id

    code, out, _ = run("audit", "verify")
    assert code == 0 and "2 signed checkpoint(s)" in out
    raw = export(first, tmp_path / "incident.jsonl")
    checkpoints = [r for r in map(json.loads, raw.splitlines()) if r["type"] == "checkpoint"]
    assert [c["key_id"] for c in checkpoints] == [old_id, new_id]
    both = [tmp_path / "keys" / "one.pem.pub", tmp_path / "keys" / "two.pem.pub"]
    assert verify_export(raw, trusted(*both)).ok
    only_new = verify_export(raw, trusted(both[1]))
    assert not only_new.ok and f"signed by key {old_id}" in (only_new.reason or "")
    only_old = verify_export(raw, trusted(both[0]))
    assert not only_old.ok and f"seal is signed by key {new_id}" in (only_old.reason or "")

    # Forgetting the old public key is reported, naming the key of the checkpoint it cannot check.
    monkeypatch.delenv("REMEDIATOR_AUDIT_PUBLIC_KEYS")
    code, _, err = run("audit", "verify")
    assert code == 1 and f"signed by key {old_id}" in err


def test_verify_export_names_an_unreadable_key_or_file(env: str, tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key")
    code, _, err = run("audit", "verify-export", "missing.jsonl", "--public-key", "bad.pem")
    assert code == 2 and "bad.pem" in err
