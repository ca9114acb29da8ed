"""Redaction of every kind in the corpus: in text, as keys, as numbers, run together with others."""

from __future__ import annotations

import json
from typing import Any

import pytest

from audit.redact import Redactor
from tests import secrets_corpus as corpus

R = Redactor()
KINDS = [pytest.param(text, needles, id=kind) for kind, text, needles in corpus.PLANTED]


@pytest.mark.parametrize(("text", "needles"), KINDS)
def test_each_kind_is_masked_in_free_text(text: str, needles: list[str]) -> None:
    out = R.text(f"while paging on-call: {text} (retrying in 30 s)")

    assert not [n for n in needles if n in out], out
    assert out.startswith("while paging on-call: ")
    assert out.endswith("(retrying in 30 s)") or "PRIVATE KEY" in text


@pytest.mark.parametrize(("text", "needles"), KINDS)
def test_each_kind_is_masked_when_it_is_a_key(text: str, needles: list[str]) -> None:
    data: dict[str, Any] = {"dimensions": {text: "eu-west-1"}, text: {"nested": [{text: 1}]}}

    for out in (R.value(data), R.clean(data, "full")):
        dumped = json.dumps(out)
        assert not [n for n in needles if n in dumped], dumped
        assert "eu-west-1" in dumped


def test_a_card_sent_as_a_json_number_is_masked_whole_and_as_a_float() -> None:
    data = {"current_value": corpus.CARD_AS_NUMBER, "threshold": float(corpus.CARD_AS_NUMBER)}

    for out in (R.value(data), R.clean(data, "full"), R.value([data])):
        assert str(corpus.CARD_AS_NUMBER) not in json.dumps(out)
    assert R.value(data) == {"current_value": "[REDACTED:card]", "threshold": "[REDACTED:card]"}


@pytest.mark.parametrize(
    "number",
    [4870, 0.25, 1764209665123, 1764209665123456789, 4539081836584923, -2000],
)
def test_numbers_that_hold_no_card_stay_numbers(number: float) -> None:
    assert R.value({"n": number}) == {"n": number}


@pytest.mark.parametrize(
    "text",
    [
        "4539081836584922 5425941465415405",  # two cards in a row
        "45390818365849225425941465415405",  # the same without a space
        "4539 0818 3658 4922 123",  # a card, then its CVV
        "4539-0818-3658-4922-77",
        "order 17 4539081836584922",
        "45390818365849221",  # one digit run on
        "ref994539081836584922",  # a card at the end of a longer number
        "card4539081836584922exp",
        "charged 4539081836584922.0 EUR",  # a card as a number written by a program
    ],
)
def test_a_card_run_together_with_another_number_is_masked(text: str) -> None:
    out = R.text(text)

    assert "[REDACTED:card]" in out
    for card in ("4539081836584922", "5425941465415405", "4539 0818 3658 4922"):
        assert card not in out
    assert "0818" not in out and "3658" not in out


def test_only_the_card_of_a_run_is_masked() -> None:
    assert R.text("4539 0818 3658 4922 123 exp 12/29") == "[REDACTED:card] 123 exp 12/29"
    assert R.text("a 4539081836584922 5425941465415405 b") == "a [REDACTED:card] [REDACTED:card] b"


@pytest.mark.parametrize(
    "text",
    [
        "trace 4f6b2c1d8e9a0b3c7d5e1f2a4b6c8d0e: 17 spans, p99 0.4539081836584922 s",
        "region eu-west-1 build 20261127103000 latency 3100 ms",
        "DEADBEEF12 and GB12 is a label",
        "AB123 and version v2.10.4-rc1",
    ],
)
def test_operational_values_next_to_the_new_kinds_are_left_alone(text: str) -> None:
    assert R.text(text) == text


def test_url_credentials_are_masked_but_the_url_stays_readable() -> None:
    out = R.text("connect postgres://svc:hunter2-9@db.internal:5432/app failed")

    assert out == "connect postgres://[REDACTED:url_credentials]@db.internal:5432/app failed"


def test_a_private_key_cut_short_is_masked_to_the_end() -> None:
    out = R.text(f"key: -----BEGIN RSA PRIVATE KEY-----\n{corpus.KEY_BODY}")

    assert out == "key: [REDACTED:private_key]"


def test_redaction_is_idempotent_on_the_whole_corpus() -> None:
    once = R.text(corpus.sentence())

    assert R.text(once) == once
    assert corpus.found_in(once) == []


@pytest.mark.parametrize("glue", ["-", "_", "/", ":", "=", "."])
@pytest.mark.parametrize(("text", "needles"), KINDS)
def test_each_kind_is_masked_when_glued_into_an_identifier(
    text: str, needles: list[str], glue: str
) -> None:
    out = R.text(f"mon{glue}{text}{glue}prod")

    assert not [n for n in needles if n in out], out


def test_identifiers_are_never_taken_for_cards_or_phone_numbers() -> None:
    # One random UUID in about 160 held a Luhn-valid run of digits, or phone-shaped groups: its
    # incident's links and ids came out masked. Ids and hashes must come through whole.
    import hashlib
    import random
    import uuid

    redactor = Redactor()
    draw = random.Random(20261206)
    for _ in range(20_000):
        ident = str(uuid.UUID(int=draw.getrandbits(128), version=4))
        digest = hashlib.sha256(ident.encode()).hexdigest()
        for text in (
            ident,
            ident.upper(),
            f"incident {ident} opened",
            f"/incidents/{ident}",
            digest,
        ):
            assert redactor.text(text) == text
    # The rules still hold beside an id.
    assert redactor.text(f"4111 1111 1111 1111 {ident}") == f"[REDACTED:card] {ident}"
    assert redactor.text(f"call 020-7946-0958 about {ident}") == (
        f"call [REDACTED:phone] about {ident}"
    )
