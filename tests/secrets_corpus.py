"""One corpus of secrets and personal data, planted by the redaction tests and searched for after.

Each entry is (kind, the text as planted, the needles that must be found nowhere). The values are
invented; each card passes the Luhn check and each IBAN its mod-97 check, as real ones do.
"""

from __future__ import annotations

OPENAI_KEY = "sk-proj-Q7vN2kLm9XcR4tB8wZ1yH6jD3fS0aP5eG_uIoKqVbTn"
ANTHROPIC_KEY = "sk-ant-api03-Xq3LmN8vB2cR7tY4wZ9kH1jD6fS0aP5eG-uIoKqVbTnMx2Lc8Rz"
GITHUB_TOKEN = "ghp_8kQm2NvX4cRt7LpZ1yWb6HsJ3dF0aG5eUiOq"
STRIPE_KEY = "sk_live_51HxQmN8vB2cR7tY4wZ9kH1jD"
GOOGLE_KEY = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
SLACK_TOKEN = "xoxb-2716493021-5520983344-Zr8QmT4vKx1bLp9WcY3nHs6D"
AWS_KEY_ID = "AKIAQX4RZ7M2KT5PLW9N"
AWS_SECRET = "Jh8sK2mQ9vX4cR7tB1yZ6wN3dF0aP5eG2uIoLkVb"
BEARER_TOKEN = "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c"
DB_PASSWORD = "Pa55w0rd-Db-2731"
JWT = (
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvbmNhbGwtYm90IiwicmVnaW9uIjoiZXUifQ"
    ".c2lnbmF0dXJlLXRlc3QtMTk5MDAx"
)
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"
PRIVATE_KEY = (
    f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictG\n"
    "-----END PRIVATE KEY-----"
)
EMAIL = "dana.whitfield@example.org"
PHONE_INTL = "+44 20 7946 0958"
PHONE_US = "(415) 555-0173"
CARD = "4539 0818 3658 4922"
CARD_RUN_TOGETHER = "5425941465415405"  # planted with 0042 right after it
CARD_AS_NUMBER = 6011160196674986
IBAN = "DE89 3704 0044 0532 0130 00"
SSN = "512-44-8301"
SLACK_WEBHOOK = "https://hooks.slack.com/services/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"
ROUTING_KEY = "R0ZZ8YQ2W1X4V7U6T5S3R9Q8P7O6N5M4"

PLANTED: list[tuple[str, str, list[str]]] = [
    ("openai_key", OPENAI_KEY, [OPENAI_KEY]),
    ("anthropic_key", ANTHROPIC_KEY, [ANTHROPIC_KEY]),
    ("github_token", GITHUB_TOKEN, [GITHUB_TOKEN]),
    ("stripe_key", STRIPE_KEY, [STRIPE_KEY]),
    ("google_key", GOOGLE_KEY, [GOOGLE_KEY]),
    ("slack_token", SLACK_TOKEN, [SLACK_TOKEN]),
    ("aws_key", f"aws_access_key_id={AWS_KEY_ID}", [AWS_KEY_ID]),
    ("aws_secret", f"aws_secret_access_key={AWS_SECRET}", [AWS_SECRET]),
    ("bearer", f"Authorization: Bearer {BEARER_TOKEN}", [BEARER_TOKEN]),
    ("url_password", f"postgres://svc_app:{DB_PASSWORD}@db.internal:5432/app", [DB_PASSWORD]),
    ("jwt", JWT, [JWT, JWT.split(".")[1]]),
    ("private_key", PRIVATE_KEY, [KEY_BODY, KEY_BODY[:40]]),
    ("email", EMAIL, [EMAIL]),
    ("phone_intl", PHONE_INTL, [PHONE_INTL]),
    ("phone_us", PHONE_US, [PHONE_US, "555-0173"]),
    ("card", CARD, [CARD, CARD.replace(" ", "")]),
    ("card_run_together", f"{CARD_RUN_TOGETHER}0042", [CARD_RUN_TOGETHER]),
    ("iban", IBAN, [IBAN, IBAN.replace(" ", "")]),
    ("ssn", SSN, [SSN]),
    ("slack_webhook", SLACK_WEBHOOK, [SLACK_WEBHOOK.rsplit("/", 1)[1]]),
    ("pagerduty_key", f"routing_key={ROUTING_KEY}", [ROUTING_KEY]),
]
"""(kind, text as planted, needles): 21 kinds of secret and personal data."""

NUMBER_NEEDLES = [str(CARD_AS_NUMBER)]
"""A card sent as a JSON number: its digits must be found nowhere either."""

NEEDLES: list[str] = [needle for _, _, needles in PLANTED for needle in needles] + NUMBER_NEEDLES


def texts() -> list[str]:
    """Return every planted text."""
    return [text for _, text, _ in PLANTED]


def sentence(*kinds: str) -> str:
    """Return one line holding the planted texts of these kinds (all of them when none given)."""
    chosen = [text for kind, text, _ in PLANTED if not kinds or kind in kinds]
    return " | ".join(chosen)


def found_in(haystack: str | bytes) -> list[str]:
    """Return the needles found in a text or in raw bytes."""
    if isinstance(haystack, bytes):
        return [n for n in NEEDLES if n.encode() in haystack]
    return [n for n in NEEDLES if n in haystack]
