"""The patterns the Redactor masks: vendors' secrets first, then personal data (PII).

Each rule has a cheap `gate` that every one of its matches contains, so most text (names, ids,
words) is answered by a few fast searches. A rule may check a candidate further (`fit`: how many
leading characters to mask; `rewrite`: the candidate with the masked parts replaced), so that
look-alike operational data (timestamps, ids, versions) is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# Returns how many leading characters of the candidate to mask; 0 leaves it alone.
Fit = Callable[[str], int]
# Returns the candidate with what must be masked replaced by the placeholder (given).
Rewrite = Callable[[str, str], str]


@dataclass(frozen=True)
class Rule:
    """One kind of secret or personal data: its pattern (group `secret`) and its gate."""

    kind: str
    pattern: re.Pattern[str]
    fit: Fit | None = None
    # A cheap pattern that every match of `pattern` contains: most text (names, ids, words)
    # fails every gate, and is then checked in microseconds instead of tens of them.
    gate: re.Pattern[str] = field(kw_only=True)
    rewrite: Rewrite | None = field(default=None, kw_only=True)


def luhn_ok(digits: str) -> bool:
    """Tell whether a digit string passes the Luhn check that card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


CARD_LENGTHS = (16, 15, 19, 18, 17, 14, 13)
"""Card lengths, the most common first: the one tried first where several would fit."""
_CARD_ISSUERS = frozenset("23456")
_GROUPS = re.compile(r"\d+")


def _is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in _CARD_ISSUERS and luhn_ok(digits)


def card_spans(candidate: str) -> list[tuple[int, int]]:
    """Return the (start, end) spans of `candidate` that are card numbers.

    A candidate is a run of digits, possibly in groups split by single spaces or dashes. The
    whole of it may be a card; else a card may sit among other numbers: whole groups of it
    ("4111 1111 1111 1111 123", two cards in a row), or, inside one unbroken run of digits, at
    either end of it ("…42" after a card) or, in a run too long to be one card, anywhere.
    """
    groups = [(m.start(), m.end()) for m in _GROUPS.finditer(candidate)]
    digits = "".join(candidate[s:e] for s, e in groups)
    separators = {candidate[e] for _, e in groups[:-1]}
    if len(separators) <= 1 and _is_card(digits):
        return [(0, len(candidate))]
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(groups):
        found = _card_of_groups(candidate, groups, i)
        if found is not None:
            spans.append((groups[i][0], groups[found][1]))
            i = found + 1
            continue
        start, end = groups[i]
        spans += [(start + s, start + e) for s, e in _cards_in_run(candidate[start:end])]
        i += 1
    return spans


def _card_of_groups(candidate: str, groups: list[tuple[int, int]], first: int) -> int | None:
    """Return the last group of a card made of whole groups from `first`, or None."""
    ends: dict[int, int] = {}
    count = 0
    for last in range(first, len(groups)):
        count += groups[last][1] - groups[last][0]
        if count > 19:
            break
        if last > first and count >= 13:
            ends[count] = last
    for length in CARD_LENGTHS:
        last = ends.get(length, -1)
        if last < 0:
            continue
        start, end = groups[first][0], groups[last][1]
        text = candidate[start:end]
        if len(set(re.sub(r"\d", "", text))) <= 1 and _is_card(re.sub(r"\D", "", text)):
            return last
    return None


def _cards_in_run(run: str) -> list[tuple[int, int]]:
    """Return the card spans inside one unbroken run of digits."""
    n = len(run)
    if n < 13:
        return []
    if _is_card(run):
        return [(0, n)]
    if n <= 19:
        # A card run together with a short number: the card is at one end of the run.
        for length in CARD_LENGTHS:
            if length < n:
                for start in (0, n - length):
                    if _is_card(run[start : start + length]):
                        return [(start, start + length)]
        return []
    spans = []
    at = 0
    while at + 13 <= n:
        length = next((k for k in CARD_LENGTHS if _is_card(run[at : at + k])), 0)
        if length and at + length <= n:
            spans.append((at, at + length))
            at += length
        else:
            at += 1
    return spans


def rewrite_cards(candidate: str, placeholder: str) -> str:
    """Return `candidate` with each card number in it replaced by `placeholder`."""
    out = candidate
    for start, end in reversed(card_spans(candidate)):
        out = out[:start] + placeholder + out[end:]
    return out


def number_holds_card(number: int | float) -> bool:
    """Tell whether a JSON number's digits hold a card number (a card sent as a number)."""
    if -1e12 < number < 1e12 or number != number or number in (float("inf"), float("-inf")):
        return False
    digits = str(abs(int(number)))
    return bool(card_spans(digits))


def _fit_phone(max_digits: int) -> Fit:
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


def _fit_iban(candidate: str) -> int:
    # The pattern may run on into the next word; mask the longest prefix that is an IBAN.
    for end in range(len(candidate), 14, -1):
        compact = candidate[:end].replace(" ", "")
        if 15 <= len(compact) <= 34 and candidate[end - 1] != " " and _iban_ok(compact):
            return end
    return 0


def _iban_ok(compact: str) -> bool:
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


KV_SEP = r"""["']?\s*[:=]\s*["']?"""
KV_GATE = re.compile(r"[:=]")

# Vendors' API keys and tokens recognisable by their prefix alone (GitHub, GitLab, Stripe,
# Google, Hugging Face, SendGrid, xAI, npm, Google OAuth access tokens).
_VENDOR_KEYS = (
    r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}"
    r"|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|xai-[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}"
    r"|ya29\.[0-9A-Za-z_-]{20,}"
)

# Order matters: specific secrets first, so the generic field rule and PII rules see placeholders.
# A secret glued into an identifier ("svc-sk_live_…", "mon-ops@example.com-prod") is still one:
# the boundaries refuse letters and digits around it, not dashes or underscores.
SECRET_RULES: tuple[Rule, ...] = (
    Rule(
        "private_key",
        # A PEM block to its END line; with no END line (cut short), to the end of the text.
        re.compile(
            r"(?P<secret>-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*))",
            re.DOTALL,
        ),
        gate=re.compile(r"PRIVATE KEY"),
    ),
    Rule(
        "private_key",
        # A DER key or certificate in base64 without its PEM lines (an ASN.1 SEQUENCE: "MII…").
        re.compile(r"(?<![A-Za-z0-9+/])(?P<secret>MII[A-Za-z0-9+/]{60,}={0,2})"),
        gate=re.compile(r"MII[A-Za-z0-9+/]{60}"),
    ),
    Rule(
        "slack_webhook",
        re.compile(
            r"(?P<secret>https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]+)"
        ),
        gate=re.compile(r"hooks\.slack\.com/"),
    ),
    Rule(
        "url_credentials",
        # user:password@ (or a token@) in any URL: postgres://svc:hunter2@db, https://tok@host.
        re.compile(r"(?i:[a-z][a-z0-9+.-]*)://(?P<secret>[^\s/?#@\"'<>|\\]+)@"),
        gate=re.compile(r"://[^\s/?#@]*@"),
    ),
    Rule(
        "bearer",
        re.compile(
            r"(?<![\w-])(?i:bearer)\s+(?P<secret>[A-Za-z0-9._~+/-]*[A-Za-z0-9_~+/=-])", re.ASCII
        ),
        _fit_bearer,
        gate=re.compile(r"(?i:bearer)", re.ASCII),
    ),
    Rule(
        "jwt",
        re.compile(
            r"(?<![A-Za-z0-9])(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",
        ),
        gate=re.compile(r"eyJ"),
    ),
    Rule(
        "pagerduty_key",
        re.compile(
            r"(?<![A-Za-z0-9])(?:routing|integration|service)[_-]?key"
            + KV_SEP
            + r"(?P<secret>[A-Za-z0-9]{32})(?![A-Za-z0-9])",
            re.IGNORECASE,
        ),
        gate=re.compile(r"key", re.IGNORECASE),
    ),
    Rule(
        "pagerduty_key",
        re.compile(
            r"(?<![\w-])token\s+token=[\"']?(?P<secret>[A-Za-z0-9_+-]{20,64})(?![\w+-])",
            re.IGNORECASE,
        ),
        gate=re.compile(r"token=", re.IGNORECASE),
    ),
    Rule(
        "aws_secret",
        re.compile(
            r"(?<![A-Za-z0-9])(?:aws[_-]?)?secret[_-]?(?:access[_-]?)?key"
            + KV_SEP
            + r"(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
            re.IGNORECASE,
        ),
        gate=re.compile(r"secret", re.IGNORECASE),
    ),
    Rule(
        "openai_key",
        # OpenAI's keys, and Anthropic's (sk-ant-…), which share the prefix.
        re.compile(r"(?<![A-Za-z0-9])(?P<secret>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})"),
        gate=re.compile(r"sk-"),
    ),
    Rule(
        "api_key",
        re.compile(rf"(?<![A-Za-z0-9])(?P<secret>{_VENDOR_KEYS})"),
        gate=re.compile(
            r"gh[pousr]_|github_pat_|glpat-|_live_|_test_|AIza|hf_|SG\.|xai-|npm_|ya29\."
        ),
    ),
    Rule(
        "aws_key",
        re.compile(r"(?<![A-Za-z0-9])(?P<secret>(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Za-z0-9])"),
        gate=re.compile(r"AKIA|ASIA"),
    ),
    Rule(
        "field",
        # A Cookie header's value runs to the end of the line: "a=1; b=2" is all secret.
        re.compile(r"(?<![\w-])(?:set-)?cookie\s*:\s*(?P<secret>[^\r\n\"]+)", re.IGNORECASE),
        gate=re.compile(r"cookie", re.IGNORECASE),
    ),
    Rule(
        "slack_token",
        re.compile(r"(?<![A-Za-z0-9])(?P<secret>(?:xox[bpas]|xapp)-[A-Za-z0-9-]{10,})"),
        gate=re.compile(r"xox|xapp"),
    ),
)

PII_RULES: tuple[Rule, ...] = (
    Rule(
        "email",
        re.compile(
            r"(?<![\w.%+-])(?P<secret>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
            r"\.[A-Za-z]{2,})(?![A-Za-z0-9])"
        ),
        gate=re.compile(r"@"),
    ),
    Rule(
        "iban",
        re.compile(
            r"(?<![A-Za-z0-9])(?P<secret>[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)"
        ),
        _fit_iban,
        gate=re.compile(r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}"),
    ),
    Rule(
        "card",
        # Digits in groups split by single spaces or dashes; not the fraction of a decimal, nor
        # an international phone number (the phone rules below take those).
        re.compile(r"(?<![\d+])(?<!\d\.)(?P<secret>\d(?:[ -]?\d){12,})"),
        gate=re.compile(r"\d(?:[ -]?\d){12}"),
        rewrite=rewrite_cards,
    ),
    Rule(
        "national_id",
        # US social security numbers (123-45-6789) and UK National Insurance numbers.
        re.compile(
            r"(?<![A-Za-z0-9])(?<!\d-)(?P<secret>\d{3}-\d{2}-\d{4}"
            r"|[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D])"
            r"(?![A-Za-z0-9])(?!-\d)"
        ),
        gate=re.compile(r"\d{3}-\d{2}-\d{4}|[A-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]"),
    ),
    Rule(
        "phone",
        re.compile(
            r"(?<![A-Za-z0-9+])(?P<secret>\+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,6})"
            r"(?![A-Za-z0-9]|[.:/-]\d)"
        ),
        _fit_phone(15),
        gate=re.compile(r"\+\d"),
    ),
    Rule(
        "phone",
        re.compile(
            r"(?<![A-Za-z0-9+])(?<!\d[./-])(?P<secret>(?:1[ .-])?(?:\(\d{3}\)[ ]?\d{3}[ .-]\d{4}"
            r"|\d{3}(?P<us_sep>[.-])\d{3}(?P=us_sep)\d{4}))(?![A-Za-z0-9]|[.:/-]\d)"
        ),
        gate=re.compile(r"\d{3}[ .-]\d{3}"),
    ),
    Rule(
        "phone",
        re.compile(
            r"(?<![A-Za-z0-9+])(?<!\d[./-])"
            r"(?P<secret>0\d{1,4}(?P<eu_sep>[ .-])\d{2,4}(?:(?P=eu_sep)\d{2,4}){1,3})"
            r"(?![A-Za-z0-9]|[.:/-]\d)"
        ),
        _fit_phone(13),
        gate=re.compile(r"0\d{1,4}[ .-]\d{2}"),
    ),
)
