"""Failover on a local JSON routing file, for the demo and single-host set-ups.

The file holds `{"services": {<service>: <route document> + {"version": n}}}` (the document is
described in tools/failover/document.py). Writers hold an exclusive `flock` on `<file>.lock`
from read to write, which excludes other threads and processes alike, and replace the file
atomically (temporary file in the same directory, fsync, os.replace), so a reader never sees half
a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from tools.failover.document import DocumentFailover, RouteDocument, StoreError, parse_document
from tools.result import ToolStatus


class FileFailoverBackend(DocumentFailover):
    """Read and switch service routes kept in a local JSON file."""

    name = "file_failover"

    def __init__(
        self,
        path: Path,
        *,
        lock_timeout_seconds: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._path = Path(path)
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._lock_timeout = lock_timeout_seconds
        self._sleep = sleep

    def check(self) -> tuple[bool, str]:
        """Confirm that the routing file exists, parses, and holds at least one route."""
        try:
            services = self._read_all()
        except StoreError as exc:
            return False, exc.reason
        if not services:
            return False, f"no routes in {self._path}"
        return True, f"{len(services)} route(s) in {self._path}"

    def _location(self, service: str) -> str:
        return f"{self._path}#{service}"

    def _guard(self) -> AbstractContextManager[object]:
        return self._locked()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self._lock_path, "a")
        except OSError as exc:
            raise StoreError(f"cannot open lock file {self._lock_path}: {exc}") from exc
        with handle:
            deadline = time.monotonic() + self._lock_timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreError(
                            f"{self._path} stayed locked by another writer for "
                            f"{self._lock_timeout:g}s",
                            ToolStatus.down,
                        ) from None
                    self._sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_all(self) -> dict[str, Any]:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreError(f"cannot read {self._path}: {exc}", ToolStatus.down) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self._path} is not valid JSON: {exc}") from exc
        services = data.get("services") if isinstance(data, dict) else None
        if not isinstance(services, dict):
            raise StoreError(f"{self._path} has no 'services' object")
        return services

    def _load(self, service: str) -> RouteDocument | None:
        entry = self._read_all().get(service)
        if entry is None:
            return None
        try:
            version = int(entry.get("version", 0)) if isinstance(entry, dict) else 0
            return parse_document(entry, version)
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{self._location(service)} is not a route document: {exc}") from exc

    def _store(self, service: str, document: dict[str, Any], read_version: int) -> int:
        services = self._read_all()
        version = read_version + 1
        services[service] = dict(document, version=version)
        text = json.dumps({"services": services}, indent=2, sort_keys=True)
        try:
            descriptor, temporary = tempfile.mkstemp(
                dir=self._path.parent, prefix=f".{self._path.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    handle.write(text + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self._path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"cannot write {self._path}: {exc}", ToolStatus.down) from exc
        return version
