"""What the service writes to the audit trail: redacted, with prompts kept only per policy."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine

from agent.store.audit_log import AuditLog
from audit.redact import Redactor

PROBE = {
    "tool": "endpoint",
    "evidence": {
        "cases": [
            {
                "prompt": "Summarise ticket 7 from bob@example.com",
                "response": "Bob cannot log in.",
                "latency_ms": 640,
            }
        ]
    },
    "asked": {"headers": {"X-Api-Key": "live-key-123"}},
}


@pytest.mark.parametrize(
    ("policy", "prompt"),
    [("full", "Summarise ticket 7 from [REDACTED:email]"), ("none", "[OMITTED]")],
)
def test_prompts_are_stored_only_as_the_policy_says(
    migrated_engine: Engine, policy: str, prompt: str
) -> None:
    audit = AuditLog(
        key=b"k" * 32,
        redactor=Redactor(field_names=frozenset({"x-api-key"})),
        payload_policy=policy,
    )  # type: ignore[arg-type]

    event = audit.record_now(migrated_engine, "probe.completed", PROBE, actor="agent")

    stored = json.loads(event.data)
    assert stored["evidence"]["cases"][0]["prompt"] == prompt
    assert stored["evidence"]["cases"][0]["latency_ms"] == 640
    assert stored["asked"]["headers"]["X-Api-Key"] == "[REDACTED:field]"


def test_the_default_policy_keeps_only_a_hash(migrated_engine: Engine) -> None:
    event = AuditLog(key=b"k" * 32).record_now(
        migrated_engine, "probe.completed", PROBE, actor="agent"
    )
    case = json.loads(event.data)["evidence"]["cases"][0]
    assert set(case["response"]) == {"sha256", "chars"}
    assert "Bob" not in event.data


@pytest.mark.parametrize(
    ("service", "runbook", "kept"),
    [("full", "none", "[OMITTED]"), ("none", "full", "[OMITTED]"), ("full", None, "Summarise")],
)
def test_a_runbook_can_tighten_the_policy_but_never_loosen_it(
    migrated_engine: Engine, service: str, runbook: str | None, kept: str
) -> None:
    audit = AuditLog(key=b"k" * 32, payload_policy=service)  # type: ignore[arg-type]

    event = audit.record_now(
        migrated_engine, "probe.completed", PROBE, actor="agent", payload_policy=runbook
    )  # type: ignore[arg-type]

    assert json.loads(event.data)["evidence"]["cases"][0]["prompt"].startswith(kept)
