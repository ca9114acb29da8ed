"""Redaction: secrets and PII are masked by kind, look-alike operational data is left alone."""

from __future__ import annotations

import copy
import hashlib
import json
from functools import partial
from typing import Any

import pytest

from audit.redact import DEFAULT_SENSITIVE_FIELDS, PayloadPolicy, Redactor, apply_payload_policy

R = Redactor()

OPENAI_KEY = "sk-proj-4fQm9XbT2vLk8RzW1nYc6HsA0uJe3GdP7oKiVt5Zy"
SLACK_TOKEN = "xoxb-2716493021-5520983344-Zr8QmT4vKx1bLp9WcY3nHs6D"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ROUTING_KEY = "R02ABCDEF34567890ABCDEF123456789"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhcml6ZS13ZWJob29rIn0"
    ".Qm9wT3Jx8kL2vZc1yN5hX7dE0aS4fG6jK9pR3tU_w-"
)
SHA256_HEX = hashlib.sha256(b"support-bot prompt template v7").hexdigest()


def alert_payload() -> dict[str, Any]:
    return {
        "monitor_name": "support-bot p95 latency",
        "current_value": 4870,
        "threshold": 2000,
        "model_version": "2026-11-20",
        "triggered_at": "2026-11-27T02:14:25.123Z",
        "request": {
            "headers": {
                "Authorization": f"Bearer {JWT}",
                "Content-Type": "application/json",
                "X-Request-Id": "7f3c2a9e-1b4d-4e8f-9a6b-2c5d8e0f1a3b",
            },
            "body": {"dimensions": {"region": "eu-west-1"}, "sampled": True, "weight": 0.25},
        },
    }


def test_nested_alert_payload_masks_authorization_header_and_keeps_the_rest() -> None:
    payload = alert_payload()

    out = R.value(payload)

    assert isinstance(out, dict)
    headers = out["request"]["headers"]
    assert headers["Authorization"] == "[REDACTED:field]"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Request-Id"] == "7f3c2a9e-1b4d-4e8f-9a6b-2c5d8e0f1a3b"
    assert out["triggered_at"] == "2026-11-27T02:14:25.123Z"
    assert out["model_version"] == "2026-11-20"
    assert out["current_value"] == 4870
    assert out["request"]["body"] == payload["request"]["body"]
    assert JWT not in json.dumps(out)


def test_authorization_inside_json_string_is_masked_and_stays_valid_json() -> None:
    raw = json.dumps(alert_payload())

    out = R.text(raw)

    assert JWT not in out
    decoded = json.loads(out)
    assert decoded["request"]["headers"]["Authorization"] == "Bearer [REDACTED:bearer]"
    assert decoded["triggered_at"] == "2026-11-27T02:14:25.123Z"


def test_bearer_header_line_keeps_scheme_but_not_token() -> None:
    assert R.text(f"Authorization: Bearer {JWT}") == "Authorization: Bearer [REDACTED:bearer]"


def test_bearer_in_prose_is_not_a_token() -> None:
    line = "webhook uses a Bearer authentication scheme"
    assert R.text(line) == line


def test_slack_token_inside_log_line() -> None:
    line = (
        "2026-11-27T02:14:25.123Z ERROR slack.notify post failed "
        f"token={SLACK_TOKEN} channel=#inc-support-bot status=401"
    )

    out = R.text(line)

    assert SLACK_TOKEN not in out
    assert out == (
        "2026-11-27T02:14:25.123Z ERROR slack.notify post failed "
        "token=[REDACTED:slack_token] channel=#inc-support-bot status=401"
    )


@pytest.mark.parametrize("prefix", ["xoxb", "xoxp", "xoxa", "xoxs", "xapp"])
def test_every_slack_token_prefix_is_masked(prefix: str) -> None:
    assert R.text(f"using {prefix}-1-2716493021-Zr8QmT4vKx1b") == "using [REDACTED:slack_token]"


def test_slack_webhook_url_is_masked() -> None:
    url = "https://hooks.slack.com/services/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"

    out = R.text(f"posting to {url} failed: 404 no_service")

    assert out == "posting to [REDACTED:slack_webhook] failed: 404 no_service"


def test_openai_key_inside_nested_list() -> None:
    data = {"steps": [["probe", {"env": [f"OPENAI_API_KEY={OPENAI_KEY}", "MODEL=gpt-4o"]}]]}

    out = R.value(data)

    assert out == {
        "steps": [["probe", {"env": ["OPENAI_API_KEY=[REDACTED:openai_key]", "MODEL=gpt-4o"]}]]
    }


def test_legacy_openai_key_is_masked() -> None:
    key = "sk-" + "T3BlbkFJ" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9"
    assert R.text(f"key {key} rejected") == "key [REDACTED:openai_key] rejected"


def test_email_and_international_phone_in_free_text() -> None:
    text = "Escalate to maria.keller+oncall@example.co.uk or call +44 20 7946 0958 after 3100 ms."

    out = R.text(text)

    assert out == "Escalate to [REDACTED:email] or call [REDACTED:phone] after 3100 ms."


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (415) 555-2671",
        "+14155552671",
        "+49 30 90182044",
        "+33 6 12 34 56 78",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "06 12 34 56 78",
        "030 9018 2044",
    ],
)
def test_common_phone_formats_are_masked(phone: str) -> None:
    assert R.text(f"pager: {phone}, backup") == "pager: [REDACTED:phone], backup"


def test_phone_followed_by_another_number_masks_only_the_phone() -> None:
    out = R.text("call +44 20 7946 0958 3100 times")
    assert out == "call [REDACTED:phone] 3100 times"


@pytest.mark.parametrize("card", ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111"])
def test_luhn_valid_visa_test_number_is_masked(card: str) -> None:
    assert (
        R.text(f"customer pasted {card} into chat") == "customer pasted [REDACTED:card] into chat"
    )


def test_non_luhn_sixteen_digit_number_is_left_alone() -> None:
    text = "customer pasted 4111 1111 1111 1112 into chat, order 4111111111111112"
    assert R.text(text) == text


def test_aws_access_key_id_and_secret_after_its_name() -> None:
    text = f"boto3 creds aws_access_key_id={AWS_KEY_ID} aws_secret_access_key={AWS_SECRET}"

    out = R.text(text)

    assert out == (
        "boto3 creds aws_access_key_id=[REDACTED:aws_key] "
        "aws_secret_access_key=[REDACTED:aws_secret]"
    )


def test_temporary_aws_key_id_is_masked() -> None:
    assert R.text("sts ASIAY34FZKBOKMUTVV7A issued") == "sts [REDACTED:aws_key] issued"


def test_pagerduty_routing_key_after_routing_key() -> None:
    out = R.text(f"pd.enqueue routing_key={ROUTING_KEY} dedup_key=support-bot-latency")
    assert out == "pd.enqueue routing_key=[REDACTED:pagerduty_key] dedup_key=support-bot-latency"


def test_pagerduty_keys_in_json_text_and_rest_token_header() -> None:
    body = json.dumps({"integration_key": ROUTING_KEY, "event_action": "trigger"})
    header = "Authorization: Token token=y_NbAkKc66ryYTWUXYEu"

    assert json.loads(R.text(body)) == {
        "integration_key": "[REDACTED:pagerduty_key]",
        "event_action": "trigger",
    }
    assert R.text(header) == "Authorization: Token token=[REDACTED:pagerduty_key]"


def test_bare_32_hex_strings_are_not_pagerduty_keys() -> None:
    fingerprint = "9f86d081884c7d659a2feaa0c55ad015"
    text = f"alert fingerprint={fingerprint} prompt_sha={SHA256_HEX[:32]}"
    assert R.text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27T02:14:25.123Z worker started",
        "at 2026-11-27 02:14:25+01:00 the monitor fired",
        "incident 550e8400-e29b-41d4-a716-446655440000 opened",
        "trace 12345678-1234-1234-1234-123456789012 sampled",
        f"prompt sha256={SHA256_HEX}",
        "model_version 2026-11-20 replaced 2026-10-02, runtime v1.27.3, build 20261127",
        "p95 latency 3100 ms over threshold 2000 ms (p99 4870 ms)",
        "served 1234567890 requests, 98765432101 tokens, 17 errors",
        "epoch_ms=1764209665123 epoch_ns=1764209665123456789",
        "upstream 10.0.12.7:8080 and 192.168.100.200",
        "prompt_tokens=512 max_tokens=1024 tokens: 2048",
    ],
)
def test_operational_values_are_not_masked(text: str) -> None:
    assert R.text(text) == text


def test_sensitive_field_inside_log_line_is_masked() -> None:
    out = R.text("db connect user=svc password=hunter2; retrying")
    assert out == "db connect user=svc password=[REDACTED:field]; retrying"


def test_cookie_header_is_masked_to_end_of_line() -> None:
    out = R.text("Cookie: session=9c1e7; csrftoken=ab12\nHost: api.example.com")
    assert out == "Cookie: [REDACTED:field]\nHost: api.example.com"


def test_value_does_not_mutate_input() -> None:
    payload = alert_payload()
    payload["notes"] = [f"reach me at ops@example.com, key {OPENAI_KEY}", ("tuple", AWS_KEY_ID)]
    before = copy.deepcopy(payload)

    out = R.value(payload)

    assert payload == before
    assert isinstance(out, dict)
    assert out is not payload
    assert out["request"] is not payload["request"]
    assert out["notes"] is not payload["notes"]
    assert out["notes"][1] == ("tuple", "[REDACTED:aws_key]")


def test_value_walks_sets() -> None:
    tags = frozenset({"ops@example.com", "sev2"})

    out = R.value({"tags": tags, "seen": {AWS_KEY_ID}})

    assert out == {
        "tags": frozenset({"[REDACTED:email]", "sev2"}),
        "seen": {"[REDACTED:aws_key]"},
    }
    assert tags == frozenset({"ops@example.com", "sev2"})


def test_value_keeps_keys_and_scalar_types() -> None:
    data = {"Password": "x", 1: "ops@example.com", "ok": True, "n": 3, "f": 0.5, "none": None}

    out = R.value(data)

    assert out == {
        "Password": "[REDACTED:field]",
        1: "[REDACTED:email]",
        "ok": True,
        "n": 3,
        "f": 0.5,
        "none": None,
    }


def test_sensitive_field_masks_whole_nested_value() -> None:
    out = R.value({"secret": {"inner": "plain", "list": [1, 2]}, "token": 12345})
    assert out == {"secret": "[REDACTED:field]", "token": "[REDACTED:field]"}


def test_configured_field_names_are_masked_case_insensitively() -> None:
    redactor = Redactor(field_names=frozenset({"Customer_SSN", "x-tenant-secret"}))

    out = redactor.value(
        {"CUSTOMER_SSN": "078-05-1120", "X-Tenant-Secret": "abc", "customer_name": "Ada"}
    )

    assert out == {
        "CUSTOMER_SSN": "[REDACTED:field]",
        "X-Tenant-Secret": "[REDACTED:field]",
        "customer_name": "Ada",
    }
    assert (
        redactor.text('{"customer_ssn": "078-05-1120"}') == '{"customer_ssn": "[REDACTED:field]"}'
    )
    assert DEFAULT_SENSITIVE_FIELDS <= redactor.sensitive_fields
    # Not a configured field for the default redactor: only what the value holds is masked.
    assert R.value({"customer_ssn": "pending"}) == {"customer_ssn": "pending"}
    assert R.value({"customer_ssn": "078-05-1120"}) == {"customer_ssn": "[REDACTED:national_id]"}


def test_default_fields_include_the_documented_names() -> None:
    expected = {
        "password",
        "api_key",
        "authorization",
        "token",
        "secret",
        "routing_key",
        "signing_secret",
        "cookie",
        "set-cookie",
        "x-api-key",
    }
    assert expected <= DEFAULT_SENSITIVE_FIELDS


def test_custom_mask_template() -> None:
    redactor = Redactor(mask="<{kind} removed>")

    assert redactor.text("mail ops@example.com") == "mail <email removed>"
    assert redactor.value({"api_key": "k"}) == {"api_key": "<field removed>"}


def test_mask_without_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="kind"):
        Redactor(mask="[REDACTED]")


def test_text_is_idempotent() -> None:
    once = R.text(json.dumps(alert_payload()) + f" {SLACK_TOKEN} ops@example.com +44 20 7946 0958")
    assert R.text(once) == once


def test_payload_policy_full_returns_redacted_text() -> None:
    prompt = f"User ops@example.com asks why key {OPENAI_KEY} fails"

    assert apply_payload_policy(prompt, "full") == (
        "User [REDACTED:email] asks why key [REDACTED:openai_key] fails"
    )


def test_payload_policy_full_uses_given_redactor() -> None:
    redactor = Redactor(mask="***{kind}***")
    assert apply_payload_policy("ops@example.com", "full", redactor=redactor) == "***email***"


def test_payload_policy_hash_hashes_the_original_text() -> None:
    prompt = "Résumé for ops@example.com ✓"

    out = apply_payload_policy(prompt, "hash")

    assert out == {
        "sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
        "chars": len(prompt),
    }
    assert out["chars"] == 28


def test_payload_policy_none_omits_text() -> None:
    assert apply_payload_policy(f"secret {OPENAI_KEY}", "none") == "[OMITTED]"


def test_unknown_payload_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown payload policy"):
        apply_payload_policy("x", "raw")  # type: ignore[arg-type]


def test_payload_fields_follow_the_policy_at_any_depth() -> None:
    from audit.redact import apply_payload_fields

    data = {
        "tool": "endpoint",
        "evidence": {
            "cases": [
                {"prompt": "Who is alice@example.com?", "response": "A user.", "latency_ms": 812}
            ]
        },
    }

    full = apply_payload_fields(data, "full")
    hashed = apply_payload_fields(data, "hash")
    dropped = apply_payload_fields(data, "none")

    assert full["evidence"]["cases"][0]["prompt"] == "Who is [REDACTED:email]?"  # type: ignore[index]
    case = hashed["evidence"]["cases"][0]  # type: ignore[index]
    assert case["prompt"] == {
        "sha256": hashlib.sha256(b"Who is alice@example.com?").hexdigest(),
        "chars": 25,
    }
    assert case["latency_ms"] == 812
    assert dropped["evidence"]["cases"][0]["response"] == "[OMITTED]"  # type: ignore[index]
    assert data["evidence"]["cases"][0]["prompt"] == "Who is alice@example.com?"  # type: ignore[index]


CORPUS = [
    f"Authorization: Bearer {JWT}",
    f"authorization=BEARER {JWT}",
    f"curl -H 'Cookie: session=abc; id=7' -H \"X-Api-Key: {OPENAI_KEY}\"",
    f"routing_key={ROUTING_KEY} and Token token={ROUTING_KEY}",
    f"aws_secret_access_key = {AWS_SECRET} id {AWS_KEY_ID}",
    f"slack {SLACK_TOKEN} via https://hooks.slack.com/services/T000/B000/XXXX",
    "mail alice@example.com or call +44 20 7946 0958 or (415) 555-0132 or 030 1234 5678",
    "card 4111 1111 1111 1111, not 1700000000000 (epoch ms)",
    '{"password": "hunter2", "token": "abc", "secret": "x y"}',
    "PASSWORD: plain words with no digits",
    "support-bot p95 latency",
    "arize alert triggered: latency_p95_ms breach on support-bot v2026-11-20: 4870 > 2000",
    "api_\u212aey: kelvin-sign-key-0123456789",
    "\u017fecret=long-s-value",
    f"sha {SHA256_HEX} and uuid 7f3c2a9e-1b4d-4e8f-9a6b-2c5d8e0f1a3b",
    # Case folding reaches the gates too: the Kelvin sign is a 'k', the long s an 's'.
    "Coo\u212aie: session=abc",
    f"routing_\u212aey: {ROUTING_KEY}",
    f"aws_\u017fecret_access_key={AWS_SECRET}",
    f"TOKEN TOKEN={ROUTING_KEY}",
    "call 415.555.0132, 0301 234 567 or 030-1234-5678 or 4111-1111-1111-1111",
    "region: eu-west-1 and build 2026-11-20 at 10:15:00, 4870 > 2000 ms",
    "",
]


def every_rule(redactor: Redactor, text: str) -> str:
    """The reference without gates: each rule applied in turn, on the text as it stands."""
    for rule in redactor._rules:
        text = rule.pattern.sub(partial(redactor._replace, rule=rule), text)
    return text


@pytest.mark.parametrize(
    "redactor", [R, Redactor(mask="<{kind}:x=1>"), Redactor(field_names=frozenset({"region"}))]
)
@pytest.mark.parametrize("text", CORPUS)
def test_gates_change_nothing_that_the_rules_would_mask(redactor: Redactor, text: str) -> None:
    assert redactor.text(text) == every_rule(redactor, text)
    assert redactor.text(text) == every_rule(redactor, text)  # again, now maybe remembered


@pytest.mark.parametrize("text", CORPUS)
def test_every_match_of_a_rule_contains_its_gate(text: str) -> None:
    for rule in R._rules:
        for match in rule.pattern.finditer(text):
            assert rule.gate.search(match.group(0)), (rule.kind, match.group(0))


def test_a_secret_is_masked_every_time_it_is_seen() -> None:
    redactor = Redactor()
    line = f"token={OPENAI_KEY}"

    assert [redactor.text(line) for _ in range(3)] == [redactor.text(line)] * 3
    assert OPENAI_KEY not in redactor.text(line)
    assert redactor.text("support-bot") == "support-bot"


@pytest.mark.parametrize("policy", ["full", "hash", "none"])
def test_clean_is_the_payload_policy_then_redaction_in_one_walk(policy: PayloadPolicy) -> None:
    from enum import IntEnum, StrEnum
    from types import MappingProxyType

    from audit.redact import apply_payload_fields

    class Contact(StrEnum):
        owner = "ops@example.com"

    class Level(IntEnum):
        high = 3

    data = {
        "summary": f"Bearer {JWT}",
        # Leaves straight under a key (the fast path): numbers, None, and subclasses of both.
        "count": 3,
        "ratio": 0.5,
        "ok": False,
        "gone": None,
        "owner": Contact.owner,
        "level": Level.high,
        "prompt": "Who is alice@example.com?",
        "nested": ({"response": ["a", {"x": 1}], "token": "t"}, [None, 2.5, True]),
        "proxy": MappingProxyType({"prompt": "kept as text here", "secret": "s"}),
        "tags": {AWS_KEY_ID, "plain"},
        3: "a non-text key",
        "Messages": [{"role": "user", "content": "call +44 20 7946 0958"}],
    }

    assert R.clean(data, policy) == R.value(apply_payload_fields(data, policy, redactor=R))
