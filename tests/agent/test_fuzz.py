"""Property-based fuzzing of the door: the webhooks, the deployments feed and the review API.

Whatever is sent (deep nesting, 400-digit numbers, NUL, lone surrogates, over-long text, naive
or extreme times, huge offsets, broken JSON), every request is answered, none with a 5xx, and
the next valid alert is still accepted, with each intake writer (thread and process).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.api.app import create_app
from sandbox.server import EmulatorServer
from tests.conftest import RunningService, make_settings
from tests.sample import arize_alert

VIEWER = secrets.token_urlsafe(24)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
"""Requests per writer: enough to reach every kind of input, seconds in CI (more: FUZZ_EXAMPLES)."""

# Text of any code point: NUL, other controls, lone surrogates, private use, astral.
ANY_CHAR = st.characters(exclude_categories=())
ODD_TEXT = st.text(ANY_CHAR, max_size=12)
# Text a URL can carry (httpx encodes it as UTF-8, which has no surrogates).
URL_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
LONG_TEXT = st.builds(
    lambda char, size: char * size,
    st.sampled_from("xé\x00\ud800"),
    st.sampled_from([128, 129, 200, 201, 512, 513]) | st.integers(100, 700),
)
# The values that broke the door before, drawn often rather than left to chance.
NASTY_TEXT = st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\ud83d\ude00"])
TEXT = st.one_of(ODD_TEXT, LONG_TEXT, NASTY_TEXT)
NUMBER = st.one_of(
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -(10**400), 2**63, 1.7976931348623157e308, 5e-324]),
    st.sampled_from(["9" * 400, "1e400", "-0", "NaN", "0x10", "1_000"]),
)
TIME_TEXT = st.builds(
    lambda moment, suffix: moment.isoformat() + suffix,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    st.sampled_from(["", "Z", "+00:00", "+14:00", "-14:00", "+23:59"]),
)
TIME = st.one_of(TIME_TEXT, NUMBER, TEXT)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=12,
)


def nested(value: Any, depth: int) -> Any:
    """Wrap a value in `depth` arrays."""
    for _ in range(depth):
        value = [value]
    return value


DEEP = st.builds(nested, JSON, st.sampled_from([1, 62, 63, 64, 65, 200, 490]))
ANY_VALUE = st.one_of(JSON, DEEP, TIME, NUMBER, TEXT)

SAMPLE = arize_alert(model_id="fuzz-bot", triggered_at="2026-11-27T02:00:00Z")
# A valid alert with up to three fields replaced or added: most bodies map, so what is accepted
# (and must then be stored and investigated) is fuzzed as much as what is refused.
FIELD_VALUE = st.one_of(TEXT, NUMBER, TIME, st.none(), JSON, DEEP)
# Odd but storable: what should be accepted, then investigated.
PLAUSIBLE = st.one_of(
    st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    TIME_TEXT,
)
ARIZE_KEYS = st.sampled_from([*SAMPLE, "dimensions", "extra", "segments", "model.name"])
ARIZE = st.builds(
    lambda serial, changes: {**SAMPLE, "serial": serial, **changes},
    st.integers(0, 10**9),  # distinct bodies: each is a new alert, not a re-delivery
    st.one_of(
        st.dictionaries(ARIZE_KEYS, PLAUSIBLE, max_size=3),
        st.dictionaries(ARIZE_KEYS, FIELD_VALUE, max_size=3),
    ),
)
ALERT = st.builds(
    lambda labels, annotations, changes: {
        "status": "firing",
        "labels": {"alertname": "FuzzAlert", "model": "fuzz-rag", **labels},
        "annotations": {"value": "0.12", "threshold": "0.05", **annotations},
        "startsAt": "2026-11-27T02:00:00Z",
        **changes,
    },
    st.dictionaries(
        st.sampled_from(["alertname", "model", "environment", "service", "region"]) | ODD_TEXT,
        st.one_of(TEXT, NUMBER),
        max_size=2,
    ),
    st.dictionaries(st.sampled_from(["value", "threshold", "operator"]), FIELD_VALUE, max_size=2),
    st.dictionaries(
        st.sampled_from(["status", "labels", "startsAt", "generatorURL"]), FIELD_VALUE, max_size=1
    ),
)
ALERTMANAGER = st.builds(
    lambda alerts, version: {"version": version, "alerts": alerts},
    st.lists(st.one_of(ALERT, ALERT, FIELD_VALUE), min_size=1, max_size=4),
    st.sampled_from(["4", "4", "4", 4, "3"]),
)
DEPLOYMENT = st.fixed_dictionaries(
    {
        "service": st.one_of(st.just("svc"), TEXT),
        "kind": st.sampled_from(["model", "prompt", "weights"]),
        "version": st.one_of(st.just("1"), TEXT),
    },
    optional={
        name: ANY_VALUE
        for name in ["deployed_at", "environment", "model_id", "description", "colour"]
    },
)


def encoded(value: Any) -> bytes:
    """JSON as a sender would write it (escapes for NUL and surrogates; NaN allowed)."""
    return json.dumps(value).encode()


def mangled(body: bytes, how: int) -> bytes:
    """The body as it was, cut short, or with bytes that are not UTF-8."""
    if how == 1:
        return body[: len(body) // 2]
    if how == 2:
        return body.replace(b'"', b'"\xff', 1)
    return body


def body_of(values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Bodies from a strategy of JSON values: mostly as encoded, sometimes broken."""
    return st.one_of(
        st.builds(mangled, st.builds(encoded, values), st.sampled_from([0] * 8 + [1, 2])),
        st.builds(encoded, JSON),
        st.binary(max_size=64),
    )


Request = tuple[str, str, dict[str, str], bytes | None]
"""(method, path with its query, which token, body)."""

WEBHOOKS = st.one_of(
    st.tuples(st.just("/webhooks/arize"), body_of(ARIZE)),
    st.tuples(st.just("/webhooks/alertmanager"), body_of(ALERTMANAGER)),
    st.tuples(st.just("/events/deployments"), body_of(DEPLOYMENT)),
).map(lambda pair: ("POST", pair[0], {"token": "webhook"}, pair[1]))

QUERY_VALUE = st.one_of(
    URL_TEXT,
    TIME_TEXT,
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["open", "resolved", "2", "0", str(2**63), "-1"]),
)
LISTING = st.builds(
    lambda path, params: ("GET", path, params, None),
    st.sampled_from(["/incidents", "/events/deployments"]),
    st.dictionaries(
        st.sampled_from(["status", "service", "model", "since", "until", "limit", "offset"]),
        QUERY_VALUE,
        max_size=4,
    ),
)
ONE_INCIDENT = st.builds(
    lambda ident, tail, fmt: ("GET", f"/incidents/{quote(ident, safe='')}{tail}", fmt, None),
    st.one_of(st.uuids().map(str), URL_TEXT.filter(bool)),
    st.sampled_from(["", "/audit", "/export"]),
    st.one_of(st.just({}), st.dictionaries(st.just("format"), QUERY_VALUE | st.just("json"))),
)
REQUESTS = st.one_of(WEBHOOKS, LISTING, ONE_INCIDENT)


@pytest.fixture(params=["thread", "process"])
def door(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningService]:
    """The service (API and worker) with a viewer token, writing alerts on either writer."""
    config = make_settings(tmp_path, intake_writer=request.param, viewer_token=VIEWER)
    # A writer process can take a while to start on a busy machine: wait longer than usual.
    server = EmulatorServer(create_app(config), lifespan="on").start(timeout=120)
    running = RunningService(config, server)
    yield running
    server.stop()
    running.engine.dispose()


def test_no_input_gets_a_5xx_or_stalls_the_door(door: RunningService) -> None:
    tokens = {
        "webhook": door.settings.webhook_token.get_secret_value(),
        "viewer": VIEWER,
    }
    accepted: list[str] = []
    # A request not answered within the timeout fails the test: a stalled door is a failure.
    with httpx.Client(base_url=door.url, timeout=30) as client:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(REQUESTS)
        def one(request: Request) -> None:
            method, path, extra, body = request
            params = dict(extra)
            token = tokens[params.pop("token", "viewer")]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            answer = client.request(method, path, params=params, content=body, headers=headers)
            assert answer.status_code < 500, (method, path, params, body, answer.text[:500])
            if answer.status_code >= 400:
                assert answer.json()["detail"], answer.text  # says what is wrong
            elif path == "/webhooks/arize":
                accepted.append(answer.json()["alert_id"])
            elif path == "/webhooks/alertmanager":
                accepted.extend(a["alert_id"] for a in answer.json()["alerts"])

        one()

        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["intake"] == "running"
    assert door.post_alert(arize_alert()).status_code == 202
    # What was accepted is investigated: no accepted alert fails in the worker.
    for alert_id in accepted[:20]:
        assert door.wait_alert(alert_id, timeout=60)["state"] == "done"
