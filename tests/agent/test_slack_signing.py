"""RELIABILITY case 1: only signed, fresh Slack requests get through.

Slack's documented example must verify; slack_sdk's SignatureVerifier is the oracle on random
inputs; and the endpoint refuses a stale, future, tampered, unsigned or wrongly keyed request
with a 401 that says why, before the body is parsed.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import Clock, SignatureVerifier

from agent.api.app import create_app
from agent.approvals.slack_signing import check_slack_signature
from audit.models import AuditEvent
from sandbox.server import EmulatorServer
from sandbox.slack import sign
from tests.conftest import RunningService, ServiceFactory, make_settings

# From Slack's "Verifying requests from Slack" page.
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F"
    "T1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def headers(timestamp: str, signature: str) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}


def test_slacks_documented_example_verifies() -> None:
    at = float(DOC_TIMESTAMP) + 10
    problem = check_slack_signature(
        DOC_SECRET, DOC_BODY.encode(), headers(DOC_TIMESTAMP, DOC_SIGNATURE), lambda: at
    )
    assert problem is None
    changed = DOC_BODY.replace("roadrunner", "coyote").encode()
    assert check_slack_signature(
        DOC_SECRET, changed, headers(DOC_TIMESTAMP, DOC_SIGNATURE), lambda: at
    )


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def test_signature_verifier_agrees_on_random_requests() -> None:
    rng = random.Random(20261127)
    disagreements = []
    for _ in range(2000):
        secret = secrets.token_hex(rng.randint(8, 32))
        body = (
            bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
            .decode("latin-1")
            .encode("utf-8")
        )
        now = 1_700_000_000 + rng.randint(0, 10**6)
        timestamp = now + rng.choice([0, -299, -300, -301, 300, 301, rng.randint(-900, 900)])
        signature = sign(secret, timestamp, body)
        mutation = rng.randrange(5)
        if mutation == 1:
            body = body + b"x"
        elif mutation == 2:
            signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        elif mutation == 3:
            secret = secret + "z"
        oracle = SignatureVerifier(secret, clock=FixedClock(now)).is_valid(
            body=body, timestamp=str(timestamp), signature=signature
        )
        ours = check_slack_signature(
            secret, body, headers(str(timestamp), signature), lambda now=now: now
        )
        if oracle != (ours is None):
            disagreements.append((timestamp - now, mutation, ours))
    assert disagreements == []


FROZEN = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
NOW = int(FROZEN.timestamp())


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[RunningService]:
    """The API with its clock stopped at NOW, so the 300 s window is exact."""
    settings = make_settings(tmp_path, slack_signing_secret="signing-" + secrets.token_hex(8))
    server = EmulatorServer(
        create_app(settings, run_worker=False, now=lambda: FROZEN), lifespan="on"
    ).start()
    yield RunningService(settings, server)
    server.stop()


def post(agent: RunningService, body: bytes, sent: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{agent.url}/slack/interactions",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **sent},
        timeout=10,
    )


def signed(secret: str, at: int, body: bytes) -> dict[str, str]:
    return headers(str(at), sign(secret, at, body))


def test_the_endpoint_accepts_299s_and_refuses_301s_either_way(agent: RunningService) -> None:
    secret = agent.settings.slack_signing_secret
    assert secret is not None
    key = secret.get_secret_value()
    body = urlencode({"payload": '{"type": "view_closed"}'}).encode()
    now = NOW

    accepted = post(agent, body, signed(key, now - 299, body))
    old = post(agent, body, signed(key, now - 301, body))
    future = post(agent, body, signed(key, now + 301, body))

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["outcome"] == "ignored"
    assert (old.status_code, future.status_code) == (401, 401)
    assert "old" in old.json()["detail"] and "future" in future.json()["detail"]


def test_the_endpoint_refuses_tampered_unsigned_and_wrongly_keyed_requests(
    agent: RunningService,
) -> None:
    secret = agent.settings.slack_signing_secret
    assert secret is not None
    key = secret.get_secret_value()
    body = urlencode({"payload": '{"type": "block_actions", "actions": []}'}).encode()
    now = NOW
    before = agent.count(AuditEvent)

    tampered = post(agent, body.replace(b"block", b"blocc"), signed(key, now, body))
    unsigned = post(agent, body, {})
    wrong_key = post(agent, body, signed("not-the-secret", now, body))
    garbage_ts = post(agent, body, headers("yesterday", sign(key, now, body)))

    for answer in (tampered, unsigned, wrong_key, garbage_ts):
        assert answer.status_code == 401, answer.text
    assert "does not match" in tampered.json()["detail"]
    assert "missing" in unsigned.json()["detail"]
    assert "not unix seconds" in garbage_ts.json()["detail"]
    assert agent.count(AuditEvent) == before


def test_a_signed_but_malformed_interaction_is_a_400(agent: RunningService) -> None:
    secret = agent.settings.slack_signing_secret
    assert secret is not None
    key = secret.get_secret_value()
    now = NOW
    no_payload = b"foo=bar"
    bad_json = urlencode({"payload": "{nope"}).encode()
    bad_value = urlencode(
        {
            "payload": '{"type": "block_actions", "user": {"id": "U1"}, '
            '"actions": [{"action_id": "remediator.approve", "value": "x"}]}'
        }
    ).encode()

    for body, words in ((no_payload, "missing"), (bad_json, "not JSON"), (bad_value, "value")):
        answer = post(agent, body, signed(key, now, body))
        assert answer.status_code == 400 and words in answer.json()["detail"]


def test_interactions_are_off_without_a_signing_secret(
    start_service: ServiceFactory,
) -> None:
    agent = start_service()
    answer = post(agent, b"payload=%7B%7D", headers(str(int(time.time())), "v0=00"))
    assert answer.status_code == 403
    assert "REMEDIATOR_SLACK_SIGNING_SECRET" in answer.json()["detail"]
