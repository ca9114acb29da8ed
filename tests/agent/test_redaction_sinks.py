"""Secrets and PII planted everywhere an alert and the logs can carry them reach no sink.

One corpus (tests/secrets_corpus.py, 21 kinds) goes into every field of three alerts (Arize with a
catalogued model, Arize with every field dirty, Alertmanager), as keys and as values, as a card
sent as a JSON number, into the log lines the CloudWatch (moto) and Cloud Logging emulators
return, and into a model's answers. Then every sink is searched: each text column and the raw
bytes of the database (alerts, incidents, audit trail, graph checkpoints), what the process wrote
to stdout and stderr, what Slack and PagerDuty received, `remediator audit export` (md, json), the
review API and the review pages. Along the way, the mentions, links and HTML planted with the
corpus must arrive inert in Slack, PagerDuty, the Markdown export and the pages.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from agent.cli import app as cli
from sandbox.aws import seed_log_lines
from sandbox.openai_state import ToolCall
from sandbox.stack import CHAT_MODEL, DEMO_SERVICE, SandboxStack
from tests import secrets_corpus as corpus
from tests.agent.blockkit import texts as block_texts
from tests.conftest import RunningService, ServiceFactory, sandbox_overrides

pytestmark = pytest.mark.slow

VERSION = "2026-11-20"
VIEWER = secrets.token_urlsafe(24)
ANALYST_MODEL = "analyst-model"
HOSTILE = (
    "<!channel> <!here> <@U0EVIL> <!subteam^S0EVIL> <https://evil.example/x|click here> "
    "<script>alert(1)</script>"
)
LIVE = re.compile(r"<(?:!channel|!here|@U0EVIL|!subteam\^S0EVIL|https://evil\.example[^>]*)>")
RUNBOOK = """\
name: corpus
version: 1
description: "Logs, the endpoint and the analyst, then a page (every sink of a run)."
match: {metrics: [latency_p95], services: [support-bot]}
probes:
  logs: {timeout_seconds: 20}
  endpoint: {timeout_seconds: 20}
  changes: {timeout_seconds: 5}
diagnosis: {change_window_minutes: 60, min_error_lines: 1}
actions:
  dependency_degraded: {page: {severity: error}}
  endpoint_isolated: {page: {severity: error}}
  suspect_change: {page: {severity: error}}
  segment_only: {page: {severity: error}}
  no_fault_found: {page: {severity: error}}
failback: auto
analyst: {enabled: true, max_calls: 1}
"""


def plant_logs(world: SandboxStack, now: datetime) -> None:
    """Error lines full of the corpus in CloudWatch (moto) and in the Cloud Logging emulator."""
    lines = [
        (
            now - timedelta(minutes=3, seconds=i),
            json.dumps(
                {
                    "model": DEMO_SERVICE,
                    "version": VERSION,
                    "level": "ERROR",
                    "msg": f"upstream call failed: {text} {HOSTILE}",
                    kind_key: "as a key",
                }
            ),
        )
        for i, (kind_key, text) in enumerate(
            (corpus.EMAIL if i % 2 else corpus.OPENAI_KEY, text)
            for i, text in enumerate(corpus.texts())
        )
    ]
    lines.append(
        (now - timedelta(minutes=2), f"ERROR {DEMO_SERVICE} {VERSION} {corpus.sentence()}")
    )
    seed_log_lines(world.aws_url, world.log_group, "gw-corpus", lines)
    for i, planted in enumerate(corpus.texts()):
        world.gcp.add_entry(
            timestamp=now - timedelta(minutes=2, seconds=i),
            severity="ERROR",
            resource={"type": "k8s_container", "labels": {}},
            labels={"model_id": DEMO_SERVICE, "model_version": VERSION},
            json_payload={"message": f"request failed: {planted} {HOSTILE}", planted: "key"},
            http_request={
                "requestUrl": f"https://api.example/v1?token={corpus.BEARER_TOKEN}&who={corpus.EMAIL}",
                "latency": "9.5s",
                "status": 503,
            },
        )


def catalogued_alert(now: datetime) -> dict[str, Any]:
    """Secrets in every field but those that choose the catalogued service and its runbook."""
    return {
        "monitor_id": f"mon-{corpus.EMAIL}-{corpus.SLACK_TOKEN}",
        "monitor_name": f"p95 {corpus.OPENAI_KEY} {corpus.PHONE_US} {HOSTILE}",
        "status": "Triggered",
        "metric": "latency_p95",
        "threshold": 2000,
        "operator": f"> {corpus.SSN}",
        "current_value": corpus.CARD_AS_NUMBER,
        "model_id": DEMO_SERVICE,
        "model_version": VERSION,
        "environment": f"prod {corpus.IBAN}",
        "dimensions": {
            "region": "eu-west-1",
            corpus.GITHUB_TOKEN: corpus.STRIPE_KEY,
            "customer": corpus.sentence("card", "card_run_together", "phone_intl"),
            "password": "hunter2-plain",
        },
        "triggered_at": (now - timedelta(minutes=1)).isoformat(),
        "monitor_url": f"https://svc:{corpus.DB_PASSWORD}@app.arize.example/m/1?x=1|{HOSTILE}",
        "extra": {
            "headers": {"Authorization": f"Bearer {corpus.BEARER_TOKEN}"},
            "notes": corpus.sentence(),
            corpus.AWS_KEY_ID: [corpus.JWT, {corpus.EMAIL: corpus.PRIVATE_KEY}],
            "numbers": [corpus.CARD_AS_NUMBER, float(corpus.CARD_AS_NUMBER)],
        },
    }


def dirty_alert(now: datetime) -> dict[str, Any]:
    """Secrets in every field the mapping reads, the identity and the model included."""
    return {
        "monitor_id": f"{corpus.AWS_KEY_ID}-{corpus.PHONE_INTL}",
        "monitor_name": corpus.sentence("jwt", "iban"),
        "status": "Triggered",
        "metric": f"latency {corpus.ANTHROPIC_KEY}",
        "threshold": corpus.CARD_AS_NUMBER,
        "operator": HOSTILE,
        "current_value": 4870,
        "model_id": f"bot-{corpus.GOOGLE_KEY}",
        "model_version": f"v-{corpus.SSN}",
        "environment": f"env-{corpus.EMAIL}",
        "service": f"svc-{corpus.STRIPE_KEY}",
        "segments": [
            {"name": corpus.CARD, "value": corpus.IBAN},
            {"name": f"{corpus.CARD_RUN_TOGETHER}0042", "value": corpus.SLACK_WEBHOOK},
        ],
        "timestamp": (now - timedelta(minutes=1)).isoformat(),
        "url": f"javascript:alert('{corpus.EMAIL}')//https://app.arize.example",
    }


def alertmanager_group(now: datetime) -> dict[str, Any]:
    """One firing alert whose labels (keys and values) and annotations carry the corpus."""
    labels = {
        "alertname": f"HighLatency {corpus.EMAIL}",
        "model_id": f"m-{corpus.GITHUB_TOKEN}",
        "env": corpus.IBAN,
        "severity": "page",
        corpus.OPENAI_KEY: corpus.SSN,
        "customer": f"{corpus.CARD} {HOSTILE}",
    }
    return {
        "version": "4",
        "status": "firing",
        "receiver": "remediator",
        "groupKey": f"{{}}:{{alertname={corpus.EMAIL}}}",
        "groupLabels": {"alertname": labels["alertname"]},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": f"http://am:{corpus.DB_PASSWORD}@am.example",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {
                    "summary": corpus.sentence(),
                    "value": str(corpus.CARD_AS_NUMBER),
                    "runbook": corpus.PRIVATE_KEY,
                },
                "startsAt": (now - timedelta(minutes=1)).isoformat(),
                "generatorURL": f"data:text/html,<script>{corpus.JWT}</script>",
                "fingerprint": "c0ffee",
            }
        ],
    }


@pytest.fixture
def agent(
    catalog_world: SandboxStack, start_service: ServiceFactory, tmp_path: Path
) -> RunningService:
    """The service with the catalog, a runbook with every probe, and a leaky model."""
    world = catalog_world
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "corpus.yaml").write_text(RUNBOOK)
    # The endpoint answers right ("contains Paris") and quotes the corpus while at it.
    leaky = f"Paris. Ask {corpus.EMAIL} or {corpus.PHONE_US}; key {corpus.OPENAI_KEY} {HOSTILE}"
    world.openai.model(CHAT_MODEL).rules = {"17 + 25": "42", "capital of France": leaky}
    world.openai.add_chat_model(ANALYST_MODEL)
    world.openai.model(ANALYST_MODEL).default = ToolCall(
        "submit_analysis",
        {
            "hypothesis": {
                "summary": f"{corpus.sentence('email', 'card', 'jwt')} {HOSTILE}",
                "suspected_component": "endpoint",
                "confidence": 0.4,
                "evidence_refs": [],
            },
            "proposal": {"action": "page", "target": None, "rationale": corpus.SSN},
        },
    )
    return start_service(
        **sandbox_overrides(world),
        catalog_file=world.catalog_path,  # type: ignore[attr-defined]
        runbooks_dir=runbooks,
        analyst_base_url=world.urls["openai"] + "/v1",
        analyst_model=ANALYST_MODEL,
        analyst_api_key=world.openai_key,
        viewer_token=VIEWER,
        public_url="https://remediator.example",
    )


@pytest.mark.timeout(400)
def test_planted_secrets_reach_no_sink(
    catalog_world: SandboxStack,
    agent: RunningService,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = catalog_world
    assert len(corpus.PLANTED) >= 13
    now = datetime.now(UTC)
    plant_logs(world, now)
    catalogued = catalogued_alert(now)

    alert_ids = [agent.post_alert(a).json()["alert_id"] for a in (catalogued, dirty_alert(now))]
    group = httpx.post(
        f"{agent.url}/webhooks/alertmanager",
        json=alertmanager_group(now),
        headers=agent.auth,
        timeout=10,
    )
    assert group.status_code == 202, group.text
    alert_ids += [a["alert_id"] for a in group.json()["alerts"]]
    done = [agent.wait_alert(a, timeout=120) for a in alert_ids]
    incidents = sorted({d["incident_id"] for d in done if d["incident_id"]})
    assert len(incidents) == 3, done
    assert all(d["incident_run_state"] == "completed" for d in done), done
    resolved = agent.post_alert(dict(catalogued, status="Resolved")).json()["alert_id"]
    assert agent.wait_alert(resolved, timeout=60)["state"] == "done"

    slack = world.slack.snapshot()
    pagerduty = world.pagerduty.snapshot()
    # The runs did reach every outside system this test searches.
    assert len(slack["messages"]) >= 4 and pagerduty["accepted"] and pagerduty["notes"]
    sinks: dict[str, str | bytes] = {
        "slack": json.dumps(slack, ensure_ascii=False, default=str),
        "pagerduty": json.dumps(pagerduty, ensure_ascii=False, default=str),
    }
    sinks.update(database(agent))
    sinks.update(review_api(agent, incidents, alert_ids))
    sinks.update(review_pages(agent, incidents))
    sinks.update(cli_exports(agent, incidents, monkeypatch))
    captured = capfd.readouterr()
    sinks["stdout"], sinks["stderr"] = captured.out, captured.err

    leaks = {name: found for name, body in sinks.items() if (found := corpus.found_in(body))}
    assert leaks == {}
    assert "[REDACTED:" in str(sinks["slack"]) and "[REDACTED:" in str(sinks["pagerduty"])

    assert_inert_in_slack(slack)
    assert_inert_in_pagerduty(pagerduty)
    # What people read as a document (Markdown reviews, pages) holds no live HTML or mention;
    # the JSON Lines export is data, kept as it was redacted.
    readable = [n for n in sinks if n.startswith("page ") or n.endswith(("format=md", " md"))]
    assert len(readable) == 3 + 3 + 3 + 1
    for name in readable:
        assert "<script>" not in str(sinks[name]), name
        assert not LIVE.search(str(sinks[name])), name


def database(agent: RunningService) -> dict[str, str | bytes]:
    """Every text column of every table, and the raw bytes of the database files."""
    found: dict[str, str | bytes] = {}
    with agent.engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(FULL)"))
        for table in inspect(connection).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            cells = [
                c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c)
                for row in rows
                for c in row
            ]
            found[f"table {table}"] = "\n".join(cells)
    assert {"table alert", "table incident", "table audit_event", "table checkpoints"} <= set(found)
    path = agent.settings.sqlite_path
    assert path is not None
    for file in path.parent.glob(path.name + "*"):
        found[f"file {file.name}"] = file.read_bytes()
    return found


def review_api(
    agent: RunningService, incidents: list[str], alert_ids: list[str]
) -> dict[str, str | bytes]:
    """What the review API and the alert API answer (viewer token, webhook token)."""
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    found: dict[str, str | bytes] = {}
    listing = httpx.get(f"{agent.url}/incidents", headers=viewer, timeout=10)
    assert listing.status_code == 200
    found["api /incidents"] = listing.text
    for incident in incidents:
        for path in ("", "/audit", "/export?format=md", "/export?format=json"):
            answer = httpx.get(
                f"{agent.url}/incidents/{incident}{path}", headers=viewer, timeout=10
            )
            assert answer.status_code == 200, (path, answer.text)
            kind = "export" if "export" in path else "api"
            found[f"{kind} {incident}{path}"] = answer.text
    for alert_id in alert_ids:
        answer = httpx.get(f"{agent.url}/alerts/{alert_id}", headers=agent.auth, timeout=10)
        found[f"api alert {alert_id}"] = answer.text
    return found


def review_pages(agent: RunningService, incidents: list[str]) -> dict[str, str | bytes]:
    """The review pages as a signed-in viewer reads them."""
    with httpx.Client(base_url=agent.url, timeout=10) as browser:
        signed_in = browser.post("/ui/login", data={"token": VIEWER})
        assert signed_in.status_code in (200, 303), signed_in.text
        pages = {"page /ui/incidents": browser.get("/ui/incidents").text}
        for incident in incidents:
            page = browser.get(f"/ui/incidents/{incident}")
            assert page.status_code == 200 and "Timeline" in page.text
            pages[f"page {incident}"] = page.text
    return pages


def cli_exports(
    agent: RunningService, incidents: list[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str | bytes]:
    """`remediator audit export` of each incident, Markdown and JSON Lines."""
    monkeypatch.setenv("REMEDIATOR_ENV", "dev")
    monkeypatch.setenv("REMEDIATOR_DATABASE_URL", agent.settings.database_url)
    monkeypatch.setenv("REMEDIATOR_AUDIT_KEY", agent.settings.audit_key.get_secret_value())
    found: dict[str, str | bytes] = {}
    for incident in incidents:
        for form in ("md", "json"):
            result = CliRunner().invoke(cli, ["audit", "export", incident, "-f", form])
            assert result.exit_code == 0, result.output
            found[f"cli export {incident} {form}"] = result.stdout
    return found


def assert_inert_in_slack(slack: dict[str, Any]) -> None:
    """No message mentions anyone or links anywhere because of outside text."""
    for message in slack["messages"]:
        blocks = message.get("blocks") or []
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        # Every text object, nested ones too (section fields, context elements).
        for body in block_texts(message.get("text") or "", blocks):
            assert not LIVE.search(body), body
            links = re.findall(r"<([^>|]+)(?:\|[^>]*)?>", body)
            assert all(link.startswith(("http://", "https://")) for link in links), links
            assert "javascript:" not in "".join(links) and "data:" not in "".join(links)
    assert any("&lt;!channel&gt;" in json.dumps(m) for m in slack["messages"])


def assert_inert_in_pagerduty(pagerduty: dict[str, Any]) -> None:
    """Pages link only to http(s) URLs, and nothing in them can mention anyone in chat."""
    for event in pagerduty["accepted"]:
        assert not LIVE.search(json.dumps(event, ensure_ascii=False)), event
        for link in event.get("links") or []:
            assert link["href"].startswith(("http://", "https://")), link
            assert "|" not in link["href"] or "<" not in link["href"]
    for note in pagerduty["notes"]:
        assert not LIVE.search(note["content"]), note
