"""Engine, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
WRITE_OPTION = "remediator_writes"
LOCK_TIMEOUT_OPTION = "remediator_lock_timeout"
"""Seconds a transaction may wait for a lock (SQLite's write lock, a PostgreSQL row or table)."""
SQLITE_BUSY_MS = 30000
"""How long a SQLite transaction waits for the write lock, unless it says otherwise."""


class LockTimeout(sqlite3.OperationalError):
    """A writing transaction waited longer than it may for this process's turn to write."""


class WriteTurn:
    """A re-entrant lock that hands itself to its waiters in the order they came (FIFO).

    `threading.RLock` lets the thread that releases it take it straight back: a writer that
    commits in a loop (the intake, batch after batch) would keep the turn from the worker loops
    for as long as alerts arrive. Here a release gives the turn to the longest waiter.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiters: deque[tuple[int, threading.Lock]] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the turn (again, if this thread holds it); False if not within `timeout`."""
        me = threading.get_ident()
        with self._guard:
            if self._owner == me or (self._owner is None and not self._waiters):
                self._owner = me
                self._depth += 1
                return True
            if not blocking:
                return False
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append((me, gate))
        handed = gate.acquire(timeout=timeout)
        with self._guard:
            if handed or self._owner == me:  # handed over, perhaps just as the wait ran out
                return True
            self._waiters.remove((me, gate))
            return False

    def release(self, holder: int | None = None) -> None:
        """Give the turn back; the last release of its holder hands it to the next waiter.

        `holder`: the thread that took it (default: this one), for a connection closed by
        another thread (the pool, the garbage collector) than the one that began its transaction.
        """
        with self._guard:
            if self._owner != (threading.get_ident() if holder is None else holder):
                raise RuntimeError("cannot release a write turn this thread does not hold")
            self._depth -= 1
            if self._depth:
                return
            if self._waiters:
                self._owner, gate = self._waiters.popleft()
                self._depth = 1
                gate.release()
            else:
                self._owner = None


_write_turns: dict[str, WriteTurn] = {}
_write_turns_guard = threading.Lock()


def write_turn(path: str) -> WriteTurn:
    """Return this process's write queue for one SQLite file: who writes next, in turn.

    SQLite lets one transaction write at a time, and a transaction that finds the lock taken
    polls it, sleeping 1 ms, then 2, 5, ... up to 100 ms between tries: under load, a waiter
    sleeps long after the lock is free, and the writers of a busy process (the intake, the
    worker loops, the checkpointer) spend their time asleep. Waiting here instead, each is woken
    the moment the one before it commits, in the order they came; SQLite's own wait is left for
    writers in other processes. Re-entrant, so a thread that already holds its turn is never
    made to wait on itself (SQLite's lock decides then, as before).
    """
    if not path or path == ":memory:" or path.startswith("file:"):
        return WriteTurn()  # a database of this engine's own: nobody to queue with
    key = str(Path(path).resolve())
    with _write_turns_guard:
        return _write_turns.setdefault(key, WriteTurn())


def take_turn(turn: WriteTurn, timeout: float | None) -> None:
    """Wait for `turn` for up to `timeout` seconds (SQLite's 30 s when None); raise LockTimeout."""
    wait = SQLITE_BUSY_MS / 1000 if timeout is None else float(timeout)
    if not turn.acquire(timeout=max(wait, 0.0)):
        raise LockTimeout(f"database is locked: no turn to write within {wait:g}s")


class _TurnConnection(sqlite3.Connection):
    """A SQLite connection that gives its process's write turn back when its transaction ends."""

    turn: WriteTurn | None = None
    held = 0
    holder: int | None = None
    """The thread whose transaction took the turn (whoever ends it gives it back)."""

    def hold(self, turn: WriteTurn, timeout: float | None) -> None:
        take_turn(turn, timeout)
        self.turn, self.holder = turn, threading.get_ident()
        self.held += 1

    def give_back(self) -> None:
        while self.held and self.turn is not None:
            self.held -= 1
            self.turn.release(self.holder)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_back()


def make_engine(database_url: str) -> Engine:
    """Create the engine; on SQLite, every transaction takes the write lock up front."""
    if not database_url.startswith("sqlite"):
        engine = create_engine(database_url, pool_pre_ping=True)

        @event.listens_for(engine, "begin")
        def _bound_lock_waits(connection: Any) -> None:
            timeout = connection.get_execution_options().get(LOCK_TIMEOUT_OPTION)
            if timeout is not None:
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = {_milliseconds(timeout)}")

        return engine
    path = database_url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    turn = write_turn(path)
    engine = create_engine(
        database_url,
        connect_args={"check_same_thread": False, "timeout": 30, "factory": _TurnConnection},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself (pysqlite's own handling defers it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A write transaction reads then writes (the audit head): it must take the write lock at
        # BEGIN, or two of them deadlock on the upgrade. Reads stay deferred and never block.
        options = connection.get_execution_options()
        if not options.get(WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN")
            return
        # How long BEGIN IMMEDIATE waits for the write lock: this transaction's bound, if any.
        timeout = options.get(LOCK_TIMEOUT_OPTION)
        busy = SQLITE_BUSY_MS if timeout is None else _milliseconds(timeout)
        if connection.info.get("busy_ms", SQLITE_BUSY_MS) != busy:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={busy}")
            connection.info["busy_ms"] = busy
        # This process's writers queue here first (given back at commit or rollback).
        dbapi: _TurnConnection = connection.connection.dbapi_connection
        try:
            dbapi.hold(turn, timeout)
        except LockTimeout as exc:
            raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi.give_back()
            raise

    return engine


def _milliseconds(seconds: float) -> int:
    return max(1, round(float(seconds) * 1000))


@contextmanager
def session_scope(engine: Engine, *, lock_timeout: float | None = None) -> Iterator[Session]:
    """Yield a writing session: committed on success, rolled back on error.

    `lock_timeout` bounds how long it waits for a lock (then the database raises, and the
    session is rolled back); unset, SQLite waits 30 s and PostgreSQL as long as it takes.
    """
    options: dict[str, Any] = {WRITE_OPTION: True}
    if lock_timeout is not None:
        options[LOCK_TIMEOUT_OPTION] = lock_timeout
    with Session(engine.execution_options(**options), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class BackgroundCheckpoints:
    """Move SQLite's WAL checkpoints off an engine's commits, onto a thread of their own.

    By default the commit that grows the WAL past 1,000 pages copies it back into the database
    file and syncs it: that commit, and every request waiting on it, stalls for tens of
    milliseconds. The ack path's writer turns that off for its connections and checkpoints here
    instead, every `every` seconds; a PASSIVE checkpoint runs beside the writer, never blocking it.
    """

    def __init__(self, engine: Engine, every: float = 1.0) -> None:
        self._engine = engine
        self._every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

        @event.listens_for(engine, "connect")
        def _no_auto_checkpoint(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    def start(self) -> BackgroundCheckpoints:
        """Start checkpointing every `every` seconds."""
        self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
        self._thread.start()
        return self

    def checkpoint(self) -> None:
        """Copy what the WAL holds back into the database file, without waiting for anyone."""
        with self._engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def stop(self) -> None:
        """Stop the thread after a last checkpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.checkpoint()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.checkpoint()
            except Exception:  # a busy or failed checkpoint is retried on the next tick
                log.warning("db.checkpoint_failed", exc_info=True)


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic config that runs the packaged migrations on this engine."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to a revision (default: the newest)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """Return the schema revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def write_problem(engine: Engine, *, timeout: float = 2.0) -> str | None:
    """Return why the database cannot be written right now, or None (for readiness).

    SQLite: take the write lock and commit the audit head rewritten unchanged (a read-only
    file, a commit that fails, or a lock held for more than `timeout`, shows). PostgreSQL: a
    read-only transaction (a standby, `default_transaction_read_only`) shows.
    """
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if engine.dialect.name == "sqlite":
            options = {WRITE_OPTION: True, LOCK_TIMEOUT_OPTION: timeout}
            with engine.execution_options(**options).connect() as connection:
                with connection.begin():
                    connection.exec_driver_sql("UPDATE audit_head SET seq = seq WHERE id = 1")
            return None
        with engine.connect() as connection:
            read_only = connection.exec_driver_sql("SHOW transaction_read_only").scalar()
        return "read-only" if read_only == "on" else None
    except SQLAlchemyError as exc:
        if engine.dialect.name != "sqlite":
            return type(exc).__name__  # PostgreSQL's messages may name hosts: not shown
        reason = str(getattr(exc, "orig", None) or type(exc).__name__)
        if "locked" in reason or "busy" in reason:
            return f"locked by another transaction for over {timeout:g}s"
        return reason.splitlines()[0][:200]
