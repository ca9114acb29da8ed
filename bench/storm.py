"""Benchmark: an alert storm, --alerts alerts over --fingerprints fingerprints within --seconds.

The sandbox plays the demo's world (the vector index answers wrongly: every incident pages the
vector DB's owner and posts to Slack). `remediator serve` runs with its worker on its defaults
(group wait 0, idle poll 0.5 s) on SQLite. The bench offers the alerts at an even pace over
--seconds on 16 keep-alive connections, alert i from monitor i mod F (F fingerprints), each body
distinct; then waits, bounded by --drain-timeout, until every alert is processed and every
investigation is over. It checks, against the service's database and the emulators:
- exactly F investigations (`runbook.matched` audit events);
- at most F PagerDuty triggers, counting triggers and distinct dedup keys;
- Slack at most one message per second per channel once its burst allowance is spent, and no
  message given up (`notification.failed`); the bench wraps the emulator's list to time each;
- nothing lost: every alert answered 202 has its row and it is `done`;
- peak RSS of the service (VmHWM from /proc, summed over `serve` and any process it started) at
  most 300 MB, beside its idle RSS;
- per incident, the time from its first alert (`received_at`) to its PagerDuty trigger: p50, p95
  and max, against the time to page of a lone incident measured first in the same run. Target:
  p95 at most 2x the lone time, or the floor PagerDuty's per-routing-key limit (120 events a
  minute) sets for the pages that share a key, if that is higher; the row says which bound held;
- Slack messages per channel in the storm's first minute (at most 20: beyond a rate of new
  incidents a channel gets one digest a minute instead of a message each).

The default world spreads the fingerprints over --teams services, each with a team of its own
(its own routing key and Slack channel, and its own vector DB owner: distinct causes);
--teams 0 plays the demo's single service. `serve` runs --loops worker loops (8), so the
incidents of the storm run side by side.

A second world, the shared cause (`run_shared_cause`): the same broken vector index behind
--shared-services services (default 5), each a copy of the demo service, 20 alerts each. It
checks one cause, one PagerDuty alert for it (every incident triggers on that alert), and one
Slack cause thread naming every service.

    .venv/bin/python bench/storm.py [--alerts 10000] [--fingerprints 100] [--seconds 60]
                                    [--teams 10]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml
from harness import LoadResult, Row, Service, arize_body, drive, load_average, print_table, say
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from time_to_page import (
    FINISHED,
    World,
    audit_events,
    measure_one,
    paged_incident,
    start_world,
)

from agent.alerts.models import Alert
from agent.causes.models import Cause
from agent.causes.service import cause_view
from agent.incidents.models import Incident
from agent.store.db import make_engine
from sandbox.evaluation.scenario import copy_shipped_runbooks
from sandbox.stack import DEMO_SERVICE

RSS_TARGET_MB = 300
CONNECTIONS = 16
PAGE_TARGET_RATIO = 2.0
PAGES_PER_KEY_MINUTE = 120
"""PagerDuty's Events v2 limit per routing key (REMEDIATOR_PAGERDUTY_EVENTS_PER_MINUTE)."""
SLACK_FIRST_MINUTE_TARGET = 20


def team_world(world: World, teams: int) -> list[str]:
    """Add `teams` services to the world's catalog, each with its own team, key and channel.

    Each is the demo service under another name, with only its endpoint and its vector DB (the
    canary finds the fault; logs, embeddings and failover are left out to keep the service's
    memory near the demo's), the vector DB owned by its own team: its incidents page that team's
    routing key and post to that team's channel. Return the services' model ids.
    """
    if teams <= 0:
        return []
    path = Path(world.env["REMEDIATOR_CATALOG_FILE"])
    catalog = yaml.safe_load(path.read_text())
    [template] = [spec for spec in catalog["services"].values() if spec.get("logs")][:1]
    models = []
    for n in range(teams):
        team, model, channel = f"storm-team-{n:02d}", f"storm-svc-{n:02d}", f"C0STORM{n:02d}"
        key_env = f"SANDBOX_PD_KEY_STORM_{n:02d}"
        routing_key = f"{n:02d}".ljust(32, "f")
        world.env[key_env] = routing_key
        assert world.stack.pagerduty.routing_keys is not None
        world.stack.pagerduty.routing_keys.add(routing_key)
        world.stack.slack.channels.add(channel)
        catalog["teams"][team] = {"pagerduty_routing_key_env": key_env, "slack_channel": channel}
        vector_db = dict(template["dependencies"]["vector_db"], owner=team)
        spec = {
            "models": [model],
            "team": team,
            "slack_channel": channel,
            "endpoint": copy.deepcopy(template["endpoint"]),
            "dependencies": {"vector_db": vector_db},
        }
        catalog["services"][model] = spec
        models.append(model)
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    return models


def storm_bodies(alerts: int, fingerprints: int, models: list[str], world: World) -> list[bytes]:
    """Return the storm: alert i from monitor i mod F, fingerprint f on service f mod teams."""
    bodies = []
    for i in range(alerts):
        fingerprint = i % fingerprints
        payload = json.loads(
            arize_body(i, monitor=f"mon-storm-{fingerprint:04d}", triggered_at=world.breach_time)
        )
        if models:
            payload["model_id"] = models[fingerprint % len(models)]
        bodies.append(json.dumps(payload).encode())
    return bodies


@dataclass
class Paging:
    """Per incident, from its first alert to its first PagerDuty trigger, in seconds."""

    lone_s: float
    lone: set[uuid.UUID]
    seconds: list[float]
    unpaged: int
    keys: int
    most_per_key: int

    def percentile(self, q: float) -> float:
        """Return the q-quantile of the times to page (nearest rank)."""
        ordered = sorted(self.seconds)
        return ordered[max(math.ceil(q * len(ordered)) - 1, 0)] if ordered else float("nan")

    def bound(self) -> tuple[float, str]:
        """Return the p95 target and which bound set it: 2x lone, or the per-key floor."""
        ratio = PAGE_TARGET_RATIO * self.lone_s
        # The page at the 95th rank of the busiest key waits for whole minutes of its key.
        rank = max(math.ceil(0.95 * self.most_per_key), 1)
        floor = self.lone_s + 60.0 * ((rank - 1) // PAGES_PER_KEY_MINUTE)
        if floor > ratio:
            return floor, f"per-key floor ({self.most_per_key} pages on one key)"
        return ratio, f"{PAGE_TARGET_RATIO:g}x lone"


def page_times(engine: Engine, world: World, lone_s: float, exclude: set[uuid.UUID]) -> Paging:
    """Time each incident's page from its first alert (both clocks: wall time on this machine)."""
    with Session(engine) as session:
        firsts = session.exec(
            select(Alert.incident_id, func.min(Alert.received_at))
            .where(col(Alert.incident_id).is_not(None))
            .group_by(col(Alert.incident_id))
        ).all()
    triggers = [(t, e) for t, e in world.pages.timed() if e.get("event_action") == "trigger"]
    # An incident's page is its own trigger: on its own dedup key, or on its cause's (a later
    # incident of a cause triggers on the cause's key, and names itself in its details).
    first_page: dict[str, float] = {}
    per_key: dict[str, int] = defaultdict(int)
    for moment, event in triggers:
        owner = paged_incident(event)
        first_page[owner] = min(first_page.get(owner, moment), moment)
        per_key[str(event.get("routing_key"))] += 1
    seconds, unpaged = [], 0
    for incident_id, received in firsts:
        if incident_id is None or incident_id in exclude:
            continue
        if str(incident_id) not in first_page:
            unpaged += 1
            continue
        seconds.append(first_page[str(incident_id)] - received.timestamp())
    return Paging(lone_s, exclude, seconds, unpaged, len(per_key), max(per_key.values(), default=0))


def forget_baseline(world: World) -> None:
    """Drop the lone incident's page and messages, so the storm's figures count only its own."""
    for timed in (world.pages, world.messages):
        del timed[:]
        timed.times.clear()
    with world.stack.slack.lock:
        world.stack.slack.calls.clear()


def first_minute_messages(world: World, start: float) -> tuple[int, int, int]:
    """Return, over channels, the most top-level messages and the most posts in the first minute,
    and how many channels got any."""
    top: dict[str, int] = defaultdict(int)
    posts: dict[str, int] = defaultdict(int)
    for moment, message in world.messages.timed():
        if start <= moment < start + 60.0:
            posts[message["channel"]] += 1
            if not message.get("thread_ts"):
                top[message["channel"]] += 1
    return max(top.values(), default=0), max(posts.values(), default=0), len(posts)


def drained(engine: Engine, accepted: int) -> bool:
    """Tell whether every accepted alert is processed and no investigation is pending or running."""
    with Session(engine) as session:
        rows = session.exec(select(func.count()).select_from(Alert)).one()
        waiting = session.exec(
            select(func.count()).where(col(Alert.state).not_in(("done", "failed")))
        ).one()
        running = session.exec(
            select(func.count()).where(col(Incident.run_state).not_in(FINISHED))
        ).one()
    return bool(rows >= accepted and waiting == 0 and running == 0)


def slack_pace(world: World) -> tuple[int, float, int]:
    """Return the messages, their rate once the burst is spent, and the most in any 1 s window."""
    by_channel: dict[str, list[float]] = defaultdict(list)
    for moment, message in world.messages.timed():
        by_channel[message["channel"]].append(moment)
    burst = world.stack.slack.burst
    worst_rate, worst_window = 0.0, 0
    for times in by_channel.values():
        times.sort()
        if len(times) > burst and times[-1] > times[0]:
            worst_rate = max(worst_rate, (len(times) - burst) / (times[-1] - times[0]))
        for i, start in enumerate(times):
            window = sum(1 for t in times[i:] if t < start + 1.0)
            worst_window = max(worst_window, window)
    return len(world.messages), worst_rate, worst_window


@dataclass
class Outcome:
    """What the storm left behind in the database and the emulators."""

    load: LoadResult
    drain_s: float | None
    idle_kb: int
    peak_kb: int
    investigations: int
    incidents: int
    lost: int
    not_done: int
    triggers: int
    dedup_keys: int
    slack_messages: int
    slack_rate: float
    slack_window: int
    slack_refused: int
    slack_failed: int
    first_page_s: float | None
    paging: Paging
    first_minute: tuple[int, int, int]
    cpu: tuple[float, float] = (0.0, 0.0)
    """CPU seconds over the storm: the service's, and this process's (emulators, load)."""


def inspect(
    engine: Engine,
    world: World,
    load: LoadResult,
    times: tuple[float, float | None],
    memory: tuple[int, int],
    paging: Paging,
) -> Outcome:
    """Count investigations, incidents, lost alerts, pages and Slack messages."""
    ids = {uuid.UUID(json.loads(body)["alert_id"]) for body in load.bodies if b"alert_id" in body}
    with Session(engine) as session:
        states = dict(session.exec(select(Alert.id, Alert.state)).all())
        incidents = session.exec(select(func.count()).select_from(Incident)).one() - len(
            paging.lone
        )
    triggers = [e for e in list(world.pages) if e.get("event_action") == "trigger"]
    calls = world.stack.slack.snapshot()["calls"]
    posts = sum(1 for call in calls if call["method"] == "chat.postMessage")
    messages, rate, window = slack_pace(world)
    first = min(
        (t for t, e in world.pages.timed() if e.get("event_action") == "trigger"), default=None
    )
    wall_start, drain_s = times
    return Outcome(
        load=load,
        drain_s=drain_s,
        idle_kb=memory[0],
        peak_kb=memory[1],
        investigations=sum(
            1 for e in audit_events(engine, "runbook.matched") if e.incident_id not in paging.lone
        ),
        incidents=int(incidents),
        lost=sum(1 for i in ids if i not in states),
        not_done=sum(1 for i in ids if i in states and states[i] != "done"),
        triggers=len(triggers),
        dedup_keys=len({e["dedup_key"] for e in triggers}),
        slack_messages=messages,
        slack_rate=rate,
        slack_window=window,
        slack_refused=posts - messages,
        slack_failed=len(audit_events(engine, "notification.failed")),
        first_page_s=None if first is None else first - wall_start,
        paging=paging,
        first_minute=first_minute_messages(world, wall_start),
    )


def run(
    alerts: int = 10_000,
    fingerprints: int = 100,
    seconds: float = 60.0,
    drain_timeout: float = 900,
    teams: int = 10,
    loops: int = 8,
) -> list[Row]:
    """Play the storm and return the table's rows."""
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder).resolve()
        world = start_world(workdir)
        try:
            models = team_world(world, teams)
            world.env["REMEDIATOR_SERVE_WORKER_LOOPS"] = str(loops)
            with Service(workdir, worker=True, extra_env=world.env).wait_ready(
                "/readyz"
            ) as service:
                idle_kb = service.memory_kb("VmRSS")
                engine = make_engine(service.database_url)
                # The baseline: one incident alone, in the same service and world, just before.
                lone = measure_one(service, world, engine, alerts + 1)
                lone_ids = set(session_incidents(engine))
                forget_baseline(world)
                say("storm", f"lone incident paged in {lone.page_ms:.0f} ms")
                bodies = storm_bodies(alerts, fingerprints, models, world)
                cpu_before = (service.cpu_seconds(), harness_cpu_seconds())
                started, wall_start = time.monotonic(), time.time()
                load = drive(
                    service.url,
                    "/webhooks/arize",
                    service.headers,
                    bodies,
                    connections=CONNECTIONS,
                    over_seconds=seconds,
                    keep_bodies=True,
                )
                say("storm", f"{alerts:,} alerts sent in {load.seconds:.1f}s; {load.statuses}")
                drain_s = None
                while time.monotonic() - started < drain_timeout:
                    if drained(engine, load.statuses[202]):
                        drain_s = time.monotonic() - started
                        break
                    time.sleep(0.5)
                say("storm", f"drained in {drain_s:.1f}s" if drain_s else "not drained in time")
                cpu = (
                    service.cpu_seconds() - cpu_before[0],
                    harness_cpu_seconds() - cpu_before[1],
                )
                memory = (idle_kb, service.memory_kb("VmHWM"))
                paging = page_times(engine, world, lone.page_ms / 1000, lone_ids)
                outcome = inspect(engine, world, load, (wall_start, drain_s), memory, paging)
                outcome.cpu = cpu
                engine.dispose()
        finally:
            world.stack.stop()
    return rows(outcome, alerts, fingerprints, seconds)


def harness_cpu_seconds() -> float:
    """Return the CPU time this process has used: the emulators, the load and the bench."""
    times = os.times()
    return times.user + times.system


def session_incidents(engine: Engine) -> list[uuid.UUID]:
    """Return every incident's id (those opened before the storm are left out of its figures)."""
    with Session(engine) as session:
        return list(session.exec(select(Incident.id)).all())


def paging_rows(o: Outcome, fingerprints: int) -> list[Row]:
    """The time-to-page and first-minute Slack rows (issue 18)."""
    p = o.paging
    bound, which = p.bound()
    p95 = p.percentile(0.95)
    lone = p.lone_s or float("nan")
    top, posts, channels = o.first_minute
    service_cpu, sandbox_cpu = o.cpu
    n, cpus = max(len(p.seconds), 1), os.cpu_count() or 1
    return [
        (
            "storm time to page (first alert -> trigger)",
            f"p50 {p.percentile(0.5):.2f}s ({p.percentile(0.5) / lone:.1f}x), "
            f"p95 {p95:.2f}s ({p95 / lone:.1f}x), max {max(p.seconds, default=float('nan')):.2f}s "
            f"({max(p.seconds, default=float('nan')) / lone:.1f}x)",
            f"p95 <= {bound:.2f}s: {which}",
            f"lone incident {p.lone_s:.2f}s (same run); {len(p.seconds)} paged, {p.unpaged} not; "
            f"{p.keys} routing keys, at most {p.most_per_key} pages on one",
            "PASS"
            if p95 <= bound and p.unpaged == 0 and len(p.seconds) == fingerprints
            else "MISS",
        ),
        (
            "storm CPU per incident (what bounds its time to page)",
            f"service {1000 * service_cpu / n:.0f} ms, sandbox {1000 * sandbox_cpu / n:.0f} ms "
            "of CPU per incident",
            "no target",
            f"{service_cpu:.1f}s + {sandbox_cpu:.1f}s CPU over the storm for {n} incidents and "
            f"{o.load.statuses[202]:,} alerts: at least {(service_cpu + sandbox_cpu) / cpus:.1f}s "
            f"of work on {cpus} CPUs",
            "info",
        ),
        (
            "storm Slack messages per channel, first minute",
            f"at most {top} top-level ({posts} posts with thread replies) in one channel",
            f"<= {SLACK_FIRST_MINUTE_TARGET}",
            f"{channels} channels; {o.incidents} incidents; beyond the digest rate a channel gets "
            "one digest a minute, edited in place",
            "PASS" if top <= SLACK_FIRST_MINUTE_TARGET else "MISS",
        ),
    ]


def rows(o: Outcome, alerts: int, fingerprints: int, seconds: float) -> list[Row]:
    """Turn the storm's outcome into table rows."""
    accepted = o.load.statuses[202]
    trouble = o.load.problems(202)
    late = f", over the {seconds:g}s asked" if o.load.seconds > seconds * 1.05 else ""
    drain = "not drained in time: counts are partial" if o.drain_s is None else ""
    size = f"{alerts:,} alerts / {fingerprints} fingerprints"
    return [
        (
            f"storm investigations ({size})",
            f"{o.investigations} runbook.matched",
            f"exactly {fingerprints}",
            f"{fingerprints} fingerprints sent; {o.incidents} incidents opened"
            + (f"; {drain}" if drain else ""),
            "PASS" if o.investigations == fingerprints and not drain else "MISS",
        ),
        (
            "storm PagerDuty triggers",
            f"{o.triggers} triggers, {o.dedup_keys} distinct dedup keys",
            f"<= {fingerprints}",
            f"{o.investigations} investigations",
            "PASS" if o.triggers <= fingerprints and o.dedup_keys <= fingerprints else "MISS",
        ),
        (
            "storm Slack pace (per channel)",
            f"{o.slack_rate:.2f} msg/s after the burst, peak {o.slack_window} in 1 s",
            "<= 1 msg/s, none given up",
            f"{o.slack_messages} messages for {o.incidents} incidents; {o.slack_refused} "
            f"answered 429; {o.slack_failed} notification.failed",
            "PASS" if o.slack_rate <= 1.01 and o.slack_failed == 0 else "MISS",
        ),
        (
            "storm lost alerts",
            f"{o.lost} lost, {o.not_done} not done of {accepted:,} accepted (202)",
            "0 lost",
            f"{alerts:,} sent in {o.load.seconds:.1f}s{late}"
            + (f" [{trouble}]" if trouble else ""),
            "PASS" if o.lost == 0 and o.not_done == 0 and accepted == alerts else "MISS",
        ),
        (
            "storm peak RSS (service, all processes)",
            f"{o.peak_kb / 1024:.0f} MB (VmHWM)",
            f"<= {RSS_TARGET_MB} MB",
            f"idle after start {o.idle_kb / 1024:.0f} MB; peak {o.peak_kb / o.idle_kb:.2f}x",
            "PASS" if o.peak_kb / 1024 <= RSS_TARGET_MB else "MISS",
        ),
        (
            "storm drain time",
            ("not drained" if o.drain_s is None else f"{o.drain_s:.1f}s to process everything")
            + ("; no page" if o.first_page_s is None else f"; first page at {o.first_page_s:.1f}s"),
            "no target",
            f"alerts offered over {seconds:g}s, sent in {o.load.seconds:.1f}s; "
            f"ack p50 {o.load.percentile_ms(0.5):.0f} ms, p99 {o.load.percentile_ms(0.99):.0f} ms",
            "info",
        ),
        *paging_rows(o, fingerprints),
    ]


# The second world: one dependency down behind N services (a shared cause).

SHARED_SERVICES = 5


@dataclass
class SharedCause:
    """What the shared-cause world left behind: incidents, causes, alerts and cause threads."""

    services: list[str]
    incidents: int
    drained: bool
    causes: int
    alerts_per_cause: list[int]
    triggers: int
    threads: int
    named: int
    """How many of the services the cause thread names (as last edited)."""
    alerts: int
    """Every PagerDuty alert the emulator holds, whatever its dedup key."""


def shared_cause_catalog(world: World, names: list[str], path: Path) -> Path:
    """Write the world's catalog with `names`, each a copy of the demo service (its vector DB)."""
    catalog = Path(world.env["REMEDIATOR_CATALOG_FILE"])
    data = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    demo = data["services"].pop(DEMO_SERVICE)
    for name in names:
        data["services"][name] = {**copy.deepcopy(demo), "models": [name]}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def shared_cause_bodies(world: World, names: list[str], per_service: int) -> list[bytes]:
    """Return `per_service` distinct alerts of each service, interleaved."""
    bodies = []
    for i in range(per_service * len(names)):
        name = names[i % len(names)]
        payload = json.loads(arize_body(i, monitor=f"mon-{name}", triggered_at=world.breach_time))
        payload["model_id"] = name
        bodies.append(json.dumps(payload).encode())
    return bodies


def inspect_shared_cause(engine: Engine, world: World, names: list[str], done: bool) -> SharedCause:
    """Count the causes, the PagerDuty alerts of each, and the Slack cause threads."""
    with Session(engine) as session:
        causes = session.exec(select(Cause)).all()
        incidents = session.exec(select(func.count()).select_from(Incident)).one()
    alerts = world.stack.pagerduty.snapshot()["alerts"]
    messages = world.stack.slack.snapshot()["messages"]
    sent = [cause_view(engine, c.id) for c in causes]
    threads = [m for v in sent for m in messages if v and v.slack_ts and m["ts"] == v.slack_ts]
    text = "\n".join(f"{m['text']} {json.dumps(m.get('blocks'))}" for m in threads)
    triggers = [e for e in list(world.pages) if e.get("event_action") == "trigger"]
    return SharedCause(
        services=names,
        incidents=int(incidents),
        drained=done,
        causes=len(causes),
        alerts_per_cause=[sum(1 for a in alerts if a["dedup_key"] == c.dedup_key) for c in causes],
        triggers=len(triggers),
        threads=len(threads),
        named=sum(1 for name in names if name in text),
        alerts=len(alerts),
    )


def run_shared_cause(
    services: int = SHARED_SERVICES,
    per_service: int = 20,
    seconds: float = 5.0,
    drain_timeout: float = 300,
) -> list[Row]:
    """Play the shared-cause world: the vector index answers wrongly behind `services` services."""
    names = [f"shared-{i:02d}" for i in range(1, services + 1)]
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder).resolve()
        world = start_world(workdir)
        try:
            catalog = shared_cause_catalog(world, names, workdir / "shared.yaml")
            runbooks = copy_shipped_runbooks(workdir / "runbooks", catalog)
            env = {
                **world.env,
                "REMEDIATOR_CATALOG_FILE": str(catalog),
                "REMEDIATOR_RUNBOOKS_DIR": str(runbooks),
            }
            with Service(workdir, worker=True, extra_env=env).wait_ready("/readyz") as service:
                bodies = shared_cause_bodies(world, names, per_service)
                started = time.monotonic()
                load = drive(
                    service.url,
                    "/webhooks/arize",
                    service.headers,
                    bodies,
                    connections=CONNECTIONS,
                    over_seconds=seconds,
                )
                say("shared", f"{len(bodies):,} alerts of {services} services; {load.statuses}")
                engine = make_engine(service.database_url)
                done = False
                while not done and time.monotonic() - started < drain_timeout:
                    done = drained(engine, load.statuses[202])
                    time.sleep(0.5)
                outcome = inspect_shared_cause(engine, world, names, done)
                engine.dispose()
        finally:
            world.stack.stop()
    return shared_cause_rows(outcome)


def shared_cause_rows(o: SharedCause) -> list[Row]:
    """Turn the shared-cause world's outcome into table rows."""
    n = len(o.services)
    partial = "" if o.drained else "; not drained in time: counts are partial"
    one_each = o.causes == 1 and o.alerts_per_cause == [1] and o.alerts == 1
    return [
        (
            f"shared cause: PagerDuty alerts per cause ({n} services, one vector DB)",
            f"{o.alerts_per_cause or [0]} alert(s) per cause; {o.causes} cause(s)",
            "1 alert for 1 cause",
            f"{o.incidents} incidents; {o.triggers} triggers on {o.alerts} alert(s) in all "
            f"(one page each without causes: {o.incidents}){partial}",
            "PASS" if one_each and o.drained else "MISS",
        ),
        (
            "shared cause: Slack cause threads",
            f"{o.threads} thread(s), naming {o.named} of {n} services",
            f"1 thread naming all {n}",
            f"{o.incidents} incident threads beside it",
            "PASS" if o.threads == 1 and o.named == n and o.drained else "MISS",
        ),
    ]


def main() -> None:
    """Run the storm benchmark and print its table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000, help="alerts in the storm")
    parser.add_argument("--fingerprints", type=int, default=100, help="distinct fingerprints")
    parser.add_argument("--seconds", type=float, default=60.0, help="offer them over this long")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="give up after this")
    parser.add_argument(
        "--teams", type=int, default=10, help="services with a team, key and channel each (0: one)"
    )
    parser.add_argument(
        "--loops", type=int, default=8, help="worker loops of `serve` (its WORKER_LOOPS)"
    )
    parser.add_argument(
        "--shared-services",
        type=int,
        default=SHARED_SERVICES,
        help="the shared-cause world: services behind the one broken vector DB (>= 5)",
    )
    args = parser.parse_args()
    result = run(
        args.alerts, args.fingerprints, args.seconds, args.drain_timeout, args.teams, args.loops
    )
    result += run_shared_cause(args.shared_services)
    print(load_average())
    print_table(result)


if __name__ == "__main__":
    main()
