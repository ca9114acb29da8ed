"""Benchmark: from an alert's receipt to PagerDuty's receipt of the page, against the slowest probe.

The sandbox plays the demo's world: the vector index answers wrong neighbours, so the agent pages
the vector DB's owner. The emulators are given fixed latencies: every vector DB request waits
--vector-delay, the embeddings model --embeddings-latency, the endpoint's chat model
--endpoint-latency per prompt. `remediator serve` (worker on, LLM analyst off, group wait 0,
idle worker poll --poll) then gets N incidents one after the other, each from its own monitor so
that each opens an incident. Per incident, the clock starts at the `alert.received` audit event
and stops when the PagerDuty emulator stores the trigger (the bench wraps the emulator's list to
note the time); the baseline is the slowest `probe.completed` latency of the same incident.
Target: every incident paged within 1.2 x its slowest probe + 100 ms.

This file also holds the sandbox world and database readers that bench/storm.py shares.

    .venv/bin/python bench/time_to_page.py [--incidents N] [--poll SECONDS]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from harness import Row, Service, arize_body, load_average, print_table, say
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.incidents.models import page_dedup_key
from agent.store.db import make_engine
from audit.models import AuditEvent
from sandbox.aws import demo_log_lines, seed_log_lines
from sandbox.stack import CHAT_MODEL, EMBEDDING_MODEL, SandboxStack

FINISHED = ("completed", "failed", "skipped")
INCIDENT_TIMEOUT = 60.0


class TimedList(list[dict[str, Any]]):
    """A list that notes the wall-clock time of each append: when an emulator stored an item."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: dict[str, Any], /) -> None:
        """Store the item and the time it arrived."""
        self.times.append(time.time())
        super().append(item)

    def timed(self) -> list[tuple[float, dict[str, Any]]]:
        """Return (time, item) pairs; safe while the emulator is still appending."""
        items = list(self)  # times are noted first, so there are at least as many
        return list(zip(self.times[: len(items)], items, strict=True))


@dataclass
class World:
    """The running sandbox, the environment that points the service at it, and the timed lists."""

    stack: SandboxStack
    env: dict[str, str]
    pages: TimedList
    messages: TimedList
    breach_time: datetime


def start_world(workdir: Path) -> World:
    """Start every emulator with the demo's story: the vector index answers wrongly."""
    stack = SandboxStack(workdir)
    pages, messages = TimedList(), TimedList()
    stack.pagerduty.accepted = pages
    stack.slack.messages = messages
    stack.start()
    try:
        catalog = stack.write_catalog(workdir / "services.yaml")
        stack.vectordb.corrupt_index = True
        breach_time = datetime.now(UTC) - timedelta(minutes=1)
        sample = json.loads(arize_body(0))
        lines = demo_log_lines(sample["model_id"], sample["model_version"], breach_time)
        seed_log_lines(stack.aws_url, stack.log_group, "gateway-1", lines)
    except BaseException:
        stack.stop()
        raise
    env = {
        **stack.service_env(),
        **stack.catalog_env(),
        "REMEDIATOR_CATALOG_FILE": str(catalog.resolve()),
        "REMEDIATOR_GROUP_WAIT_SECONDS": "0",
    }
    return World(stack, env, pages, messages, breach_time)


def audit_events(engine: Engine, kind: str, **where: uuid.UUID) -> list[AuditEvent]:
    """Return the audit events of one kind, oldest first, optionally of one incident or alert."""
    query = select(AuditEvent).where(AuditEvent.kind == kind)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    with Session(engine) as session:
        return list(session.exec(query.order_by(col(AuditEvent.seq))).all())


def wait_processed(service: Service, alert_id: str) -> dict[str, Any]:
    """Poll GET /alerts/{id} until its incident's run is over (bounded by INCIDENT_TIMEOUT)."""
    deadline = time.monotonic() + INCIDENT_TIMEOUT
    while True:
        alert: dict[str, Any] = httpx.get(
            f"{service.url}/alerts/{alert_id}", headers=service.headers, timeout=5
        ).json()
        if alert["state"] == "failed" or (
            alert["state"] == "done" and alert["incident_run_state"] in FINISHED
        ):
            return alert
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"alert {alert_id} not processed in {INCIDENT_TIMEOUT:.0f}s: {alert}"
            )
        time.sleep(0.02)


def paged_incident(event: dict[str, Any]) -> str:
    """Return the id of the incident whose page this PagerDuty event is.

    Each team paged has its own key under the incident's (remediator/incident/<id>/<team>); an
    incident whose page joins its cause's alert triggers on the cause's key, and says which
    incident it is in its custom details.
    """
    details = (event.get("payload") or {}).get("custom_details") or {}
    if details.get("incident_id"):
        return str(details["incident_id"])
    nobody = uuid.UUID(int=0)
    prefix = page_dedup_key(nobody).removesuffix(str(nobody))  # "remediator/incident/"
    return str(event["dedup_key"]).removeprefix(prefix).split("/")[0]


@dataclass
class Measure:
    """One incident: time to page and its slowest probe, in milliseconds."""

    page_ms: float
    slowest_ms: float
    slowest: str

    def within(self) -> bool:
        """Tell whether the page came within 1.2 x the slowest probe + 100 ms."""
        return self.page_ms <= 1.2 * self.slowest_ms + 100


def measure_one(service: Service, world: World, engine: Engine, seq: int) -> Measure:
    """Send one alert that opens an incident and time its page."""
    body = arize_body(seq, monitor=f"mon-ttp-{seq}", triggered_at=world.breach_time)
    answer = httpx.post(
        f"{service.url}/webhooks/arize", content=body, headers=service.headers, timeout=10
    )
    if answer.status_code != 202:
        raise RuntimeError(f"alert refused: {answer.status_code} {answer.text}")
    alert = wait_processed(service, answer.json()["alert_id"])
    if not alert["incident_id"]:
        raise RuntimeError(f"the alert opened no incident: {alert}")
    incident_id = uuid.UUID(alert["incident_id"])
    [received] = audit_events(engine, "alert.received", alert_id=uuid.UUID(alert["id"]))
    paged = [
        t
        for t, event in world.pages.timed()
        if event["event_action"] == "trigger" and paged_incident(event) == str(incident_id)
    ]
    if not paged:
        raise RuntimeError(
            f"incident {incident_id} was not paged (run {alert['incident_run_state']})"
        )
    probes = [
        json.loads(e.data) for e in audit_events(engine, "probe.completed", incident_id=incident_id)
    ]
    slowest = max(probes, key=lambda p: float(p.get("latency_ms") or 0))
    return Measure(
        page_ms=(paged[0] - received.ts.timestamp()) * 1000,
        slowest_ms=float(slowest.get("latency_ms") or 0),
        slowest=str(slowest["tool"]),
    )


def run(
    incidents: int = 10,
    vector_delay: float = 0.15,
    embeddings_latency: float = 0.25,
    endpoint_latency: float = 0.2,
    poll: float = 0.05,
) -> list[Row]:
    """Time `incidents` pages and return the table's row."""
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder).resolve()
        world = start_world(workdir)
        try:
            world.stack.vectordb.delay_seconds = vector_delay
            world.stack.openai.models[EMBEDDING_MODEL].latency_seconds = embeddings_latency
            world.stack.openai.models[CHAT_MODEL].latency_seconds = endpoint_latency
            extra = {**world.env, "REMEDIATOR_WORKER_POLL_SECONDS": str(poll)}
            say(
                "time-to-page",
                f"fixed latencies: vector DB {vector_delay:g} s/request, embeddings "
                f"{embeddings_latency:g} s, endpoint {endpoint_latency:g} s/prompt; "
                f"worker poll {poll:g} s",
            )
            with Service(workdir, worker=True, extra_env=extra).wait_ready("/readyz") as service:
                engine = make_engine(service.database_url)
                measures = []
                for seq in range(incidents):
                    measure = measure_one(service, world, engine, seq)
                    say(
                        "time-to-page",
                        f"incident {seq + 1}: paged in {measure.page_ms:.0f} ms, slowest probe "
                        f"{measure.slowest} {measure.slowest_ms:.0f} ms",
                    )
                    measures.append(measure)
                engine.dispose()
        finally:
            world.stack.stop()
    pages = [m.page_ms for m in measures]
    slowest = [m.slowest_ms for m in measures]
    overhead = max(m.page_ms - m.slowest_ms for m in measures)
    within = sum(1 for m in measures if m.within())
    return [
        (
            f"time to page ({incidents} incidents, LLM off)",
            f"median {statistics.median(pages):.0f} ms, max {max(pages):.0f} ms "
            f"(first, cold: {pages[0]:.0f} ms)",
            "<= 1.2x slowest probe + 100 ms",
            f"slowest probe median {statistics.median(slowest):.0f} ms, max {max(slowest):.0f} ms;"
            f" worst overhead {overhead:.0f} ms; {within}/{incidents} within",
            "PASS" if within == incidents else "MISS",
        )
    ]


def main() -> None:
    """Run the time-to-page benchmark and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10, help="incidents, one at a time")
    parser.add_argument("--vector-delay", type=float, default=0.15, help="s per vector DB request")
    parser.add_argument(
        "--embeddings-latency", type=float, default=0.25, help="s per embeddings request"
    )
    parser.add_argument("--endpoint-latency", type=float, default=0.2, help="s per chat prompt")
    parser.add_argument("--poll", type=float, default=0.05, help="idle worker's poll interval")
    args = parser.parse_args()
    rows = run(
        args.incidents, args.vector_delay, args.embeddings_latency, args.endpoint_latency, args.poll
    )
    print(load_average())
    print_table(rows)


if __name__ == "__main__":
    main()
