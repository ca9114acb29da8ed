"""Mask secrets and personal data before they reach the audit trail, logs or Slack."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

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
    }
)

DEFAULT_MASK = "[REDACTED:{kind}]"
CLEAN_CACHE_SIZE = 4096
CLEAN_CACHE_CHARS = 256
_PLAIN_NUMBERS = (int, float, bool)
"""Leaf types that hold no text to redact (exact types: a subclass may render differently)."""
OMITTED = "[OMITTED]"

PayloadPolicy = Literal["full", "hash", "none"]

# Returns how many leading characters of the candidate to mask; 0 leaves it alone.
_Fit = Callable[[str], int]


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    fit: _Fit | None = None
    # A cheap pattern that every match of `pattern` contains: most text (names, ids, words)
    # fails every gate, and is then checked in microseconds instead of tens of them.
    gate: re.Pattern[str] = field(kw_only=True)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _fit_card(candidate: str) -> int:
    digits = re.sub(r"\D", "", candidate)
    separators = set(re.sub(r"\d", "", candidate))
    ok = 13 <= len(digits) <= 19 and len(separators) <= 1 and _luhn_ok(digits)
    return len(candidate) if ok else 0


def _fit_phone(max_digits: int) -> _Fit:
    def fit(candidate: str) -> int:
        # A greedy match may swallow a following number ("... 0958 3100 ms"), so mask the
        # longest prefix that ends on a digit group and has a plausible phone-number length.
        best, count = 0, 0
        for i, ch in enumerate(candidate):
            if not ch.isdigit():
                continue
            count += 1
            nxt = candidate[i + 1 : i + 2]
            if not nxt.isdigit() and 10 <= count <= max_digits:
                best = i + 2 if nxt == ")" else i + 1
        return best

    return fit


def _fit_bearer(candidate: str) -> int:
    # Prose such as "a Bearer authentication scheme" must survive; real tokens carry digits.
    looks_like_token = any(c.isdigit() for c in candidate) or len(candidate) >= 24
    return len(candidate) if len(candidate) >= 8 and looks_like_token else 0


_KV_SEP = r"""["']?\s*[:=]\s*["']?"""
_KV_GATE = re.compile(r"[:=]")

# Order matters: specific secrets first, so the generic field rule and PII rules see placeholders.
_SECRET_RULES: tuple[_Rule, ...] = (
    _Rule(
        "slack_webhook",
        re.compile(
            r"(?P<secret>https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]+)"
        ),
        gate=re.compile(r"hooks\.slack\.com/"),
    ),
    _Rule(
        "bearer",
        re.compile(
            r"(?<![\w-])(?i:bearer)\s+(?P<secret>[A-Za-z0-9._~+/-]*[A-Za-z0-9_~+/=-])", re.ASCII
        ),
        _fit_bearer,
        gate=re.compile(r"(?i:bearer)", re.ASCII),
    ),
    _Rule(
        "pagerduty_key",
        re.compile(
            r"(?<![A-Za-z0-9])(?:routing|integration|service)[_-]?key"
            + _KV_SEP
            + r"(?P<secret>[A-Za-z0-9]{32})(?![A-Za-z0-9])",
            re.IGNORECASE,
        ),
        gate=re.compile(r"key", re.IGNORECASE),
    ),
    _Rule(
        "pagerduty_key",
        re.compile(
            r"(?<![\w-])token\s+token=[\"']?(?P<secret>[A-Za-z0-9_+-]{20,64})(?![\w+-])",
            re.IGNORECASE,
        ),
        gate=re.compile(r"token=", re.IGNORECASE),
    ),
    _Rule(
        "aws_secret",
        re.compile(
            r"(?<![A-Za-z0-9])(?:aws[_-]?)?secret[_-]?(?:access[_-]?)?key"
            + _KV_SEP
            + r"(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
            re.IGNORECASE,
        ),
        gate=re.compile(r"secret", re.IGNORECASE),
    ),
    _Rule(
        "openai_key",
        re.compile(r"(?<![\w-])(?P<secret>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})"),
        gate=re.compile(r"sk-"),
    ),
    _Rule(
        "aws_key",
        re.compile(r"(?<![A-Za-z0-9])(?P<secret>(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Za-z0-9])"),
        gate=re.compile(r"AKIA|ASIA"),
    ),
    _Rule(
        "field",
        # A Cookie header's value runs to the end of the line: "a=1; b=2" is all secret.
        re.compile(r"(?<![\w-])(?:set-)?cookie\s*:\s*(?P<secret>[^\r\n\"]+)", re.IGNORECASE),
        gate=re.compile(r"cookie", re.IGNORECASE),
    ),
    _Rule(
        "slack_token",
        re.compile(r"(?<![\w-])(?P<secret>(?:xox[bpas]|xapp)-[A-Za-z0-9-]{10,})"),
        gate=re.compile(r"xox|xapp"),
    ),
)

_PII_RULES: tuple[_Rule, ...] = (
    _Rule(
        "email",
        re.compile(
            r"(?<![\w.%+-])(?P<secret>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
            r"\.[A-Za-z]{2,})(?![\w-])"
        ),
        gate=re.compile(r"@"),
    ),
    _Rule(
        "card",
        re.compile(
            # Issuer prefixes 2-6 keep epoch-millisecond timestamps (1...) from being candidates.
            r"(?<![\w.+/-])(?P<secret>[2-6]\d{3}(?:[ -]?\d{3,6}){2,4})(?![\w-]|[.:]\d)"
        ),
        _fit_card,
        gate=re.compile(r"[2-6]\d{3}[ -]?\d{3}"),
    ),
    _Rule(
        "phone",
        re.compile(
            r"(?<![\w+])(?P<secret>\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6})"
            r"(?![\w-]|[.:]\d)"
        ),
        _fit_phone(15),
        gate=re.compile(r"\+\d"),
    ),
    _Rule(
        "phone",
        re.compile(
            r"(?<![\w+./-])(?P<secret>(?:1[ .-])?(?:\(\d{3}\)[ ]?\d{3}[ .-]\d{4}"
            r"|\d{3}(?P<us_sep>[.-])\d{3}(?P=us_sep)\d{4}))(?![\w-]|[.:]\d)"
        ),
        gate=re.compile(r"\d{3}[ .-]\d{3}"),
    ),
    _Rule(
        "phone",
        re.compile(
            r"(?<![\w+./-])(?P<secret>0\d{1,4}(?P<eu_sep>[ .-])\d{2,4}(?:(?P=eu_sep)\d{2,4}){1,3})"
            r"(?![\w-]|[.:]\d)"
        ),
        _fit_phone(13),
        gate=re.compile(r"0\d{1,4}[ .-]\d{2}"),
    ),
)


@dataclass(frozen=True)
class Redactor:
    """Mask secrets and PII in text and nested values, naming what each mask replaced."""

    field_names: frozenset[str] = frozenset()
    mask: str = DEFAULT_MASK
    sensitive_fields: frozenset[str] = field(init=False, repr=False, compare=False)
    _rules: tuple[_Rule, ...] = field(init=False, repr=False, compare=False)
    # Short texts known to hold nothing to mask (ids, names, words repeat in every alert of a
    # monitor). Only clean text is kept, so no secret stays in memory because of it.
    _clean: set[str] = field(init=False, repr=False, compare=False, default_factory=set)

    def __post_init__(self) -> None:
        if "{kind}" not in self.mask:
            raise ValueError(f"mask must contain '{{kind}}', got {self.mask!r}")
        fields = DEFAULT_SENSITIVE_FIELDS | {name.lower() for name in self.field_names}
        object.__setattr__(self, "sensitive_fields", fields)
        object.__setattr__(self, "_rules", (*_SECRET_RULES, self._field_rule(), *_PII_RULES))

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
        """Return a redacted copy of `v`, walking dicts, lists, tuples and sets, never mutating."""
        if isinstance(v, str):
            return self.text(v)
        if v is None or isinstance(v, int | float):
            return v  # the common leaves, answered before the slower Mapping check
        if isinstance(v, Mapping):
            return {
                k: (
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

    def clean(self, v: object, policy: PayloadPolicy) -> object:
        """Return `v` as the audit trail keeps it, in one walk.

        The same as `self.value(apply_payload_fields(v, policy, redactor=self))`: prompt and
        response fields kept only as far as `policy` allows, secrets and PII masked everywhere.
        """
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            out: dict[object, object] = {}
            for k, item in v.items():
                name = k.lower() if isinstance(k, str) else None
                if name in self.sensitive_fields:
                    out[k] = self.placeholder("field")
                elif name in PAYLOAD_FIELDS:
                    out[k] = self.value(_payload_value(item, policy, self))
                # The common leaves are answered here: one call per node was a third of the
                # ack path's redaction time (an alert body is mostly flat text and numbers).
                elif type(item) is str:
                    out[k] = self.text(item)
                elif item is None or type(item) in _PLAIN_NUMBERS:
                    out[k] = item
                else:
                    out[k] = self.clean(item, policy)
            return out
        if isinstance(v, list | tuple):
            return [self.clean(item, policy) for item in v]
        return self.value(v)

    def _replace(self, m: re.Match[str], rule: _Rule) -> str:
        candidate = m.group("secret")
        n = rule.fit(candidate) if rule.fit is not None else len(candidate)
        if n == 0:
            return m.group(0)
        start, end = m.start("secret") - m.start(), m.end("secret") - m.start()
        whole = m.group(0)
        return whole[:start] + self.placeholder(rule.kind) + candidate[n:] + whole[end:]

    def _field_rule(self) -> _Rule:
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
        return _Rule("field", pattern, None, gate=_KV_GATE)


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
