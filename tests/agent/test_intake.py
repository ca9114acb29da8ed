"""Group commit on the ack path: many concurrent webhooks, one writer, every guarantee kept."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from agent.alerts.arize import DEFAULT_FIELD_PATHS, map_arize_payload
from agent.alerts.intake import (
    AlertIntake,
    BatchWriter,
    NotStored,
    Outcome,
    Received,
    Unstorable,
)
from agent.alerts.models import Alert
from agent.api.app import create_app
from agent.store.audit_log import AuditLog
from audit.models import AuditEvent
from audit.service import verify_chain
from sandbox.server import EmulatorServer
from tests.conftest import RunningService, ServiceFactory, make_settings
from tests.sample import arize_alert

KEY = b"intake-test-key-0123456789abcdef"


def storm(count: int, model: str) -> list[dict[str, Any]]:
    """Distinct alerts of one monitor and model (one fingerprint: the worker opens one incident)."""
    return [arize_alert(model_id=model, current_value=5000 + i) for i in range(count)]


async def post_all(
    service: RunningService, payloads: list[dict[str, Any]], path: str = "/webhooks/arize"
) -> list[httpx.Response]:
    """POST every payload at once, each on its own connection (escaped as JSON allows)."""
    limits = httpx.Limits(max_connections=len(payloads))
    headers = {"Content-Type": "application/json", **service.auth}
    async with httpx.AsyncClient(base_url=service.url, timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(client.post(path, content=json.dumps(p).encode(), headers=headers) for p in payloads)
        )


def chain_of(service: RunningService) -> tuple[bool, list[AuditEvent]]:
    """Return whether the chain verifies, and the `alert.received` events in seq order."""
    with Session(service.engine) as session:
        result = verify_chain(
            session=session, key=service.settings.audit_key.get_secret_value().encode()
        )
        received = session.exec(
            select(AuditEvent).where(AuditEvent.kind == "alert.received").order_by(AuditEvent.seq)  # type: ignore[arg-type]
        ).all()
    return result.ok, list(received)


def assert_one_event_per_alert(service: RunningService, answers: list[httpx.Response]) -> None:
    ok, received = chain_of(service)
    assert ok
    ids = [uuid.UUID(a.json()["alert_id"]) for a in answers if a.status_code == 202]
    assert Counter(e.alert_id for e in received) == Counter(ids)
    with Session(service.engine) as session:
        stored = set(session.exec(select(Alert.id)).all())
    assert stored == set(ids)


def test_two_hundred_concurrent_alerts_are_all_stored_on_a_verifiable_chain(
    start_service: ServiceFactory,
    writer: str,
) -> None:
    service = start_service(intake_writer=writer)

    answers = asyncio.run(post_all(service, storm(200, "storm-bot")))

    assert [a.status_code for a in answers] == [202] * 200, answers[0].text
    assert len({a.json()["alert_id"] for a in answers}) == 200
    assert_one_event_per_alert(service, answers)
    # Alert ids are time-ordered (UUIDv7), in the order the alerts were stored: each lands at
    # the end of the id indexes. The database keeps them as hex text, which sorts the same.
    _, received = chain_of(service)
    stored_order = [event.alert_id for event in received]
    assert all(alert_id is not None and alert_id.version == 7 for alert_id in stored_order)
    assert [i.hex for i in stored_order] == sorted(i.hex for i in stored_order if i is not None)


def test_copies_of_one_delivery_sent_together_get_one_alert(
    start_service: ServiceFactory,
    writer: str,
) -> None:
    service = start_service(intake_writer=writer)
    alert = arize_alert()
    others = storm(20, "other-bot")

    answers = asyncio.run(post_all(service, [alert, *others, alert, alert]))

    copies = [answers[0], *answers[-2:]]
    assert sorted(a.status_code for a in copies) == [200, 200, 202]
    assert len({a.json()["alert_id"] for a in copies}) == 1
    assert sorted(a.json()["status"] for a in copies) == ["accepted", "duplicate", "duplicate"]
    assert service.count(Alert) == 21
    assert_one_event_per_alert(service, answers)


@pytest.fixture(params=["thread", "process"])
def writer(request: pytest.FixtureRequest) -> str:
    """Where the service stores accepted alerts: every ack-path guarantee holds for both."""
    return str(request.param)


def received(payload: dict[str, Any], digest: str) -> Received:
    return (map_arize_payload(payload, DEFAULT_FIELD_PATHS), payload, digest)


async def submit_together(
    engine: Engine, batches: list[list[Received]]
) -> list[list[Any] | BaseException]:
    """Queue every request before the writer runs, so they share one batch."""
    intake = AlertIntake(BatchWriter(engine, AuditLog(key=KEY)))
    intake.start()
    try:
        return await asyncio.gather(*(intake.submit(b) for b in batches), return_exceptions=True)
    finally:
        await intake.close()


def test_a_duplicate_within_one_batch_gets_the_first_copys_alert(
    migrated_engine: Engine,
) -> None:
    alert = arize_alert()
    other = arize_alert()

    first, second, third = asyncio.run(
        submit_together(
            migrated_engine,
            [[received(alert, "a" * 64)], [received(other, "b" * 64)], [received(alert, "a" * 64)]],
        )
    )

    assert isinstance(first, list) and isinstance(third, list) and isinstance(second, list)
    assert first[0].created and not third[0].created
    assert third[0].alert_id == first[0].alert_id
    assert second[0].created
    with Session(migrated_engine) as session:
        assert len(session.exec(select(Alert)).all()) == 2
        assert len(session.exec(select(AuditEvent)).all()) == 2
        assert verify_chain(session=session, key=KEY).ok


def refuse(engine: Engine, name: str, when: str = "1") -> None:
    """Make the database refuse some alert rows: our own trigger, as a constraint would."""
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON alert WHEN {when} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        )


def test_a_failed_commit_answers_503_to_every_request_and_stores_nothing(
    start_service: ServiceFactory,
    writer: str,
) -> None:
    service = start_service(intake_writer=writer)
    refuse(service.engine, "refuse_all")

    answers = asyncio.run(post_all(service, storm(40, "doomed-bot")))

    assert [a.status_code for a in answers] == [503] * 40
    assert "nothing was accepted" in answers[0].json()["detail"]
    assert answers[0].headers["retry-after"] == "1"
    assert service.rows() == (0, 0)


def test_a_failure_after_the_alert_rows_rolls_them_back_for_the_whole_batch(
    start_service: ServiceFactory,
    writer: str,
) -> None:
    service = start_service(intake_writer=writer)
    with service.engine.begin() as connection:
        # An error that no row is to blame for: the event insert fails after the alert rows.
        connection.execute(text("CREATE TABLE broken (x INTEGER)"))
        connection.execute(
            text(
                "CREATE TRIGGER break_events BEFORE INSERT ON audit_event "
                "BEGIN INSERT INTO broken VALUES (1); END"
            )
        )
        connection.execute(text("DROP TABLE broken"))

    answers = asyncio.run(post_all(service, storm(30, "broken-bot")))

    assert [a.status_code for a in answers] == [503] * 30
    assert service.rows() == (0, 0)


def test_one_refused_alert_does_not_fail_the_others_of_its_batch(
    start_service: ServiceFactory,
    writer: str,
) -> None:
    service = start_service(intake_writer=writer)
    refuse(service.engine, "refuse_poison", "NEW.monitor_key = 'poison'")
    payloads = storm(30, "fine-bot")
    payloads.insert(15, arize_alert(monitor_id="poison"))

    answers = asyncio.run(post_all(service, payloads))

    statuses = [a.status_code for a in answers]
    assert statuses[15] == 503
    assert statuses[:15] + statuses[16:] == [202] * 30
    assert_one_event_per_alert(service, answers)


def test_an_alertmanager_group_is_stored_whole_or_not_at_all(
    start_service: ServiceFactory,
    writer: str,
) -> None:
    from tests.agent.test_alertmanager import group

    service = start_service(intake_writer=writer)
    refuse(service.engine, "refuse_us", """NEW.breach_json LIKE '%"region":"us"%'""")
    fine = [group(regions=("eu", "ap")) for _ in range(5)]
    doomed = group(regions=("eu", "us"))

    answers = asyncio.run(post_all(service, [*fine, doomed], "/webhooks/alertmanager"))

    assert [a.status_code for a in answers] == [202] * 5 + [503]
    assert service.count(Alert) == 10


def test_the_intake_refuses_work_when_it_is_not_running(migrated_engine: Engine) -> None:
    intake = AlertIntake(BatchWriter(migrated_engine, AuditLog(key=KEY)))

    with pytest.raises(NotStored, match="not accepting"):
        asyncio.run(intake.submit([received(arize_alert(), "c" * 64)]))


@pytest.fixture
def api_on_postgres(tmp_path: Path, postgres_url: str) -> Iterator[list[RunningService]]:
    """Two API servers (no worker: it needs SQLite for now) sharing one PostgreSQL database."""
    settings = make_settings(tmp_path, database_url=postgres_url)
    servers = [
        EmulatorServer(create_app(settings, run_worker=False), lifespan="on").start()
        for _ in range(2)
    ]
    running = [RunningService(settings, server) for server in servers]
    yield running
    for service, server in zip(running, servers, strict=True):
        server.stop()
        service.engine.dispose()


@pytest.mark.postgres
def test_api_processes_sharing_postgresql_keep_one_chain_and_one_alert_per_delivery(
    api_on_postgres: list[RunningService],
) -> None:
    first, second = api_on_postgres
    alerts = storm(60, "pg-bot")

    async def both() -> tuple[list[httpx.Response], list[httpx.Response]]:
        # Every alert goes to both APIs at once: one stores it, the other finds it.
        return await asyncio.gather(post_all(first, alerts), post_all(second, alerts))

    to_first, to_second = asyncio.run(both())

    for one, other in zip(to_first, to_second, strict=True):
        assert sorted([one.status_code, other.status_code]) == [200, 202]
        assert one.json()["alert_id"] == other.json()["alert_id"]
    winners = [a if a.status_code == 202 else b for a, b in zip(to_first, to_second, strict=True)]
    assert_one_event_per_alert(first, winners)


@pytest.mark.postgres
def test_a_failed_commit_on_postgresql_answers_503_and_stores_nothing(
    api_on_postgres: list[RunningService],
) -> None:
    service = api_on_postgres[0]
    with service.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation'; END $$"
            )
        )
        connection.execute(
            text("CREATE TRIGGER refuse_all BEFORE INSERT ON alert EXECUTE FUNCTION refuse()")
        )

    answers = asyncio.run(post_all(service, storm(20, "doomed-pg-bot")))

    assert [a.status_code for a in answers] == [503] * 20
    assert service.rows() == (0, 0)


def test_one_unstorable_alert_among_concurrent_valid_ones_is_refused_alone(
    start_service: ServiceFactory,
    writer: str,
) -> None:
    service = start_service(intake_writer=writer)
    payloads = storm(40, "neighbour-bot")
    payloads.insert(20, arize_alert(note="lone \ud800 surrogate"))  # an unmapped field

    answers = asyncio.run(post_all(service, payloads))

    statuses = [a.status_code for a in answers]
    assert statuses[20] == 422
    assert "note contains a lone surrogate" in answers[20].json()["detail"]
    assert statuses[:20] + statuses[21:] == [202] * 40
    assert_one_event_per_alert(service, answers)


def test_an_alert_that_cannot_be_prepared_is_refused_alone_in_its_batch(
    migrated_engine: Engine,
) -> None:
    # Past the webhook's checks (as a bug in them would let it): the writer's own check holds.
    poison = arize_alert()
    poison["note"] = "\udcff"
    batches = [[received(arize_alert(), f"{i:064x}")] for i in range(5)]
    batches.insert(2, [received(poison, "f" * 64)])

    outcomes = asyncio.run(submit_together(migrated_engine, batches))

    assert isinstance(outcomes[2], Unstorable)
    assert "lone surrogate" in str(outcomes[2])
    assert all(isinstance(o, list) and o[0].created for o in outcomes[:2] + outcomes[3:])
    with Session(migrated_engine) as session:
        assert len(session.exec(select(Alert)).all()) == 5
        assert verify_chain(session=session, key=KEY).ok


class FailingOnce:
    """A store whose first write raises (as pickling a too-deep body did), then writes."""

    def __init__(self, inner: BatchWriter, error: BaseException) -> None:
        self.inner = inner
        self.error: BaseException | None = error

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    async def write(self, batch: Sequence[list[Received]]) -> list[Outcome]:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return await self.inner.write(batch)


def test_the_intake_survives_a_batch_that_raises_and_stores_the_next(
    migrated_engine: Engine,
) -> None:
    store = FailingOnce(BatchWriter(migrated_engine, AuditLog(key=KEY)), RecursionError("deep"))

    async def run() -> tuple[BaseException | list[Any], list[Any], bool]:
        intake = AlertIntake(store)
        intake.start()
        try:
            first = await asyncio.gather(
                intake.submit([received(arize_alert(), "1" * 64)]), return_exceptions=True
            )
            second = await intake.submit([received(arize_alert(), "2" * 64)])
            return first[0], second, intake.alive
        finally:
            await intake.close()

    first, second, alive = asyncio.run(run())

    assert isinstance(first, NotStored) and "RecursionError" in str(first)
    assert second[0].created
    assert alive


def test_a_dead_intake_makes_the_service_unready_and_refuses_at_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    app = create_app(settings, run_worker=False)
    server = EmulatorServer(app, lifespan="on").start()
    service = RunningService(settings, server)
    try:
        assert httpx.get(f"{service.url}/readyz").json()["checks"]["intake"] == "running"
        task = app.state.app_state.intake._task
        task.get_loop().call_soon_threadsafe(task.cancel)  # dies as an uncaught error would
        deadline = time.monotonic() + 10
        while not task.done() and time.monotonic() < deadline:
            time.sleep(0.01)

        ready = httpx.get(f"{service.url}/readyz", timeout=10)
        answer = service.post_alert(arize_alert())

        assert ready.status_code == 503
        assert ready.json()["checks"]["intake"] == "stopped"
        assert answer.status_code == 503
        assert "writer has stopped" in answer.json()["detail"]
    finally:
        server.stop()


def test_a_held_write_lock_bounds_the_ack_wait_and_makes_the_service_unready(
    start_service: ServiceFactory,
    writer: str,
) -> None:
    service = start_service(intake_writer=writer, intake_lock_timeout_seconds=1)
    assert service.post_alert(arize_alert()).status_code == 202
    path = service.settings.sqlite_path
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, or stuck, holds the lock
    try:
        ready = httpx.get(f"{service.url}/readyz", timeout=30)
        # Answered while the lock is still held, before the engine's own 30 s wait would end.
        answer = service.post_alert(arize_alert(), timeout=20)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("not writable: locked")
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert service.post_alert(arize_alert()).status_code == 202
    assert httpx.get(f"{service.url}/readyz", timeout=30).status_code == 200


@pytest.mark.postgres
def test_a_lock_on_the_alert_table_bounds_the_ack_wait_on_postgresql(
    postgres_url: str, start_service: ServiceFactory
) -> None:
    service = start_service(database_url=postgres_url, intake_lock_timeout_seconds=1)
    assert service.post_alert(arize_alert()).status_code == 202
    with service.engine.connect() as holder:
        holder.execute(text("LOCK TABLE alert IN ACCESS EXCLUSIVE MODE"))  # e.g. a migration
        # Answered while the lock is still held: without a bound the request would wait for it.
        answer = service.post_alert(arize_alert(), timeout=30)
        holder.rollback()

    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert service.post_alert(arize_alert()).status_code == 202


@pytest.mark.postgres
def test_an_alert_the_database_cannot_hold_is_422_alone_on_postgresql(
    api_on_postgres: list[RunningService],
) -> None:
    service = api_on_postgres[0]
    with service.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION too_long() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.monitor_key = 'poison' THEN RAISE EXCEPTION 'value too long' "
                "USING ERRCODE = 'string_data_right_truncation'; END IF; RETURN NEW; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER too_long BEFORE INSERT ON alert "
                "FOR EACH ROW EXECUTE FUNCTION too_long()"
            )
        )
    payloads = storm(20, "pg-neighbour-bot")
    payloads.insert(10, arize_alert(monitor_id="poison"))

    answers = asyncio.run(post_all(service, payloads))

    statuses = [a.status_code for a in answers]
    assert statuses[10] == 422  # a retry could never succeed: not a 503
    assert "cannot store the alert" in answers[10].json()["detail"]
    assert statuses[:10] + statuses[11:] == [202] * 20
