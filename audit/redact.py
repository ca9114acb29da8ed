"""Mask secrets and personal data before anything is stored or sent.

One Redactor is applied at the door (alert rows and events), to what probes read before it
enters a run's state, and to every outgoing payload (Slack, PagerDuty, logs). It masks secrets and
PII in text, in the keys of mappings as well as their values, and numbers that hold a card.
The patterns are in `audit.redact_rules`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from audit.redact_rules import KV_GATE, PII_RULES, SECRET_RULES, Rule, number_holds_card

DEFAULT_SENSITIVE_FIELDS: frozenset[str] = frozenset(
    {
        "password",
        "api_key",
        "authorization",
        "proxy-authorization",
        "token",
        "access_token",
        "refresh_token",
        "secret",
        "client_secret",
        "routing_key",
        "integration_key",
        "signing_secret",
        "aws_secret_access_key",
        "private_key",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "passwd",
        "pwd",
        "secret_key",
        "access_key",
        "auth_token",
        "session_token",
        "id_token",
        "x-auth-token",
        "private_token",
        "credentials",
        "ssn",
    }
)

DEFAULT_MASK = "[REDACTED:{kind}]"
CLEAN_CACHE_SIZE = 4096
CLEAN_CACHE_CHARS = 256
OMITTED = "[OMITTED]"

PayloadPolicy = Literal["full", "hash", "none"]


@dataclass(frozen=True)
class Redactor:
    """Mask secrets and PII in text and nested values, naming what each mask replaced."""

    field_names: frozenset[str] = frozenset()
    mask: str = DEFAULT_MASK
    sensitive_fields: frozenset[str] = field(init=False, repr=False, compare=False)
    _rules: tuple[Rule, ...] = field(init=False, repr=False, compare=False)
    # Short texts known to hold nothing to mask (ids, names, words repeat in every alert of a
    # monitor). Only clean text is kept, so no secret stays in memory because of it.
    _clean: set[str] = field(init=False, repr=False, compare=False, default_factory=set)

    def __post_init__(self) -> None:
        if "{kind}" not in self.mask:
            raise ValueError(f"mask must contain '{{kind}}', got {self.mask!r}")
        fields = DEFAULT_SENSITIVE_FIELDS | {name.lower() for name in self.field_names}
        object.__setattr__(self, "sensitive_fields", fields)
        object.__setattr__(self, "_rules", (*SECRET_RULES, self._field_rule(), *PII_RULES))

    def placeholder(self, kind: str) -> str:
        """Return the mask text for one kind of removed value."""
        return self.mask.replace("{kind}", kind)

    def text(self, s: str) -> str:
        """Return `s` with secrets and PII replaced by placeholders."""
        if s in self._clean:
            return s
        out = s
        for rule in self._rules:
            # Gated on the text as it is now: an earlier rule's placeholder may open a gate.
            if rule.gate.search(out):
                out = rule.pattern.sub(partial(self._replace, rule=rule), out)
        if out == s and len(s) <= CLEAN_CACHE_CHARS:
            if len(self._clean) >= CLEAN_CACHE_SIZE:
                self._clean.clear()
            self._clean.add(s)
        return out

    def value(self, v: object) -> object:
        """Return a redacted copy of `v`, walking dicts, lists, tuples and sets, never mutating.

        Keys are masked like values (a secret may be a dimension's name), and a number that
        holds a card number becomes the card's placeholder.
        """
        if isinstance(v, str):
            return self.text(v)
        if v is None or type(v) is bool:
            return v
        if type(v) is int or type(v) is float:
            return self.number(v)
        if isinstance(v, Mapping):
            return {
                self.key(k): (
                    self.placeholder("field")
                    if isinstance(k, str) and k.lower() in self.sensitive_fields
                    else self.value(item)
                )
                for k, item in v.items()
            }
        if isinstance(v, list):
            return [self.value(item) for item in v]
        if isinstance(v, tuple):
            return tuple(self.value(item) for item in v)
        if isinstance(v, set | frozenset):
            return type(v)(self.value(item) for item in v)
        return v

    def key(self, k: object) -> object:
        """Return a mapping's key as stored: text keys are redacted like any text."""
        return self.text(k) if isinstance(k, str) else self.value(k)

    def number(self, n: int | float) -> object:
        """Return a number as stored: the card placeholder when its digits hold a card number."""
        return self.placeholder("card") if number_holds_card(n) else n

    def clean(self, v: object, policy: PayloadPolicy) -> object:
        """Return `v` as the audit trail keeps it, in one walk.

        The same as `self.value(apply_payload_fields(v, policy, redactor=self))`: prompt and
        response fields kept only as far as `policy` allows, secrets and PII masked everywhere.
        """
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            out: dict[object, object] = {}
            # Keys and short texts repeat in every alert of a monitor: a set lookup answers
            # them here without a call (calls were most of the ack path's redaction time).
            known = self._clean
            sensitive = self.sensitive_fields
            for k, item in v.items():
                if type(k) is str:
                    key: object = k if k in known else self.text(k)
                    name: str | None = k.lower()
                else:
                    key, name = self.key(k), None
                if name in sensitive:
                    out[key] = self.placeholder("field")
                elif name in PAYLOAD_FIELDS:
                    out[key] = self.value(_payload_value(item, policy, self))
                elif type(item) is str:
                    out[key] = item if item in known else self.text(item)
                elif item is None or type(item) is bool:
                    out[key] = item
                elif type(item) is int or type(item) is float:
                    # Most numbers are far from a card's 13 digits: no call for them.
                    out[key] = item if -1e12 < item < 1e12 else self.number(item)
                else:
                    out[key] = self.clean(item, policy)
            return out
        if isinstance(v, list | tuple):
            return [self.clean(item, policy) for item in v]
        return self.value(v)

    def _replace(self, m: re.Match[str], rule: Rule) -> str:
        candidate = m.group("secret")
        if rule.kind in IDENTIFIER_LOOKALIKES and _inside_identifier(m):
            return m.group(0)
        if rule.rewrite is not None:
            start, end = m.start("secret") - m.start(), m.end("secret") - m.start()
            whole = m.group(0)
            return (
                whole[:start] + rule.rewrite(candidate, self.placeholder(rule.kind)) + whole[end:]
            )
        n = rule.fit(candidate) if rule.fit is not None else len(candidate)
        if n == 0:
            return m.group(0)
        start, end = m.start("secret") - m.start(), m.end("secret") - m.start()
        whole = m.group(0)
        return whole[:start] + self.placeholder(rule.kind) + candidate[n:] + whole[end:]

    def _field_rule(self) -> Rule:
        names = "|".join(re.escape(n) for n in sorted(self.sensitive_fields, key=len, reverse=True))
        before, _, after = self.mask.partition("{kind}")
        masked = re.escape(before) + r"\w+" + re.escape(after)
        # Values already masked by a specific rule ("Bearer [REDACTED:bearer]",
        # "Token token=[REDACTED:pagerduty_key]") keep that more precise label.
        pattern = re.compile(
            rf"(?<![\w-])(?:{names})[\"']?\s*[:=]\s*(?![\"']?(?:\w+\s+)?(?:\w+=)?{masked})"
            # Quotes stay outside the mask so JSON-looking text remains valid JSON.
            r"(?P<quote>[\"']?)(?P<secret>(?<=\")(?:[^\"\\]|\\.)*|(?<=')[^']*"
            r"|(?:(?:basic|bearer|digest|token)\s+)?[^\s,;&\"'<>{}\[\]]+)(?P=quote)",
            re.IGNORECASE,
        )
        # Not the names themselves: a case-insensitive alternation of them costs more to search
        # than this pattern does on text with a ':' or '=' (measured on an alert's summary).
        return Rule("field", pattern, None, gate=KV_GATE)


_DEFAULT_REDACTOR = Redactor()


def apply_payload_policy(
    text: str, policy: PayloadPolicy, *, redactor: Redactor | None = None
) -> str | dict[str, str | int]:
    """Return a prompt or response as stored under `policy`: redacted, hashed or omitted."""
    if policy == "full":
        return (redactor or _DEFAULT_REDACTOR).text(text)
    if policy == "hash":
        return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "chars": len(text)}
    if policy == "none":
        return OMITTED
    raise ValueError(f"unknown payload policy: {policy!r}")


PAYLOAD_FIELDS: frozenset[str] = frozenset({"prompt", "response", "completion", "messages"})


def apply_payload_fields(
    value: object, policy: PayloadPolicy, *, redactor: Redactor | None = None
) -> object:
    """Store every prompt/response field (by name, at any depth) only as far as `policy` allows."""
    if isinstance(value, dict):
        return {
            key: _payload_value(item, policy, redactor)
            if isinstance(key, str) and key.lower() in PAYLOAD_FIELDS
            else apply_payload_fields(item, policy, redactor=redactor)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [apply_payload_fields(item, policy, redactor=redactor) for item in value]
    return value


def _payload_value(value: object, policy: PayloadPolicy, redactor: Redactor | None) -> object:
    if isinstance(value, str):
        return apply_payload_policy(value, policy, redactor=redactor)
    if value is None:
        return None
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return apply_payload_policy(text, policy, redactor=redactor)


IDENTIFIER_LOOKALIKES = frozenset({"card", "phone", "national_id"})
"""The kinds whose digit groups an identifier's can look like: one random UUID in about 160, and
one hex digest in about 170, held a Luhn-valid run of 13+ digits or phone-shaped groups."""

IDENTIFIERS = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|(?<![0-9A-Za-z])(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])"
)
"""UUIDs, and hex digests (MD5 and longer, with a letter in them) standing as whole words."""


def _inside_identifier(m: re.Match[str]) -> bool:
    """Tell whether the match lies within a UUID or a hex digest: an id, never a secret. Other
    words keep their masks (`card4539…exp` is a card): a false mask is the safer mistake."""
    start, end = m.span("secret")
    return any(i.start() <= start and end <= i.end() for i in IDENTIFIERS.finditer(m.string))
