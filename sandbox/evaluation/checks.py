"""Expectations on order, timing and content: what happened when, and what people were told.

A moment is named as a scenario names it: an action taken (`page`, `page:critical`,
`failover`, `notify:warning`, …; escalations included), an approval step
(`approval:requested`, `approval:expired`, …), `resolved`, or `verification:passed|failed`.
Times are the service's own (the scenario's clock), from the first alert it received: an
approval left to expire moves that clock past the expiry, so "within 60 s" means "without
waiting for the expiry".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from sandbox.evaluation.systems import Strict

MOMENT = re.compile(
    r"^(?:(?:page|failover|rollback_prompt|rollback|failback|notify)(?::(?:critical|error|warning|info))?"
    r"|approval:(?:requested|approved|rejected|expired|cancelled|refused)"
    r"|resolved|verification:(?:passed|failed))$"
)


def _moment(name: str) -> str:
    if not MOMENT.match(name):
        raise ValueError(
            f"{name!r} is not a moment: an action (page, page:critical, failover, …), "
            "approval:<requested|approved|rejected|expired|cancelled|refused>, resolved, "
            "or verification:<passed|failed>"
        )
    return name


Moment = Annotated[str, AfterValidator(_moment)]


class Texts(Strict):
    """Substrings (case-insensitive) the messages must contain, or must not."""

    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)


class Order(Strict):
    """`first` happens, and before `then` if `then` happens at all."""

    first: Moment
    then: Moment


@dataclass(frozen=True)
class Happening:
    """One moment of the run: its name(s) and when the service recorded it."""

    names: tuple[str, ...]
    at: datetime


@dataclass
class Record:
    """What order, timing and content checks read from a run."""

    moments: list[Happening] = field(default_factory=list)
    start: datetime | None = None
    slack_text: str = ""
    pagerduty_text: str = ""
    routes: dict[str, str] = field(default_factory=dict)
    """Service → the route it is on at the end (primary, backup-region, …)."""

    def first(self, name: str) -> Happening | None:
        """Return the first moment of this name."""
        return next((m for m in self.moments if name in m.names), None)


def action_names(kind: str, severity: str | None) -> tuple[str, ...]:
    """Return the names an action is known by: its kind, and its kind with the severity."""
    return (kind, f"{kind}:{severity}") if severity else (kind,)


def check_order(orders: list[Order], record: Record) -> list[str]:
    """Return each order that the run broke."""
    problems = []
    for order in orders:
        first, then = record.first(order.first), record.first(order.then)
        if first is None:
            problems.append(f"order: {order.first} never happened (expected before {order.then})")
        elif then is not None and then.at < first.at:
            problems.append(f"order: {order.then} came before {order.first}")
    return problems


def check_within(bounds: dict[str, float], record: Record) -> list[str]:
    """Return each moment that did not happen within its bound of the first alert."""
    problems = []
    for name, seconds in bounds.items():
        moment = record.first(name)
        if moment is None or record.start is None:
            problems.append(f"within: {name} never happened (expected within {seconds:g}s)")
            continue
        took = (moment.at - record.start).total_seconds()
        if took > seconds:
            problems.append(f"within: {name} after {took:.0f}s, expected within {seconds:g}s")
    return problems


def check_texts(where: str, texts: Texts | None, seen: str) -> list[str]:
    """Return each substring missing from, or present in, what was sent."""
    if texts is None:
        return []
    text = seen.casefold()
    problems = [f"{where}: no {s!r} in the messages" for s in texts.contains if _no(s, text)]
    problems += [
        f"{where}: {s!r} in the messages, expected none"
        for s in texts.not_contains
        if not _no(s, text)
    ]
    return problems


def _no(needle: str, text: str) -> bool:
    return needle.casefold() not in text


def check_routes(expected: Mapping[str, str], record: Record) -> list[str]:
    """Return each service that ended on another route than expected."""
    return [
        f"routes: {service} ends on {record.routes.get(service, 'no route')}, expected {route}"
        for service, route in expected.items()
        if record.routes.get(service) != route
    ]
