"""One page per cause: which incidents share a cause, and what the owner and the channel see.

The rule's fields one by one (`cause_identity`), the window and the links in the database
(`link_incident`, with its audit event), two workers reaching one cause at the same moment, the
resolution of a cause page, and the whole run end to end against the PagerDuty and Slack
emulators: one dependency down behind five services pages its owner once.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.causes.models import Cause, CauseLink
from agent.causes.service import (
    CauseIdentity,
    Linked,
    Resolution,
    _link_once,
    cause_identity,
    cause_view,
    link_incident,
    resolve_for_incident,
)
from agent.graph.actions import page
from agent.graph.runner import GraphRunner
from agent.incidents.models import Incident, IncidentStatus
from agent.store.audit_log import AuditLog
from agent.store.db import make_engine, session_scope, upgrade
from audit.models import AuditEvent
from runbooks.catalog import Catalog
from sandbox.stack import DEMO_SERVICE, SandboxStack
from tests.agent.test_worker import Clock, Parts
from tests.conftest import make_settings, sandbox_overrides
from tests.outbox import empty_outbox

KEY = b"causes-test-key-0123456789abcdef"
T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
DEGRADED = {"kind": "dependency_degraded", "dependencies": ["vector_db"], "conflicting": False}


def qdrant(
    collection: str, owner: str = "search-platform", url: str = "http://qdrant:6333"
) -> dict[str, Any]:
    return {"kind": "qdrant", "url": url, "collection": collection, "owner": owner}


def catalog() -> Catalog:
    embeddings = {"base_url": "http://emb/v1", "model": "emb-3", "owner": "ml-platform"}
    services = {
        "chatbot": {"vector_db": qdrant("articles"), "embeddings": embeddings},
        "help-desk": {"vector_db": qdrant("articles"), "embeddings": embeddings},
        "trailing": {"vector_db": qdrant("articles", url="http://qdrant:6333/")},
        "other-collection": {"vector_db": qdrant("tickets")},
        "other-region": {"vector_db": qdrant("articles", url="http://qdrant.us:6333")},
        "other-owner": {"vector_db": qdrant("articles", owner="data-team")},
        "same-owner-embeddings": {
            "embeddings": {**embeddings, "owner": "search-platform"},
        },
    }
    return Catalog.model_validate(
        {
            "teams": {
                t: {} for t in ("assistant-team", "search-platform", "ml-platform", "data-team")
            },
            "services": {
                name: {"models": [name], "team": "assistant-team", "dependencies": deps}
                for name, deps in services.items()
            },
        }
    )


def identity(service: str, team: str = "search-platform", **diagnosis: Any) -> CauseIdentity | None:
    component = diagnosis.pop("component", "vector_db")
    return cause_identity(catalog(), service, {**DEGRADED, **diagnosis}, team, component)


# The rule, field by field


def test_the_same_diagnosis_on_the_same_dependency_and_owner_is_one_cause() -> None:
    chatbot, help_desk = identity("chatbot"), identity("help-desk")
    assert chatbot is not None and help_desk is not None
    assert chatbot.key == help_desk.key
    # A URL written with a trailing '/' is the same server.
    trailing = identity("trailing")
    assert trailing is not None and trailing.key == chatbot.key
    assert chatbot.fields == {
        "diagnosis": "dependency_degraded",
        "owner": "search-platform",
        "dependencies": [
            {
                "name": "vector_db",
                "kind": "qdrant",
                "url": "http://qdrant:6333",
                "collection": "articles",
            }
        ],
    }


@pytest.mark.parametrize(
    ("service", "team", "component"),
    [
        ("other-collection", "search-platform", "vector_db"),  # same kind, another collection
        ("other-region", "search-platform", "vector_db"),  # same collection, another server
        ("other-owner", "data-team", "vector_db"),  # the same store, another owner
        ("same-owner-embeddings", "search-platform", "embeddings"),  # same owner, other dependency
        ("chatbot", "search-platform", "vector_db, embeddings"),  # more than the one dependency
    ],
)
def test_each_differing_field_is_another_cause(service: str, team: str, component: str) -> None:
    base = identity("chatbot")
    other = identity(service, team, component=component)
    assert base is not None
    # Either no cause at all (the team does not own all of it) or a cause of its own.
    assert other is None or other.key != base.key


def test_another_diagnosis_or_an_unclear_one_never_forms_a_cause() -> None:
    assert identity("chatbot", kind="suspect_change") is None
    assert identity("chatbot", kind="endpoint_isolated") is None
    assert identity("chatbot", kind="no_fault_found") is None
    assert identity("chatbot", conflicting=True) is None


def test_a_page_that_is_not_the_dependency_owners_forms_no_cause() -> None:
    assert identity("chatbot", team="assistant-team") is None  # the service's own team
    assert identity("chatbot", component="") is None
    assert identity("not-catalogued") is None
    assert cause_identity(None, "chatbot", DEGRADED, "search-platform", "vector_db") is None


# Links in the database


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'causes.db'}")
    upgrade(engine)
    return engine


def new_incident(engine: Engine, opened_at: datetime = T0, service: str = "chatbot") -> uuid.UUID:
    incident = Incident(
        fingerprint=uuid.uuid4().hex,
        title=f"breach on {service}",
        monitor_key=f"mon-{service}",
        service=service,
        opened_at=opened_at,
    )
    with session_scope(engine) as session:
        session.add(incident)
    return incident.id


def link(
    engine: Engine, incident: uuid.UUID, service: str = "chatbot", who: CauseIdentity | None = None
) -> Linked:
    found = who or identity(service)
    assert found is not None
    return link_incident(
        engine,
        AuditLog(key=KEY),
        identity=found,
        incident_id=incident,
        service=service,
        window=WINDOW,
        now=lambda: T0,
    )


def audit_events(engine: Engine, kind: str) -> list[tuple[uuid.UUID | None, dict[str, Any]]]:
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.kind == kind).order_by(col(AuditEvent.seq))
        ).all()
    return [(row.incident_id, json.loads(row.data)) for row in rows]


def test_incidents_within_the_window_share_a_cause_and_the_audit_says_why(engine: Engine) -> None:
    first, second = (
        new_incident(engine),
        new_incident(engine, T0 + timedelta(minutes=4), "help-desk"),
    )

    a = link(engine, first)
    b = link(engine, second, "help-desk")

    assert a.cause_id == b.cause_id and a.dedup_key == b.dedup_key
    assert (a.created, b.created) == (True, False)
    assert b.services == ["chatbot", "help-desk"]
    [(opened_for, opened), (joined_for, joined)] = audit_events(engine, "cause.linked")
    assert (opened_for, joined_for) == (first, second)
    assert opened["created"] is True and joined["created"] is False
    assert "this incident opens one" in opened["why"]
    assert joined["cause_id"] == str(a.cause_id)
    assert joined["first_incident"] == str(first)
    assert joined["matched"] == identity("chatbot").fields  # type: ignore[union-attr]
    assert "same diagnosis, same owner, same dependency" in joined["why"]
    assert "opened 240 s" in joined["why"]


def test_an_incident_outside_the_window_opens_a_new_cause(engine: Engine) -> None:
    first, late = new_incident(engine), new_incident(engine, T0 + WINDOW + timedelta(seconds=1))

    a, b = link(engine, first), link(engine, late)

    assert a.cause_id != b.cause_id and a.dedup_key != b.dedup_key
    with Session(engine) as session:
        causes = session.exec(select(Cause)).all()
    assert len(causes) == 2
    assert [c.accepting_key is not None for c in sorted(causes, key=lambda c: c.created_at)] in (
        [False, True],
        [True, False],
    )
    assert sum(c.accepting_key is not None for c in causes) == 1


def test_different_causes_are_never_merged(engine: Engine) -> None:
    incidents = {
        name: new_incident(engine, service=name)
        for name in ("chatbot", "other-collection", "other-owner")
    }
    teams = {
        "chatbot": "search-platform",
        "other-collection": "search-platform",
        "other-owner": "data-team",
    }

    causes = {
        name: link(engine, incident, name, identity(name, teams[name])).cause_id
        for name, incident in incidents.items()
    }

    assert len(set(causes.values())) == 3


def test_a_resumed_run_finds_its_link_and_records_nothing_new(engine: Engine) -> None:
    first = new_incident(engine)
    made = link(engine, first)

    again = link(engine, first)

    assert again.cause_id == made.cause_id and again.new is False and again.created is True
    assert len(audit_events(engine, "cause.linked")) == 1
    with Session(engine) as session:
        assert len(session.exec(select(CauseLink)).all()) == 1


def test_the_cause_page_resolves_only_with_its_last_incident(engine: Engine) -> None:
    first, second = new_incident(engine), new_incident(engine, service="help-desk")
    made = link(engine, first)
    link(engine, second, "help-desk")
    audit = AuditLog(key=KEY)

    def resolve(incident: uuid.UUID) -> Resolution | None:
        with session_scope(engine) as session:
            row = session.get(Incident, incident)
            assert row is not None
            row.status = IncidentStatus.resolved
            session.add(row)
        return resolve_for_incident(
            engine, audit, dedup_key=made.dedup_key, incident_id=incident, now=lambda: T0
        )

    held = resolve(first)
    assert held is not None and held.resolve is False and held.breaching == ["help-desk"]
    done = resolve(second)
    assert done is not None and done.resolve is True
    repeated = resolve(second)  # a resumed follow-up
    assert repeated is not None and repeated.resolve is True
    assert len(audit_events(engine, "cause.held")) == 1
    assert len(audit_events(engine, "cause.resolved")) == 1
    assert (
        resolve_for_incident(
            engine, audit, dedup_key="remediator/incident/x", incident_id=first, now=lambda: T0
        )
        is None
    )


# Two workers at the same moment


def race(engine_for: Callable[[], Engine], count: int = 2) -> list[uuid.UUID]:
    """Link `count` incidents of one cause from `count` threads released together."""
    setup = engine_for()
    incidents = [new_incident(setup, service=f"svc-{i}") for i in range(count)]
    barrier = threading.Barrier(count)
    found: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def work(incident: uuid.UUID) -> None:
        engine = engine_for()
        try:
            barrier.wait()
            found.append(link(engine, incident, "chatbot").cause_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work, args=(i,)) for i in incidents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return found


def one_cause_with_links(engine: Engine, count: int) -> None:
    with Session(engine) as session:
        causes = session.exec(select(Cause)).all()
        links = session.exec(select(CauseLink)).all()
    assert len(causes) == 1 and len(links) == count


def test_two_workers_reaching_one_cause_at_once_make_one_cause_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    upgrade(make_engine(url))

    found = race(lambda: make_engine(url), count=4)

    assert len(set(found)) == 1
    one_cause_with_links(make_engine(url), 4)


def test_a_worker_whose_insert_collides_joins_the_cause_of_the_other(tmp_path: Path) -> None:
    """The unique key decides: a second worker that found no cause waits on the first's insert,
    fails, and joins it (on SQLite the write lock serialises them before the read)."""
    url = f"sqlite:///{tmp_path / 'collide.db'}"
    engine = make_engine(url)
    upgrade(engine)
    collide(engine, lambda: make_engine(url))


def collide(engine: Engine, engine_for: Callable[[], Engine]) -> None:
    first, second = new_incident(engine), new_incident(engine, service="help-desk")
    who = identity("chatbot")
    assert who is not None
    joined: list[uuid.UUID] = []
    with session_scope(engine) as holding:
        made = _link_once(
            holding, AuditLog(key=KEY), who, first, "chatbot", WINDOW, lambda: T0, None
        )
        other = engine_for()
        worker = threading.Thread(
            target=lambda: joined.append(link(other, second, "help-desk").cause_id)
        )
        worker.start()
        worker.join(timeout=1)  # it waits for this transaction, whatever the database
        assert worker.is_alive()
    worker.join()
    assert joined == [made.cause_id]
    one_cause_with_links(engine, 2)


@pytest.mark.postgres
def test_two_workers_reaching_one_cause_at_once_make_one_cause_on_postgres(
    postgres_url: str,
) -> None:
    upgrade(make_engine(postgres_url))

    found = race(lambda: make_engine(postgres_url), count=4)

    assert len(set(found)) == 1
    one_cause_with_links(make_engine(postgres_url), 4)


@pytest.mark.postgres
def test_a_colliding_insert_on_postgres_joins_the_cause_of_the_other(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    upgrade(engine)
    collide(engine, lambda: make_engine(postgres_url))


# End to end: five services behind one vector DB, the PagerDuty and Slack emulators

SERVICES = ["chatbot", "help-desk", "rag-search", "billing-bot", "docs-qa"]
RUNBOOK = """\
name: shared-dependency
version: 1
description: Page the owner of whatever the service depends on and finds broken.
match: {metrics: [latency_p95, error_rate]}
probes:
  vector_db: {timeout_seconds: 10}
  embeddings: {timeout_seconds: 10}
  endpoint: {timeout_seconds: 30}
  changes: {timeout_seconds: 10}
actions:
  dependency_degraded:
    page: {severity: error}
  endpoint_isolated:
    page: {severity: error}
"""


def five_services(world: SandboxStack, tmp_path: Path) -> Parts:
    data = yaml.safe_load(Path(world.catalog_path).read_text())  # type: ignore[attr-defined]
    demo = data["services"].pop(DEMO_SERVICE)
    for name in SERVICES:
        data["services"][name] = {**copy.deepcopy(demo), "models": [name]}
    path = tmp_path / "five.yaml"
    path.write_text(yaml.safe_dump(data))
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "shared.yaml").write_text(RUNBOOK)
    settings = make_settings(
        tmp_path,
        **sandbox_overrides(world),
        catalog_file=path,
        runbooks_dir=runbooks,
        worker_lease_seconds=120,
    )
    return Parts(settings, Clock())


def alert(service: str, **changes: Any) -> dict[str, Any]:
    return {
        "monitor_id": f"mon-{service}",
        "monitor_name": f"{service} latency",
        "model_id": service,
        "dimensions": {},
        **changes,
    }


def send_outbox(parts: Parts, *, rounds: int = 200) -> None:
    """Be the worker's outbox sender until nothing waits: a busy channel's messages (the runs
    sent what the channel's burst allowed) go at its pace, on the test's clock."""
    empty_outbox(parts.engine, parts.audit, parts.context.tools.chat, parts.clock, rounds=rounds)


def search_platform_alerts(world: SandboxStack) -> list[dict[str, Any]]:
    key = world.team_keys["search-platform"]
    return [a for a in world.pagerduty.snapshot()["alerts"] if a["routing_key"] == key]


def test_one_dependency_down_behind_five_services_pages_its_owner_once(
    catalog_world: SandboxStack, tmp_path: Path
) -> None:
    world = catalog_world
    world.vectordb.fail_next(503, times=10_000)
    parts = five_services(world, tmp_path)

    for name in SERVICES:
        parts.accept(**alert(name))
    parts.drain()
    send_outbox(parts)

    # One alert for the owner; every incident's trigger went to it (its details added).
    [owner_alert] = search_platform_alerts(world)
    triggers = [
        t for t in world.pagerduty.triggers() if t["routing_key"] == owner_alert["routing_key"]
    ]
    assert len(triggers) == len(SERVICES)
    assert {t["dedup_key"] for t in triggers} == {owner_alert["dedup_key"]}
    assert sorted(triggers[-1]["payload"]["custom_details"]["affected_services"]) == sorted(
        SERVICES
    )
    with Session(parts.engine) as session:
        [cause] = session.exec(select(Cause).where(Cause.owner == "search-platform")).all()
        incidents = session.exec(select(Incident)).all()
    assert cause.dedup_key == owner_alert["dedup_key"]
    # One cause thread naming every service, edited in place; each incident's thread points to it.
    messages = world.slack.snapshot()["messages"]
    [thread] = [m for m in messages if m["text"].startswith("Cause:")]
    view = cause_view(parts.engine, cause.id)
    assert view is not None
    assert thread["thread_ts"] is None and thread["ts"] == view.slack_ts
    assert all(name in thread["text"] for name in SERVICES)
    assert thread.get("edited") is True
    assert any(call["method"] == "chat.update" for call in world.slack.calls)
    reports = [m for m in messages if "Diagnosis:" in m["text"] and m["thread_ts"] is None]
    assert len(reports) == len(SERVICES)
    pointing = [m for m in reports if str(cause.id) in json.dumps(m["blocks"])]
    assert len(pointing) >= len(SERVICES) - 1  # the first incident paged before anyone joined
    linked = audit_events(parts.engine, "cause.linked")
    assert sorted(str(i) for i, _ in linked) == sorted(str(i.id) for i in incidents)
    assert all(data["cause_id"] == str(cause.id) for _, data in linked)

    # A retried or resumed act pages on the same key: still one alert, no new link.
    runner = GraphRunner(parts.context, parts.checkpointer)
    state: Any = runner.state(incidents[-1].id)
    [item] = [i for i in state["plan"] if i["kind"] == "page" and i["team"] == "search-platform"]
    links = len(audit_events(parts.engine, "cause.linked"))
    again = page(parts.context, state, item)
    assert again["dedup_key"] == cause.dedup_key and again["status"] == "done"
    assert len(search_platform_alerts(world)) == 1
    assert len(audit_events(parts.engine, "cause.linked")) == links

    # Resolving: the page stays open while any linked service breaches, then resolves once.
    def resolves() -> list[str]:
        accepted = world.pagerduty.snapshot()["accepted"]
        return [e["dedup_key"] for e in accepted if e["event_action"] == "resolve"]

    for name in SERVICES[:-1]:
        parts.accept(**alert(name, status="Healthy"))
    parts.drain()
    assert cause.dedup_key not in resolves()
    assert search_platform_alerts(world)[0]["status"] == "triggered"
    parts.accept(**alert(SERVICES[-1], status="Healthy"))
    parts.drain()
    assert resolves().count(cause.dedup_key) == 1
    assert search_platform_alerts(world)[0]["status"] == "resolved"
    [thread] = [m for m in world.slack.snapshot()["messages"] if m["text"].startswith("Cause:")]
    assert "0 still breaching" in thread["text"] or "resolved" in thread["text"]
