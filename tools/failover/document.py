"""Failover backends' shared parts: routes as JSON, result shapes, and the document-store logic.

The SSM and file backends keep, per service, one JSON document holding the active route and the
records of the switches made (newest last, at most MAX_RECORDS):

    {"route": {"provider", "model", "region", "extra"},
     "switches": [{"key", "previous", "new", "from_version", "at", "restored"?}]}

Keeping both in one value makes a switch a single write: the route never changes without its
record, so `restore` can always find the route that was active before. `from_version` is the
store's version of the document that the switch replaced. A bare route object is accepted too, so
an operator can create the document by hand.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from tools.protocols import Route
from tools.result import Stopwatch, ToolResult, ToolStatus

MAX_KEY_CHARS = 200
MAX_RECORDS = 20


def route_to_json(route: Route) -> dict[str, Any]:
    """Return the route as a JSON object with every field present."""
    return {
        "provider": route.provider,
        "model": route.model,
        "region": route.region,
        "extra": dict(route.extra),
    }


def route_from_json(data: Any) -> Route:
    """Return the route in a JSON object; raise ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("a route must be a JSON object")
    provider, model = data.get("provider"), data.get("model")
    region, extra = data.get("region"), data.get("extra")
    if not isinstance(provider, str) or not provider:
        raise ValueError("a route needs a non-empty 'provider'")
    if not isinstance(model, str) or not model:
        raise ValueError("a route needs a non-empty 'model'")
    if region is not None and not isinstance(region, str):
        raise ValueError("a route's 'region' must be a string")
    if extra is not None and not isinstance(extra, dict):
        raise ValueError("a route's 'extra' must be an object")
    return Route(provider=provider, model=model, region=region, extra=dict(extra or {}))


def label(route: Route) -> str:
    """Return a short human form of a route, e.g. openai/gpt-4o@eu-west-1."""
    return f"{route.provider}/{route.model}" + (f"@{route.region}" if route.region else "")


def check_key(key: str) -> None:
    """Refuse an idempotency key that is empty or too long to store and send."""
    if not key or len(key) > MAX_KEY_CHARS:
        raise ValueError(f"idempotency_key must have 1 to {MAX_KEY_CHARS} characters")


def change_result(
    tool: str,
    asked: dict[str, Any],
    watch: Stopwatch,
    *,
    service: str,
    previous: Route,
    new: Route,
    current: Route | None,
    changed: bool,
    repeated: bool,
    version: int | None,
    note: str | None = None,
) -> ToolResult:
    """Return the result of a switch or restore, confirmed when the read-back shows `new`."""
    confirmed = current == new
    if repeated:
        summary = f"{asked['action']} with this key was already done: {label(previous)} → "
        summary += label(new)
    elif changed:
        summary = f"{asked['action']} of {service}: {label(previous)} → {label(new)}"
    else:
        summary = f"{service} already routes to {label(new)}; nothing changed"
    if not confirmed:
        now = label(current) if current is not None else "nothing readable"
        summary += f"; but the read-back shows {now}"
    evidence: dict[str, Any] = {
        "service": service,
        "previous": route_to_json(previous),
        "new": route_to_json(new),
        "current": route_to_json(current) if current is not None else None,
        "confirmed": confirmed,
        "changed": changed,
        "repeated": repeated,
        "version": version,
    }
    if note:
        evidence["note"] = note
    return ToolResult(
        tool=tool,
        status=ToolStatus.ok if confirmed else ToolStatus.degraded,
        summary=summary + (f" ({note})" if note else ""),
        asked=asked,
        evidence=evidence,
        latency_ms=watch.ms,
    )


def failure(
    tool: str, asked: dict[str, Any], watch: Stopwatch, reason: str, status: ToolStatus
) -> ToolResult:
    """Return the result of a call that could not be done, with its reason."""
    return ToolResult(
        tool=tool,
        status=status,
        summary=f"{asked['action']} failed: {reason}",
        asked=asked,
        latency_ms=watch.ms,
        error=reason[:1000],
    )


class StoreError(Exception):
    """An outside failure of a document store; reported as a result, never raised to callers."""

    def __init__(self, reason: str, status: ToolStatus = ToolStatus.error) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class RouteDocument:
    """A service's active route, its switch records, and the store's version of them."""

    route: Route
    switches: list[dict[str, Any]]
    version: int


def parse_document(data: Any, version: int) -> RouteDocument:
    """Return the document in a parsed JSON value; raise ValueError when it is not one."""
    if isinstance(data, dict) and "route" in data:
        switches = data.get("switches") or []
        if not isinstance(switches, list) or not all(isinstance(s, dict) for s in switches):
            raise ValueError("'switches' must be a list of objects")
        return RouteDocument(route_from_json(data["route"]), switches, version)
    return RouteDocument(route_from_json(data), [], version)


def dump_document(route: Route, switches: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the JSON form of a route document."""
    return {"route": route_to_json(route), "switches": switches}


def _record(switches: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    return next((s for s in reversed(switches) if s.get("key") == key), None)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _routes_of(record: dict[str, Any]) -> tuple[Route, Route]:
    """Return a switch record's (previous, new) routes; raise StoreError when unreadable."""
    try:
        return route_from_json(record.get("previous")), route_from_json(record.get("new"))
    except ValueError as exc:
        raise StoreError(f"unreadable switch record {record.get('key')!r}: {exc}") from exc


class DocumentFailover(ABC):
    """Switch and restore routes kept with their switch records in one document per service."""

    name: str

    @abstractmethod
    def check(self) -> tuple[bool, str]:
        """Return whether the store answers, and why not if it does not."""

    @abstractmethod
    def _location(self, service: str) -> str:
        """Return where the service's document lives (for `asked`)."""

    @abstractmethod
    def _load(self, service: str) -> RouteDocument | None:
        """Return the service's document, None when there is none; raise StoreError."""

    @abstractmethod
    def _store(self, service: str, document: dict[str, Any], read_version: int) -> int:
        """Write the service's document over the version read; return the new version."""

    def _guard(self) -> AbstractContextManager[object]:
        """Return what keeps other writers out between a read and its write."""
        return nullcontext()

    def current(self, service: str) -> ToolResult:
        """Return the service's active route."""
        asked = {"action": "current", "service": service, "where": self._location(service)}
        watch = Stopwatch()
        try:
            document = self._load(service)
        except StoreError as exc:
            return failure(self.name, asked, watch, exc.reason, exc.status)
        if document is None:
            return ToolResult(
                tool=self.name,
                status=ToolStatus.no_data,
                summary=f"no route stored for {service}",
                asked=asked,
                latency_ms=watch.ms,
            )
        return ToolResult(
            tool=self.name,
            status=ToolStatus.ok,
            summary=f"{service} routes to {label(document.route)}",
            asked=asked,
            evidence={
                "service": service,
                "route": route_to_json(document.route),
                "version": document.version,
                "switches": len(document.switches),
            },
            latency_ms=watch.ms,
        )

    def seed(self, service: str, route: Route) -> ToolResult:
        """Set a service's route without a switch record (first set-up, demo and tests)."""
        asked = {"action": "seed", "service": service, "route": route_to_json(route)}
        watch = Stopwatch()
        try:
            with self._guard():
                document = self._load(service)
                switches = document.switches if document else []
                read_version = document.version if document else 0
                version = self._store(service, dump_document(route, switches), read_version)
        except StoreError as exc:
            return failure(self.name, asked, watch, exc.reason, exc.status)
        return ToolResult(
            tool=self.name,
            status=ToolStatus.ok,
            summary=f"{service} set to {label(route)}",
            asked=asked,
            evidence={"service": service, "route": route_to_json(route), "version": version},
            latency_ms=watch.ms,
        )

    def switch(self, service: str, to: Route, *, idempotency_key: str) -> ToolResult:
        """Switch to `to` unless this key already did; confirm by reading the route back."""
        check_key(idempotency_key)
        asked = {
            "action": "switch",
            "service": service,
            "to": route_to_json(to),
            "idempotency_key": idempotency_key,
            "where": self._location(service),
        }
        watch = Stopwatch()
        try:
            with self._guard():
                return self._switch(asked, watch, service, to, idempotency_key)
        except StoreError as exc:
            return failure(self.name, asked, watch, exc.reason, exc.status)

    def restore(self, service: str, *, idempotency_key: str) -> ToolResult:
        """Put back the route that was active before the switch made with this key."""
        check_key(idempotency_key)
        asked = {
            "action": "restore",
            "service": service,
            "idempotency_key": idempotency_key,
            "where": self._location(service),
        }
        watch = Stopwatch()
        try:
            with self._guard():
                return self._restore(asked, watch, service, idempotency_key)
        except StoreError as exc:
            return failure(self.name, asked, watch, exc.reason, exc.status)

    def _switch(
        self, asked: dict[str, Any], watch: Stopwatch, service: str, to: Route, key: str
    ) -> ToolResult:
        document = self._load(service)
        if document is None:
            reason = f"no route stored for {service}; nothing to switch from"
            return failure(self.name, asked, watch, reason, ToolStatus.error)
        done = partial(change_result, self.name, asked, watch, service=service)
        record = _record(document.switches, key)
        if record is not None:
            previous, new = _routes_of(record)
            if new != to:
                reason = f"key {key!r} already switched {service} to {label(new)}"
                return failure(self.name, asked, watch, reason, ToolStatus.error)
            note = "restored since" if record.get("restored") else None
            return done(
                previous=previous,
                new=new,
                current=document.route,
                changed=False,
                repeated=True,
                version=document.version,
                note=note,
            )
        if document.route == to:
            return done(
                previous=document.route,
                new=to,
                current=document.route,
                changed=False,
                repeated=False,
                version=document.version,
            )
        record = {
            "key": key,
            "previous": route_to_json(document.route),
            "new": route_to_json(to),
            "from_version": document.version,
            "at": _now(),
        }
        switches = [*document.switches, record][-MAX_RECORDS:]
        version = self._store(service, dump_document(to, switches), document.version)
        current, note = self._read_back(service)
        return done(
            previous=document.route,
            new=to,
            current=current,
            changed=True,
            repeated=False,
            version=version,
            note=note,
        )

    def _restore(
        self, asked: dict[str, Any], watch: Stopwatch, service: str, key: str
    ) -> ToolResult:
        document = self._load(service)
        record = _record(document.switches, key) if document else None
        if document is None or record is None:
            reason = f"no switch of {service} recorded with key {key!r}"
            return failure(self.name, asked, watch, reason, ToolStatus.error)
        done = partial(change_result, self.name, asked, watch, service=service)
        before, switched_to = _routes_of(record)
        if record.get("restored") or document.route == before:
            return done(
                previous=switched_to,
                new=before,
                current=document.route,
                changed=False,
                repeated=bool(record.get("restored")),
                version=document.version,
            )
        if document.route != switched_to:
            reason = (
                f"{service} routes to {label(document.route)} since the switch to "
                f"{label(switched_to)}; not overwriting that change"
            )
            return failure(self.name, asked, watch, reason, ToolStatus.error)
        restored = dict(record, restored={"from_version": document.version, "at": _now()})
        switches = [restored if s is record else s for s in document.switches]
        version = self._store(service, dump_document(before, switches), document.version)
        current, note = self._read_back(service)
        return done(
            previous=switched_to,
            new=before,
            current=current,
            changed=True,
            repeated=False,
            version=version,
            note=note,
        )

    def _read_back(self, service: str) -> tuple[Route | None, str | None]:
        # The write went through; a failed read-back leaves it unconfirmed, not failed.
        try:
            document = self._load(service)
        except StoreError as exc:
            return None, f"read-back failed: {exc.reason}"
        return (document.route if document else None), None
