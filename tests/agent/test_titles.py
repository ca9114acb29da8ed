"""Incident titles over many alert bodies: one line, nothing absent spelled out, nothing doubled."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.alerts.alertmanager import map_alertmanager_payload
from agent.alerts.arize import DEFAULT_FIELD_PATHS, map_arize_payload
from agent.alerts.models import Breach, version_label
from agent.graph.nodes.triage import policy_reason

WORDS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40
).filter(lambda text: text.strip() != "")
NAMES = st.one_of(WORDS, st.sampled_from(["RagAnswersSlow", "Support bot p95", "none", "None"]))
VERSIONS = st.one_of(
    st.sampled_from(["7", "v7", "V7", "2026-11-20", "1.2.0", "v1.2.0", "canary", "vnext"]),
    WORDS,
)
NUMBERS = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)


@st.composite
def arize_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Return an Arize body in one of the shapes the mapping accepts, some fields left out."""
    name = draw(NAMES)
    flat = draw(st.booleans())
    body: dict[str, Any] = {"status": draw(st.sampled_from(["TRIGGERED", "firing", "Healthy"]))}
    if flat:
        body[draw(st.sampled_from(["monitor_name", "monitorName", "name", "title"]))] = name
    else:
        body["monitor"] = {"name": name}
    optional = {
        "metric": draw(st.none() | st.sampled_from(["latency_p95", "p95_latency_ms", "ERRORS"])),
        "model_id": draw(st.none() | WORDS),
        draw(st.sampled_from(["model_version", "modelVersion", "version"])): draw(
            st.none() | VERSIONS
        ),
        "environment": draw(st.none() | st.sampled_from(["production", "PRODUCTION"])),
        "service": draw(st.none() | WORDS),
        "current_value": draw(st.none() | NUMBERS),
        "threshold": draw(st.none() | NUMBERS),
        "operator": draw(st.none() | st.sampled_from(["GREATER_THAN", ">", "LESS_THAN", "gte"])),
        "segment": draw(st.none() | st.dictionaries(WORDS, WORDS, max_size=3)),
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def check(breach: Breach, title: str) -> None:
    assert "\n" not in title and "\r" not in title and "  " not in title
    assert "unknown model" not in title
    if "none" not in breach.model_dump_json().casefold():  # unless a field itself says None
        assert "none" not in title.casefold()
    if breach.model_version and breach.model_id:
        label = version_label(breach.model_version)
        assert not label.lower().startswith("vv") or breach.model_version.lower().startswith("vv")
    name = " ".join((breach.monitor_name or "").split())
    if name:
        assert name in title, (name, title)
    if breach.value is not None and breach.threshold is not None:
        assert f"{breach.value:g}" in title and f"{breach.threshold:g}" in title


@settings(max_examples=300, deadline=None)
@given(arize_bodies(), st.one_of(st.none(), WORDS))
def test_every_arize_body_gets_a_readable_title(body: dict[str, Any], service: str | None) -> None:
    breach = map_arize_payload(body, DEFAULT_FIELD_PATHS)

    check(breach, breach.title(service))


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["RagAnswersSlow", "ChatbotErrors"]),
    st.dictionaries(
        st.sampled_from(["metric", "service", "model_id", "model_version", "environment"]),
        WORDS,
    ),
)
def test_every_alertmanager_alert_gets_a_readable_title(name: str, labels: dict[str, str]) -> None:
    body = {
        "version": "4",
        "groupKey": "g",
        "status": "firing",
        "alerts": [{"status": "firing", "labels": {"alertname": name, **labels}}],
    }

    for breach, _ in map_alertmanager_payload(body):
        check(breach, breach.title())


@pytest.mark.parametrize(
    ("fields", "title"),
    [
        (
            {"monitor_name": "Support p95", "model_id": "bot", "model_version": "v7"},
            "Support p95 breach on bot v7",
        ),
        ({"monitor_name": "m", "model_id": "bot", "model_version": "7"}, "m breach on bot v7"),
        ({"monitor_name": "m", "model_id": "bot", "model_version": "V7"}, "m breach on bot V7"),
        (
            {"monitor_name": "m", "model_id": "bot", "model_version": "canary"},
            "m breach on bot canary",
        ),
        ({"monitor_name": "RagAnswersSlow"}, "RagAnswersSlow breach"),
        ({"monitor_id": "m-42"}, "monitor breach"),
        (
            {"monitor_name": "Support p95", "metric": "latency_p95", "service": "support-bot"},
            "latency_p95 breach on support-bot · monitor Support p95",
        ),
        ({"monitor_name": "latency_p95", "metric": "LATENCY_P95"}, "LATENCY_P95 breach"),
        (
            {"monitor_name": "a\nb", "value": 3.0, "threshold": 2.0, "operator": "GREATER_THAN"},
            "a b breach: 3 > 2",
        ),
        ({"monitor_name": "m", "value": 3.0}, "m breach: 3"),
    ],
)
def test_titles_of_known_shapes(fields: dict[str, Any], title: str) -> None:
    assert Breach(status="triggered", **fields).title() == title


@pytest.mark.parametrize(
    ("matched", "metric", "breach", "reason"),
    [
        (True, "latency_p95", {}, "matched"),
        (False, "uptime", {}, "no runbook for metric uptime: built-in policy"),
        (False, None, {}, "the alert names no metric: built-in policy"),
        (
            False,
            None,
            {"monitor_name": "Weird", "metric": None},
            "monitor 'Weird' not recognised as a metric: built-in policy",
        ),
        (
            False,
            None,
            {"metric": "vibes", "monitor_name": "Weird"},
            "metric 'vibes' of monitor 'Weird' not recognised as a metric: built-in policy",
        ),
    ],
)
def test_why_the_built_in_policy_governs_never_says_none(
    matched: bool, metric: str | None, breach: dict[str, Any], reason: str
) -> None:
    assert policy_reason(matched=matched, metric=metric, breach=breach) == reason
