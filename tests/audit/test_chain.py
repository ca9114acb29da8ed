"""The hash chain: a valid trail verifies, any edit, deletion or swap names the first bad event."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, text
from sqlmodel import Session

from agent.db import session_scope
from audit.service import append_event, verify_chain

KEY = b"test-chain-key-0123456789abcdef"


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


def verify(engine: Engine, key: bytes = KEY) -> tuple[bool, int | None, str | None]:
    with Session(engine) as session:
        result = verify_chain(session=session, key=key)
    return result.ok, result.first_bad_seq, result.reason


def test_untouched_chain_verifies(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    assert verify(migrated_engine) == (True, None, None)


def test_empty_chain_verifies(migrated_engine: Engine) -> None:
    assert verify(migrated_engine)[0] is True


def test_edited_data_names_its_sequence_number(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    with migrated_engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_event SET data = replace(data, 'step 2', 'step X') WHERE seq = 3")
        )

    ok, bad, reason = verify(migrated_engine)

    assert (ok, bad) == (False, 3)
    assert reason is not None and "altered" in reason


def test_edited_actor_is_detected(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 3)
    with migrated_engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET actor = 'someone-else' WHERE seq = 2"))

    assert verify(migrated_engine)[:2] == (False, 2)


def test_deleted_event_names_the_gap(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    with migrated_engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_event WHERE seq = 4"))

    ok, bad, reason = verify(migrated_engine)

    assert (ok, bad) == (False, 4)
    assert reason is not None and "missing" in reason


def test_swapped_events_are_detected(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    with migrated_engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET seq = -1 WHERE seq = 2"))
        connection.execute(text("UPDATE audit_event SET seq = 2 WHERE seq = 3"))
        connection.execute(text("UPDATE audit_event SET seq = 3 WHERE seq = -1"))

    assert verify(migrated_engine)[:2] == (False, 2)


def test_removed_tail_disagrees_with_the_head(migrated_engine: Engine) -> None:
    write_events(migrated_engine, 5)
    with migrated_engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_event WHERE seq = 5"))

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
