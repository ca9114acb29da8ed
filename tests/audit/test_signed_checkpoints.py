"""Checkpoints signed with a private key: verified with public keys, across rotations."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session, select

from agent.store.db import make_engine, session_scope, upgrade
from audit.chain import checkpoint_signature, link_body
from audit.checkpoints import Checkpoint
from audit.merkle import Frontier, leaf_hash, root_from_path
from audit.models import AuditCheckpoint, AuditEvent
from audit.proofs import prove_events
from audit.service import (
    append_checkpoint_file,
    read_checkpoint_file,
    read_head,
    verify_chain,
    write_checkpoint,
)
from audit.signing import Ed25519Signer, TrustedKeys, encode_signature, generate_key_file
from audit.sqltypes import utcnow
from tests.audit.test_chain import KEY, tamper, write_events

OLD = Ed25519Signer(Ed25519PrivateKey.generate())
NEW = Ed25519Signer(Ed25519PrivateKey.generate())


def trust(*signers: Ed25519Signer) -> TrustedKeys:
    return TrustedKeys.from_pems([s.public_key_pem() for s in signers])


def sign(engine: Engine, signer: Ed25519Signer) -> AuditCheckpoint:
    with session_scope(engine) as session:
        return write_checkpoint(session=session, signer=signer, trusted=trust(signer), key=KEY)


def verify(engine: Engine, trusted: TrustedKeys, **options: object) -> tuple[bool, int | None, str]:
    with Session(engine) as session:
        one = verify_chain(session=session, key=KEY, trusted=trusted, **options)  # type: ignore[arg-type]
        ranged = verify_chain(
            session=session,
            key=KEY,
            trusted=trusted,
            workers=2,
            range_events=2,
            **options,  # type: ignore[arg-type]
        )
    assert ranged == one
    return one.ok, one.first_bad_seq, one.reason or ""


def test_old_checkpoints_keep_their_key_and_new_ones_use_the_new_key(
    migrated_engine: Engine,
) -> None:
    write_events(migrated_engine, 3)
    sign(migrated_engine, OLD)
    write_events(migrated_engine, 4)
    sign(migrated_engine, NEW)  # rotated: the service now signs with NEW

    with Session(migrated_engine) as session:
        rows = session.exec(select(AuditCheckpoint).order_by(AuditCheckpoint.head_seq)).all()  # type: ignore[arg-type]
    assert [(r.head_seq, r.key_id) for r in rows] == [(3, OLD.key_id), (7, NEW.key_id)]
    assert verify(migrated_engine, trust(OLD, NEW)) == (True, None, "")
    # Without the old public key the old checkpoint cannot be checked, and the verifier says so.
    ok, bad, reason = verify(migrated_engine, trust(NEW))
    assert (ok, bad) == (False, 3) and f"signed by key {OLD.key_id}" in reason


def test_checkpoints_signed_with_the_chain_key_before_the_upgrade_still_verify(
    migrated_engine: Engine,
) -> None:
    write_events(migrated_engine, 2)
    with session_scope(migrated_engine) as session:
        seq, head = read_head(session=session)
        at = utcnow()
        signature = checkpoint_signature(key=KEY, head_seq=seq, head_hash=head, created_at=at)
        session.add(
            AuditCheckpoint(created_at=at, head_seq=seq, head_hash=head, signature=signature)
        )
    write_events(migrated_engine, 2)
    sign(migrated_engine, NEW)

    assert verify(migrated_engine, trust(NEW)) == (True, None, "")
    tamper(
        migrated_engine, "UPDATE audit_checkpoint SET head_seq = 1 WHERE algorithm = 'hmac-sha256'"
    )
    ok, bad, reason = verify(migrated_engine, trust(NEW))
    assert (ok, bad) == (False, 1) and "bad signature" in reason


@pytest.mark.parametrize("column", ["tree_root", "head_hash", "key_id", "created_at", "signature"])
def test_an_edited_signed_checkpoint_is_refused(migrated_engine: Engine, column: str) -> None:
    write_events(migrated_engine, 3)
    row = sign(migrated_engine, NEW)
    value = {"created_at": "'2026-01-01 00:00:00.000000'"}.get(column, f"'{'0' * 32}'")
    if column == "signature":
        value = f"'{encode_signature(NEW.sign(b'something else'))}'"
    tamper(migrated_engine, f"UPDATE audit_checkpoint SET {column} = {value} WHERE id = {row.id}")

    ok, bad, reason = verify(migrated_engine, trust(NEW))

    assert (ok, bad) == (False, 3) and "checkpoint of event 3" in reason


def test_a_signed_root_that_is_not_the_chains_names_the_events_it_covers(
    migrated_engine: Engine,
) -> None:
    write_events(migrated_engine, 3)
    sign(migrated_engine, NEW)
    write_events(migrated_engine, 3)
    # A key holder signs a head whose root is not the tree of the events 1-6.
    with session_scope(migrated_engine) as session:
        seq, head = read_head(session=session)
        forged = Checkpoint(
            head_seq=seq,
            head_hash=head,
            created_at=utcnow(),
            signature="",
            algorithm=NEW.algorithm,
            key_id=NEW.key_id,
            tree_root=Frontier().root().hex(),
        )
        session.add(
            AuditCheckpoint(
                created_at=forged.created_at,
                head_seq=seq,
                head_hash=head,
                signature=encode_signature(NEW.sign(forged.message())),
                algorithm=NEW.algorithm,
                key_id=NEW.key_id,
                tree_root=forged.tree_root,
            )
        )

    ok, bad, reason = verify(migrated_engine, trust(NEW))

    assert (ok, bad) == (False, 4) and "events 4-6" in reason and "Merkle root" in reason


def test_the_service_never_signs_a_chain_that_does_not_verify(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 3)
    sign(migrated_engine, NEW)
    write_events(migrated_engine, 3)
    tamper(migrated_engine, "UPDATE audit_event SET actor = 'mallory' WHERE seq = 5")

    with pytest.raises(ValueError, match="event 5 does not verify"):
        sign(migrated_engine, NEW)
    with Session(migrated_engine) as session:
        assert len(session.exec(select(AuditCheckpoint)).all()) == 1


def test_a_stored_frontier_that_was_edited_is_not_built_on(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    sign(migrated_engine, NEW)
    tamper(migrated_engine, 'UPDATE audit_checkpoint SET frontier = \'["00", "11"]\'')
    write_events(migrated_engine, 2)

    sign(migrated_engine, NEW)  # rebuilt from the events, not from the edited frontier

    assert verify(migrated_engine, trust(NEW)) == (True, None, "")


def test_signed_checkpoints_kept_in_a_file_verify_and_an_edit_there_is_named(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    write_events(migrated_engine, 4)
    kept = tmp_path / "checkpoints.jsonl"
    append_checkpoint_file(kept, sign(migrated_engine, NEW))
    checkpoints = read_checkpoint_file(kept)
    assert [(c.key_id, c.algorithm) for c in checkpoints] == [(NEW.key_id, "ed25519")]
    assert verify(migrated_engine, trust(NEW), extra_checkpoints=checkpoints)[0] is True

    kept.write_text(kept.read_text().replace('"head_seq":4', '"head_seq":3'))
    ok, bad, reason = verify(
        migrated_engine, trust(NEW), extra_checkpoints=read_checkpoint_file(kept)
    )
    assert (ok, bad) == (False, 3) and "file checkpoints.jsonl" in reason


def test_a_bad_public_key_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "old.pem"
    bad.write_text("not a key")
    with pytest.raises(ValueError, match="old.pem"):
        TrustedKeys.from_files([bad])
    private = tmp_path / "private.pem"
    generate_key_file(private)
    with pytest.raises(ValueError, match="private.pem: not a PEM public key"):
        TrustedKeys.from_files([private])


@pytest.mark.postgres
def test_signed_checkpoints_and_proofs_hold_on_postgres(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    upgrade(engine)
    write_events(engine, 5)
    sign(engine, NEW)
    write_events(engine, 4)
    sign(engine, NEW)  # extended from the first one's stored frontier

    assert verify(engine, trust(NEW)) == (True, None, "")
    with Session(engine) as session:
        proofs = prove_events(session=session, seqs=[2, 5, 7, 9], trusted=trust(NEW))
        events = {e.seq: e for e in session.exec(select(AuditEvent)).all()}
    roots = {c["tree_size"]: c["tree_root"] for c in proofs.checkpoints}
    assert sorted(roots) == [5, 9]
    for seq, (size, path) in proofs.paths.items():
        event = events[seq]
        body = link_body(
            seq=seq,
            ts=event.ts.isoformat(),
            incident_id=str(event.incident_id) if event.incident_id else None,
            alert_id=None,
            actor=event.actor,
            kind=event.kind,
            data=event.data,
        )
        leaf = leaf_hash(prev_hash=event.prev_hash, hash=event.hash, body=body)
        found = root_from_path(seq - 1, size, leaf, [bytes.fromhex(p) for p in path])
        assert found is not None and found.hex() == roots[size]
    engine.dispose()
