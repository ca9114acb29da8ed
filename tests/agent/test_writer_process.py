"""The intake's writer process: it starts, answers, dies, restarts and stops as the API expects."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from agent.alerts.intake import NotStored, Unstorable
from agent.alerts.models import Alert
from agent.alerts.writer_process import WriterGone, WriterProcess
from agent.api.app import create_app
from agent.store.db import BackgroundCheckpoints, make_engine, upgrade
from sandbox.server import EmulatorServer
from tests.agent.test_intake import assert_one_event_per_alert, post_all, storm
from tests.conftest import RunningService, make_settings
from tests.sample import arize_alert


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[RunningService, WriterProcess]]:
    """The API (no worker) storing alerts through a writer process; yields it and its store."""
    settings = make_settings(tmp_path, intake_writer="process")
    app = create_app(settings, run_worker=False)
    server = EmulatorServer(app, lifespan="on").start()
    store = app.state.app_state.intake._store
    assert isinstance(store, WriterProcess)
    yield RunningService(settings, server), store
    server.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not yet reaped is a zombie: not running.
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_alerts_stored_by_the_writer_process_are_on_the_chain(
    api: tuple[RunningService, WriterProcess],
) -> None:
    service, store = api
    assert store.pid is not None and store.pid != os.getpid()

    answers = asyncio.run(post_all(service, storm(50, "proc-bot")))

    assert [a.status_code for a in answers] == [202] * 50
    assert_one_event_per_alert(service, answers)


def test_a_killed_writer_fails_only_its_batch_and_the_next_alert_starts_a_new_one(
    api: tuple[RunningService, WriterProcess],
) -> None:
    service, store = api
    first = service.post_alert(arize_alert(current_value=5001))
    assert first.status_code == 202
    killed = store.pid
    assert killed is not None

    os.kill(killed, signal.SIGKILL)
    assert wait_gone(killed)
    # The API notices at the next batch: that request is refused (nothing confirmed it), and
    # the one after it is stored by a new writer. A client retrying a 503 gets its alert stored.
    answers = [service.post_alert(arize_alert(current_value=5002)) for _ in range(2)]

    assert [a.status_code for a in answers] == [503, 202], [a.text for a in answers]
    assert "writer stopped" in answers[0].json()["detail"]
    assert answers[0].headers["retry-after"] == "1"
    assert store.pid not in (None, killed)
    assert service.count(Alert) == 2


def test_the_writer_exits_when_the_api_process_is_gone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    upgrade(make_engine(settings.database_url))
    store = WriterProcess(settings)
    store.open()
    pid = store.pid
    assert pid is not None and alive(pid)

    # The API process dying closes its end of the pipe, exactly like this.
    assert store._conn is not None
    store._conn.close()

    assert wait_gone(pid)
    store.close()


def test_the_writer_stops_when_the_api_stops(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, intake_writer="process")
    app = create_app(settings, run_worker=False)
    server = EmulatorServer(app, lifespan="on").start()
    pid = app.state.app_state.intake._store.pid
    assert pid is not None and alive(pid)

    server.stop()

    assert not alive(pid)


def test_a_writer_that_cannot_open_the_database_stops_start_up_saying_why(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = make_settings(tmp_path, database_url=f"sqlite:///{blocker}/remediator.db")
    store = WriterProcess(settings)

    with pytest.raises(WriterGone, match="could not start: .*Error"):
        store.open()
    store.close()


def test_a_refused_request_is_answered_by_the_writer_process_alone(
    api: tuple[RunningService, WriterProcess],
) -> None:
    service, _ = api
    with service.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON alert "
                "WHEN NEW.monitor_key = 'poison' "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        )

    poison = service.post_alert(arize_alert(monitor_id="poison"))
    fine = service.post_alert(arize_alert(current_value=4242))

    assert poison.status_code == 503
    assert "database refused" in poison.json()["detail"]
    assert fine.status_code == 202


def test_background_checkpoints_keep_the_wal_from_growing(tmp_path: Path) -> None:
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    checkpoints = BackgroundCheckpoints(engine, every=3600)  # no tick during the test
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
        for _ in range(50):
            connection.exec_driver_sql("INSERT INTO t VALUES (?)", ("x" * 4000,))
        # Commits on this engine no longer checkpoint on their own: the WAL keeps every frame.
        pages = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == 0
    database = tmp_path / "wal.db"
    assert (tmp_path / "wal.db-wal").stat().st_size > 50 * 4000
    before = database.stat().st_size

    checkpoints.checkpoint()

    # The rows were copied from the WAL into the database file.
    assert database.stat().st_size > before + 50 * 4000
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 50
    engine.dispose()


def test_a_write_after_close_starts_a_fresh_writer(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    upgrade(make_engine(settings.database_url))
    store = WriterProcess(settings)
    store.open()
    store.close()

    # A write after close starts a fresh writer rather than losing the batch.
    from agent.alerts.arize import DEFAULT_FIELD_PATHS, map_arize_payload

    payload = arize_alert()
    breach = map_arize_payload(payload, DEFAULT_FIELD_PATHS)
    [outcome] = asyncio.run(store.write([[(breach, payload, "d" * 64)]]))
    store.close()

    assert not isinstance(outcome, NotStored)
    assert outcome[0].created


def test_auto_gives_api_replicas_a_writer_process_and_keeps_it_on_a_thread_beside_the_worker(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from agent.alerts.intake import BatchWriter

    def store(run_worker: bool, **overrides: object) -> object:
        settings = make_settings(tmp_path, **{"intake_writer": "auto", **overrides})
        app = create_app(settings, run_worker=run_worker)
        return app.state.app_state.intake._store

    assert isinstance(store(run_worker=False), WriterProcess)
    assert isinstance(store(run_worker=True), BatchWriter)
    assert isinstance(store(run_worker=True, intake_writer="process"), WriterProcess)
    assert isinstance(store(run_worker=False, intake_writer="thread"), BatchWriter)
    # An in-memory database is seen only by this process: the writer stays here.
    assert isinstance(
        store(run_worker=False, intake_writer="process", database_url="sqlite://"), BatchWriter
    )
    # An injected clock cannot cross to another process: the writer stays here.
    fixed = create_app(
        make_settings(tmp_path, intake_writer="process"),
        run_worker=False,
        now=lambda: datetime(2026, 11, 27, tzinfo=UTC),
    )
    assert isinstance(fixed.state.app_state.intake._store, BatchWriter)


def test_a_request_that_cannot_be_sent_to_the_writer_is_refused_alone(tmp_path: Path) -> None:
    from tests.agent.test_intake import received

    settings = make_settings(tmp_path)
    upgrade(make_engine(settings.database_url))
    store = WriterProcess(settings)
    store.open()
    try:
        deep: list[object] = []
        for _ in range(5000):  # past the webhooks' bound, as a bug in it would let through
            deep = [deep]
        bad = received(arize_alert(), "b" * 64)
        bad[1]["x"] = deep
        batch = [[received(arize_alert(), "a" * 64)], [bad], [received(arize_alert(), "c" * 64)]]
        pid = store.pid

        first, refused, third = asyncio.run(store.write(batch))
        [after] = asyncio.run(store.write([[received(arize_alert(), "d" * 64)]]))

        assert isinstance(refused, Unstorable)
        assert isinstance(first, list) and first[0].created
        assert isinstance(third, list) and third[0].created
        assert isinstance(after, list) and after[0].created
        assert store.pid == pid  # the writer itself was never in trouble
    finally:
        store.close()
