"""The hash chain: a valid trail verifies, any edit, deletion or swap names the first bad event."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlmodel import Session, select

from agent.store.db import make_engine, session_scope, upgrade
from audit.models import AuditEvent
from audit.service import (
    append_checkpoint_file,
    append_event,
    read_checkpoint_file,
    verify_chain,
    write_checkpoint,
)
from audit.signing import Ed25519Signer, TrustedKeys

KEY = b"test-chain-key-0123456789abcdef"
SIGNER = Ed25519Signer(Ed25519PrivateKey.generate())
TRUSTED = TrustedKeys.from_pems([SIGNER.public_key_pem()])


def write_events(engine: Engine, count: int) -> uuid.UUID:
    incident = uuid.uuid4()
    for i in range(count):
        with session_scope(engine) as session:
            append_event(
                session=session,
                key=KEY,
                kind="probe.completed",
                actor="agent.investigate",
                data={"summary": f"step {i}", "nested": {"value": i, "text": "é ✓"}},
                incident_id=incident,
            )
    return incident


def tamper(engine: Engine, *statements: str) -> None:
    """Change the table as an attacker with the database file would: triggers dropped first."""
    with engine.begin() as connection:
        for trigger in (
            "audit_event_no_update",
            "audit_event_no_delete",
            "audit_checkpoint_no_update",
            "audit_checkpoint_no_delete",
        ):
            connection.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
        for statement in statements:
            connection.execute(text(statement))


def verify(
    engine: Engine, key: bytes = KEY, trusted: TrustedKeys = TRUSTED
) -> tuple[bool, int | None, str | None]:
    """Verify in one walk, and again in ranges of 2 events on 2 processes: the same outcome."""
    with Session(engine) as session:
        result = verify_chain(session=session, key=key, trusted=trusted)
        ranged = verify_chain(session=session, key=key, trusted=trusted, workers=2, range_events=2)
    assert ranged == result
    return result.ok, result.first_bad_seq, result.reason


def test_untouched_chain_verifies(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    assert verify(migrated_engine) == (True, None, None)


def test_empty_chain_verifies(migrated_engine: Engine) -> None:
    assert verify(migrated_engine)[0] is True


def test_edited_data_names_its_sequence_number(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    tamper(
        migrated_engine,
        "UPDATE audit_event SET data = replace(data, 'step 2', 'step X') WHERE seq = 3",
    )

    ok, bad, reason = verify(migrated_engine)

    assert (ok, bad) == (False, 3)
    assert reason is not None and "altered" in reason


def test_edited_actor_is_detected(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 3)
    tamper(migrated_engine, "UPDATE audit_event SET actor = 'someone-else' WHERE seq = 2")

    assert verify(migrated_engine)[:2] == (False, 2)


def test_deleted_event_names_the_gap(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    tamper(migrated_engine, "DELETE FROM audit_event WHERE seq = 4")

    ok, bad, reason = verify(migrated_engine)

    assert (ok, bad) == (False, 4)
    assert reason is not None and "missing" in reason


def test_swapped_events_are_detected(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    tamper(
        migrated_engine,
        "UPDATE audit_event SET seq = -1 WHERE seq = 2",
        "UPDATE audit_event SET seq = 2 WHERE seq = 3",
        "UPDATE audit_event SET seq = 3 WHERE seq = -1",
    )

    assert verify(migrated_engine)[:2] == (False, 2)


def test_removed_tail_disagrees_with_the_head(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    tamper(migrated_engine, "DELETE FROM audit_event WHERE seq = 5")

    assert verify(migrated_engine)[:2] == (False, 5)


def test_wrong_key_fails_at_the_first_event(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 2)
    assert verify(migrated_engine, key=b"another-key")[:2] == (False, 1)


def test_progress_is_reported(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 3)
    seen: list[tuple[int, int]] = []
    with Session(migrated_engine) as session:
        verify_chain(
            session=session, key=KEY, progress=lambda done, total: seen.append((done, total))
        )
    assert seen == [(3, 3)]


def checkpoint(engine: Engine) -> None:
    with session_scope(engine) as session:
        write_checkpoint(session=session, signer=SIGNER)


def test_truncated_tail_with_a_rewound_head_is_caught_by_the_checkpoint(
    migrated_engine: Engine,
) -> None:
    write_events(migrated_engine, 5)
    checkpoint(migrated_engine)
    with Session(migrated_engine) as session:
        third = session.get(AuditEvent, 3)
        assert third is not None
    # The attacker removes events 4-5 and rewinds the head so it agrees with what is left.
    tamper(
        migrated_engine,
        "DELETE FROM audit_event WHERE seq > 3",
        f"UPDATE audit_head SET seq = 3, hash = '{third.hash}'",
    )

    ok, bad, reason = verify(migrated_engine)

    assert (ok, bad) == (False, 4)
    assert reason is not None and "signed checkpoint recorded 5" in reason


def test_a_forged_checkpoint_is_refused(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 2)
    checkpoint(migrated_engine)
    tamper(migrated_engine, "UPDATE audit_checkpoint SET head_seq = 1")

    ok, bad, reason = verify(migrated_engine)

    assert not ok and bad == 1
    assert reason is not None and "bad signature" in reason


def test_checkpoints_kept_in_a_file_survive_their_deletion_from_the_database(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    write_events(migrated_engine, 4)
    kept = tmp_path / "checkpoints.jsonl"
    with session_scope(migrated_engine) as session:
        append_checkpoint_file(kept, write_checkpoint(session=session, signer=SIGNER))
    with Session(migrated_engine) as session:
        second = session.get(AuditEvent, 2)
        assert second is not None
    tamper(
        migrated_engine,
        "DELETE FROM audit_checkpoint",
        "DELETE FROM audit_event WHERE seq > 2",
        f"UPDATE audit_head SET seq = 2, hash = '{second.hash}'",
    )

    assert verify(migrated_engine)[0] is True  # the database alone cannot tell any more
    with Session(migrated_engine) as session:
        result = verify_chain(
            session=session,
            key=KEY,
            trusted=TRUSTED,
            extra_checkpoints=read_checkpoint_file(kept),
        )
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_a_malformed_checkpoint_file_is_named(tmp_path: Path) -> None:
    kept = tmp_path / "checkpoints.jsonl"
    kept.write_text('{"head_seq": 1}\n')
    with pytest.raises(ValueError, match="checkpoints.jsonl:1"):
        read_checkpoint_file(kept)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET actor = 'x'",
        "DELETE FROM audit_event",
        "DELETE FROM audit_checkpoint",
    ],
)
def test_the_database_refuses_to_change_audit_rows_on_sqlite(
    migrated_engine: Engine, statement: str
) -> None:
    write_events(migrated_engine, 2)
    checkpoint(migrated_engine)
    with pytest.raises(IntegrityError, match="append-only"), migrated_engine.begin() as connection:
        connection.execute(text(statement))
    assert verify(migrated_engine)[0] is True


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET actor = 'x'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
        "DELETE FROM audit_checkpoint",
    ],
)
def test_the_database_refuses_to_change_audit_rows_on_postgres(
    postgres_url: str, statement: str
) -> None:
    engine = make_engine(postgres_url)
    upgrade(engine)
    write_events(engine, 2)
    checkpoint(engine)
    with pytest.raises(ProgrammingError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert verify(engine)[0] is True
    engine.dispose()


@pytest.mark.parametrize(
    ("statements", "first_bad"),
    [
        (["DELETE FROM audit_event WHERE seq BETWEEN 9 AND 12"], 9),  # a whole range
        (["DELETE FROM audit_event WHERE seq = 8"], 8),  # the last event of a range
        (["UPDATE audit_event SET data = replace(data, 'step', 'stop') WHERE seq = 13"], 13),
        (
            [  # swapped across the boundary of the ranges 13-16 and 17-20
                "UPDATE audit_event SET seq = -1 WHERE seq = 16",
                "UPDATE audit_event SET seq = 16 WHERE seq = 17",
                "UPDATE audit_event SET seq = 17 WHERE seq = -1",
            ],
            16,
        ),
        (["DELETE FROM audit_event WHERE seq >= 25"], 25),  # the tail, head left as it was
        ([], None),
    ],
)
def test_ranges_verified_on_two_processes_find_what_one_walk_finds(
    migrated_engine: Engine, statements: list[str], first_bad: int | None
) -> None:
    write_events(migrated_engine, 30)
    checkpoint(migrated_engine)  # at event 30: its Merkle root is checked across the ranges too
    tamper(migrated_engine, *statements)
    done: list[int] = []

    with Session(migrated_engine) as session:
        one = verify_chain(session=session, key=KEY, trusted=TRUSTED)
        ranged = verify_chain(
            session=session,
            key=KEY,
            trusted=TRUSTED,
            workers=2,
            range_events=4,
            progress=lambda checked, total: done.append(checked),
        )

    assert ranged == one
    assert (one.ok, one.first_bad_seq) == (first_bad is None, first_bad)
    assert done == sorted(done)
    if first_bad is None:
        assert done[-1] == 30 == one.checked


def write_varied_events(engine: Engine) -> list[AuditEvent]:
    """Events with whole-second and fractional times, with and without incident and alert ids."""
    from datetime import UTC, datetime

    moments = [
        datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC),  # no fraction: isoformat drops it
        datetime(2026, 11, 27, 10, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 11, 27, 10, 0, 1, 500000, tzinfo=UTC),
        datetime(2026, 11, 27, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    ids = [(None, None), (uuid.uuid4(), None), (None, uuid.uuid4()), (uuid.uuid4(), uuid.uuid4())]
    for moment, (incident, alert) in zip(moments, ids, strict=True):
        with session_scope(engine) as session:
            append_event(
                session=session,
                key=KEY,
                kind="alert.received",
                actor="ingress",
                data={"at": moment.isoformat()},
                incident_id=incident,
                alert_id=alert,
                now=lambda moment=moment: moment,  # type: ignore[misc]
            )
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())  # type: ignore[arg-type]


def test_the_fast_read_gives_the_times_and_ids_the_orm_gives(migrated_engine: Engine) -> None:
    from audit.ranges import read_batch

    events = write_varied_events(migrated_engine)
    with Session(migrated_engine) as session:
        rows = read_batch(session=session, from_seq=1)

    assert [row[1:4] for row in rows] == [
        (
            e.ts.isoformat(),
            str(e.incident_id) if e.incident_id else None,
            str(e.alert_id) if e.alert_id else None,
        )
        for e in events
    ]
    assert verify(migrated_engine) == (True, None, None)


@pytest.mark.parametrize(
    ("column", "stored"),
    [
        ("ts", "2026-11-27 23:59:59.999998"),  # another time, in the stored form
        ("ts", "2026-11-27 23:59:59"),  # the fraction dropped, in another form
        ("ts", "not a time"),
        ("incident_id", "00000000000000000000000000000000"),
        ("incident_id", "not an id"),
    ],
)
def test_a_changed_time_or_id_fails_its_link(
    migrated_engine: Engine, column: str, stored: str
) -> None:
    write_varied_events(migrated_engine)
    # Event 4 has both ids and a time with a fraction.
    tamper(migrated_engine, f"UPDATE audit_event SET {column} = '{stored}' WHERE seq = 4")

    ok, bad, reason = verify(migrated_engine)

    assert (ok, bad) == (False, 4)
    assert reason is not None and "altered" in reason
