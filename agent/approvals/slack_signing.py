"""Slack request signing: is this request from Slack, sent within the last five minutes?

The decision is `slack_sdk.signature.SignatureVerifier`'s (HMAC-SHA256 over `v0:{timestamp}:{raw
body}`, constant-time compare, ±300 s), run with the service's clock. This module only adds the
reason a request was refused, so the 401 says what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from slack_sdk.signature import Clock, SignatureVerifier

MAX_SKEW_SECONDS = 300
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"


class _FixedClock(Clock):
    """SignatureVerifier's clock, set to the service's own time."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def check_slack_signature(
    secret: str, body: bytes, headers: Mapping[str, str], now: Callable[[], float]
) -> str | None:
    """Return None for a genuine, fresh request; else why it is refused."""
    lowered = {key.lower(): value for key, value in headers.items()}
    timestamp, signature = lowered.get(TIMESTAMP_HEADER), lowered.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature header"
    if not timestamp.isascii() or not timestamp.isdigit():
        return f"X-Slack-Request-Timestamp {timestamp[:20]!r} is not unix seconds"
    moment = now()
    skew = moment - int(timestamp)
    if abs(skew) > MAX_SKEW_SECONDS:
        return (
            f"request timestamp is {abs(skew):.0f}s {'old' if skew > 0 else 'in the future'} "
            f"(more than {MAX_SKEW_SECONDS}s): a replay or a wrong clock"
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8, so it cannot have been signed by Slack"
    verifier = SignatureVerifier(secret, clock=_FixedClock(moment))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        return "signature does not match the body (wrong signing secret, or the body was changed)"
    return None
