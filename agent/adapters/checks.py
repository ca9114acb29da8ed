"""Check every configured integration at once: what answers, what does not, and why."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from agent.adapters.factory import Adapters
from agent.settings import Settings
from tools.protocols import Checkable, FailoverBackend
from tools.result import ToolStatus

CHECK_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class CheckRow:
    """One integration's state."""

    scope: str
    role: str
    adapter: str
    ok: bool
    detail: str


def run_checks(
    settings: Settings, adapters: Adapters, timeout: float = CHECK_TIMEOUT_SECONDS
) -> list[CheckRow]:
    """Run every adapter's check() in parallel, each bounded by `timeout` seconds."""
    targets: list[tuple[str, str, Checkable]] = []
    rows: list[CheckRow] = []
    configured: list[tuple[str, Checkable | None]] = [
        ("logs", adapters.logs),
        ("pager", adapters.pager),
        ("chat", adapters.chat),
    ]
    if adapters.incidents is not None:
        targets.append(("settings", "pager.rest", adapters.incidents))
    if adapters.prompts is not None:
        targets.append(("settings", "arize.prompts", adapters.prompts))
    if adapters.arize is not None:
        targets.append(("settings", "arize", adapters.arize))
    elif adapters.arize_missing is not None:
        rows.append(CheckRow("settings", "arize", "-", False, adapters.arize_missing))
    else:
        rows.append(
            CheckRow(
                "settings",
                "arize",
                "-",
                True,
                "not configured: no monitor enrichment, resolve-by-poll or tags "
                "(set REMEDIATOR_ARIZE_API_KEY)",
            )
        )
    for role, maybe in configured:
        if maybe is None:
            rows.append(CheckRow("settings", role, "-", True, "not configured: dry-run"))
        else:
            targets.append(("settings", role, maybe))
    rows.append(_approvals_row(settings))
    catalog = adapters.catalog
    for name in sorted(catalog.services) if catalog else []:
        try:
            tools = adapters.for_service(name)
        except ValueError as exc:
            rows.append(CheckRow(name, "catalog", "-", False, str(exc)))
            continue
        assert tools is not None  # the name is catalogued
        for role, adapter in tools.adapters():
            if role == "failover" and tools.failover is not None:
                adapter = _RouteCheck(tools.failover, name)
            targets.append((name, role, adapter))
        rows += [
            CheckRow(name, role, "-", role.endswith(".golden"), f"not configured: {why}")
            for role, why in tools.missing.items()
        ]
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(targets)))) as pool:
        futures = [
            (scope, role, adapter, pool.submit(_check, adapter)) for scope, role, adapter in targets
        ]
        for scope, role, adapter, future in futures:
            try:
                ok, detail = future.result(timeout=timeout)
            except FutureTimeout:
                ok, detail = False, f"no answer within {timeout:.0f}s"
            rows.append(CheckRow(scope, role, adapter.name, ok, detail))
    return sorted(rows, key=lambda r: (r.scope != "settings", r.scope, r.role))


def _approvals_row(settings: Settings) -> CheckRow:
    """Say where approvals can be given; no way at all is not an error (they expire: deny)."""
    ways = []
    if settings.slack_signing_secret is not None:
        ways.append("Slack buttons (/slack/interactions)")
    if settings.approver_token is not None:
        ways.append("POST /approvals/{id}")
    ways.append("remediator approve")
    detail = "by " + ", ".join(ways)
    if settings.slack_signing_secret is None:
        detail += "; Slack buttons are off: set REMEDIATOR_SLACK_SIGNING_SECRET"
    return CheckRow("settings", "approvals", "-", True, detail)


class _RouteCheck:
    """A failover backend's check, and then that it holds a route for this very service.

    A store that answers says nothing about the service: a gateway that does not know its
    alias (or a Parameter Store without its parameter) fails the first failover. The route is
    read (`current`), never written.
    """

    def __init__(self, backend: FailoverBackend, service: str) -> None:
        self.name = backend.name
        self._backend = backend
        self._service = service

    def check(self) -> tuple[bool, str]:
        ok, detail = self._backend.check()
        if not ok:
            return ok, detail
        result = self._backend.current(self._service)
        if result.status != ToolStatus.ok:
            return False, f"no route for {self._service}: {result.summary}"
        return True, f"{detail}; {result.summary}"


def _check(adapter: Checkable) -> tuple[bool, str]:
    try:
        return adapter.check()
    except Exception as exc:  # an adapter's check must never take the doctor down
        return False, f"check raised {type(exc).__name__}: {exc}"


def format_rows(rows: list[CheckRow]) -> str:
    """Render the rows as an aligned table."""
    header = ("scope", "integration", "adapter", "state", "detail")
    cells = [header] + [
        (r.scope, r.role, r.adapter, "ok" if r.ok else "FAIL", r.detail) for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in cells
    )


class CachedChecks:
    """The doctor's rows for /readyz, recomputed when older than `max_age` seconds."""

    def __init__(self, compute: Callable[[], list[CheckRow]], max_age: float = 60.0) -> None:
        self._compute = compute
        self._max_age = max_age
        self._lock = threading.Lock()
        self._rows: list[CheckRow] | None = None
        self._at = 0.0

    def current(self) -> list[CheckRow]:
        """Return rows no older than max_age."""
        with self._lock:
            if self._rows is None or time.monotonic() - self._at > self._max_age:
                self._rows = self._compute()
                self._at = time.monotonic()
            return self._rows
