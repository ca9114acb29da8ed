"""SQLite: a process's writers queue for their turn (the engine's and the checkpointer's), reads
never queue, and every way a transaction ends gives the turn back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from agent.graph.runner import TurnTakingSqliteSaver, make_checkpointer
from agent.settings import Settings
from agent.store.db import WriteTurn, make_engine, session_scope, write_turn

WAIT = 10.0
"""A bound on how long a thread that should finish may take (a liveness check, not a timing)."""


@pytest.fixture
def engine(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with session_scope(engine) as session:
        session.connection().execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


@contextmanager
def a_writer_holding_the_turn(engine, order: list | None = None) -> Iterator[None]:
    """Run a thread that inserts 1 and keeps its transaction open until the block ends (then
    commits, noting "engine" in `order`)."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with session_scope(engine) as session:
            session.connection().execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            release.wait(WAIT)
            if order is not None:
                order.append("engine")

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(WAIT)
    try:
        yield
    finally:
        release.set()
        thread.join(WAIT)


def _insert(engine, n: int, order: list[int], **options) -> None:
    with session_scope(engine, **options) as session:
        session.connection().execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        order.append(n)


def test_a_writer_waits_for_the_turn_and_goes_once_it_is_given_back(engine) -> None:
    order: list = []
    with a_writer_holding_the_turn(engine, order):
        b = threading.Thread(target=_insert, args=(engine, 2, order))
        b.start()
        b.join(0.3)
        assert b.is_alive(), "the second writer went while the first held the turn"
    b.join(WAIT)
    assert order == ["engine", 2]
    with Session(engine) as session:
        assert sorted(session.connection().execute(text("SELECT n FROM t")).scalars()) == [1, 2]


def test_a_bounded_wait_ends_in_a_database_error_that_says_locked(engine) -> None:
    with a_writer_holding_the_turn(engine), pytest.raises(OperationalError, match="locked"):
        _insert(engine, 2, [], lock_timeout=0.05)
    # The refused writer took nothing: the next one writes.
    _insert(engine, 3, [])
    with Session(engine) as session:
        assert sorted(session.connection().execute(text("SELECT n FROM t")).scalars()) == [1, 3]


def test_reads_do_not_queue_behind_a_writer(engine) -> None:
    seen: list[int] = []
    with a_writer_holding_the_turn(engine):
        reader = threading.Thread(
            target=lambda: seen.append(
                Session(engine).connection().execute(text("SELECT count(*) FROM t")).scalar_one()
            )
        )
        reader.start()
        reader.join(WAIT)
    assert seen == [0]  # read beside the writer, before its commit


def test_a_failed_transaction_gives_the_turn_back(engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.connection().execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("the work failed")
    done = threading.Thread(target=_insert, args=(engine, 2, []))
    done.start()
    done.join(WAIT)
    assert not done.is_alive(), "a rolled-back transaction kept the turn"
    turn = write_turn(str(engine.url.database))
    assert turn.acquire(blocking=False)  # nobody holds it now
    turn.release()


def test_checkpoint_writes_take_the_same_turn(engine, tmp_path: Path) -> None:
    settings = Settings(database_url=str(engine.url), env="dev")
    saver = make_checkpointer(settings)
    assert isinstance(saver, TurnTakingSqliteSaver)
    order: list[str] = []

    def checkpoint_write() -> None:
        with saver.cursor(transaction=True) as cur:
            cur.execute("SELECT 1")
        order.append("checkpointer")

    with a_writer_holding_the_turn(engine, order):
        b = threading.Thread(target=checkpoint_write)
        b.start()
        b.join(0.3)
        assert b.is_alive(), "a checkpoint write went while the engine's writer held the turn"
    b.join(WAIT)
    assert order == ["engine", "checkpointer"]
    # A read through the saver does not wait for anyone.
    with saver.cursor(transaction=False) as cur:
        cur.execute("SELECT 1")


def test_the_turn_goes_to_writers_in_the_order_they_came() -> None:
    turn = WriteTurn()
    assert turn.acquire()
    order: list[int] = []

    def writer(n: int) -> None:
        assert turn.acquire(timeout=WAIT)
        order.append(n)
        turn.release()

    threads = []
    for n in range(4):
        threads.append(threading.Thread(target=writer, args=(n,)))
        threads[-1].start()
        while len(turn._waiters) < n + 1:  # queued before the next one starts
            threading.Event().wait(0.001)
    turn.release()
    for thread in threads:
        thread.join(WAIT)
    assert order == [0, 1, 2, 3]


def test_a_writer_that_gives_the_turn_back_cannot_take_it_again_before_a_waiter() -> None:
    turn = WriteTurn()
    assert turn.acquire()
    done = threading.Event()

    def waiter() -> None:
        assert turn.acquire(timeout=WAIT)
        done.wait(WAIT)
        turn.release()

    waiting = threading.Thread(target=waiter)
    waiting.start()
    while not turn._waiters:
        threading.Event().wait(0.001)
    turn.release()
    assert not turn.acquire(blocking=False)  # it is the waiter's now, woken or not yet
    done.set()
    waiting.join(WAIT)
    assert turn.acquire(blocking=False)
    turn.release()


def test_a_wait_that_runs_out_leaves_the_queue() -> None:
    turn = WriteTurn()
    assert turn.acquire()
    result: list[bool] = []
    late = threading.Thread(target=lambda: result.append(turn.acquire(timeout=0.05)))
    late.start()
    late.join(WAIT)
    assert result == [False] and not turn._waiters
    turn.release()
    assert turn.acquire(blocking=False)
    turn.release()
    with pytest.raises(RuntimeError):
        turn.release()


def test_a_connection_ended_by_another_thread_still_gives_the_turn_back(engine) -> None:
    """The pool or the garbage collector may end a transaction on another thread."""
    connection = engine.connect()
    connection.execution_options(remediator_writes=True).begin()  # takes the turn
    closer = threading.Thread(target=connection.close)  # rolls back and returns it
    closer.start()
    closer.join(WAIT)
    done = threading.Thread(target=_insert, args=(engine, 2, []))
    done.start()
    done.join(WAIT)
    assert not done.is_alive(), "the turn stayed with the thread that began the transaction"
