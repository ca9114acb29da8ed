"""Is this delivery from Arize? The three ways an Arize webhook authenticates (ARIZE.md §1).

- `bearer`: Arize sends the token the user stored **verbatim** as the `Authorization` header, so
  it may or may not start with `Bearer `; both are accepted (REMEDIATOR_WEBHOOK_TOKEN).
- `hmac`: `X-Arize-Webhook-Signature: v1=<hex HMAC-SHA256>` over `<timestamp>.<raw body>`, the
  timestamp being header `X-Arize-Webhook-Timestamp` (Unix seconds), within ±300 s. Which key
  Arize uses is not documented: the whole `whsec_…` string, the text after `whsec_`, or that
  text base64-decoded; each is tried, and the one that matched is reported (and audited), so
  a deployment learns which it is. Several `v1=` values may be sent (secret rotation); one
  matching is enough.
- `header`: a custom header (Arize allows up to 20 per webhook) carrying a shared secret.

Every comparison of a secret is in constant time. A refusal says why, never the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers

from agent.settings import Settings

MAX_SKEW_SECONDS = 300
SIGNATURE_HEADER = "x-arize-webhook-signature"
TIMESTAMP_HEADER = "x-arize-webhook-timestamp"
SECRET_PREFIX = "whsec_"
_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class Verified:
    """How a delivery proved it came from Arize."""

    mode: str
    """`bearer`, `hmac` or `header`."""
    key_form: str | None = None
    """For `hmac`: which form of the signing secret matched (`whsec`, `after_prefix`, `base64`)."""
    signed_sha256: str | None = None
    """For `hmac`: the sha256 of what was signed (`<timestamp>.<body>`): a replay of a signed
    delivery under another X-Arize-Webhook-Id (a header the signature does not cover) has it too."""


class AuthRefused(Exception):
    """The delivery is not authenticated; the message says why (answered 401)."""


def check_bearer(authorization: str | None, token: str) -> Verified:
    """Accept `Authorization: <token>` and `Authorization: Bearer <token>` alike.

    A token configured with its own `Bearer ` prefix is compared without it.
    """
    if not authorization or not authorization.strip():
        raise AuthRefused(
            "missing Authorization header: Arize sends the webhook's stored token as "
            "Authorization (REMEDIATOR_ARIZE_AUTH=bearer, the token REMEDIATOR_WEBHOOK_TOKEN)"
        )
    given = _without_scheme(authorization).encode()
    expected = _without_scheme(token).encode()
    if not expected or not hmac.compare_digest(given, expected):
        raise AuthRefused(
            "invalid webhook token: the Authorization header must be 'Bearer <webhook token>' "
            "or the token itself, as stored in Arize"
        )
    return Verified("bearer")


def _without_scheme(value: str) -> str:
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else value


def check_header(value: str | None, name: str, secret: str) -> Verified:
    """Accept a delivery whose custom header `name` carries the shared secret."""
    if value is None or not value.strip():
        raise AuthRefused(f"missing {name} header (REMEDIATOR_ARIZE_AUTH=header)")
    if not hmac.compare_digest(value.strip().encode(), secret.strip().encode()):
        raise AuthRefused(f"{name} header does not match the configured secret")
    return Verified("header")


def signing_keys(secret: str) -> list[tuple[str, bytes]]:
    """Return each key the signing secret may stand for, named, without repeats.

    `whsec` is the whole string as Arize shows it, `after_prefix` the text after `whsec_`,
    `base64` that text base64-decoded (standard or URL-safe alphabet, padding optional).
    """
    secret = secret.strip()
    rest = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else ""
    forms: list[tuple[str, bytes]] = [("whsec", secret.encode())]
    if rest:
        forms.append(("after_prefix", rest.encode()))
    encoded = rest or secret
    padded = encoded + "=" * (-len(encoded) % 4)
    for alphabet in (padded, padded.replace("-", "+").replace("_", "/")):
        try:
            forms.append(("base64", base64.b64decode(alphabet.encode(), validate=True)))
        except (binascii.Error, ValueError):
            continue
    unique: list[tuple[str, bytes]] = []
    for name, key in forms:
        if key and all(key != known for _, known in unique):
            unique.append((name, key))
    return unique


def parse_signatures(headers: Iterable[str]) -> list[str]:
    """Return the `v1=` hex digests of the signature header(s), lower-cased.

    Values may be separated by commas or spaces, and the header may be repeated.
    """
    found = []
    for header in headers:
        for part in re.split(r"[,\s]+", header.strip()):
            scheme, _, digest = part.partition("=")
            if scheme.strip().lower() == "v1" and _HEX_SHA256.match(digest.strip()):
                found.append(digest.strip().lower())
    return found


def check_signature(
    secret: str,
    body: bytes,
    *,
    signatures: Iterable[str],
    timestamp: str | None,
    now: float,
) -> Verified:
    """Accept a delivery signed with the secret (any key form) within ±300 s of `now`."""
    headers = [value for value in signatures if value.strip()]
    if not headers or not timestamp:
        missing = [
            name
            for name, value in (
                ("X-Arize-Webhook-Signature", headers),
                ("X-Arize-Webhook-Timestamp", timestamp),
            )
            if not value
        ]
        raise AuthRefused(f"missing {' and '.join(missing)} header (REMEDIATOR_ARIZE_AUTH=hmac)")
    timestamp = timestamp.strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise AuthRefused(f"X-Arize-Webhook-Timestamp {timestamp[:20]!r} is not Unix seconds")
    skew = now - int(timestamp)
    if abs(skew) > MAX_SKEW_SECONDS:
        raise AuthRefused(
            f"X-Arize-Webhook-Timestamp is {abs(skew):.0f}s "
            f"{'old' if skew > 0 else 'in the future'} (more than {MAX_SKEW_SECONDS}s): "
            "a replay or a wrong clock"
        )
    given = parse_signatures(headers)
    if not given:
        raise AuthRefused("X-Arize-Webhook-Signature holds no v1=<hex HMAC-SHA256> value")
    signed = timestamp.encode() + b"." + body
    for form, key in signing_keys(secret):
        expected = hmac.new(key, signed, hashlib.sha256).hexdigest().encode()
        if any(hmac.compare_digest(expected, digest.encode()) for digest in given):
            return Verified("hmac", form, hashlib.sha256(signed).hexdigest())
    raise AuthRefused(
        "signature does not match the body (wrong signing secret, or the body or timestamp "
        "was changed)"
    )


def needs_body(settings: Settings) -> bool:
    """Tell whether the delivery's body must be read before it can be authenticated."""
    return settings.arize_auth == "hmac"


def authenticate(settings: Settings, headers: Headers, body: bytes, now: float) -> Verified:
    """Authenticate one Arize delivery the way the settings say; raise AuthRefused saying why.

    `body` is the raw body (only `hmac` reads it; the others may be given b"" before it is read).
    """
    if settings.arize_auth == "hmac":
        secret = settings.arize_signing_secret
        assert secret is not None, "the settings refuse hmac without a signing secret"
        return check_signature(
            secret.get_secret_value(),
            body,
            signatures=headers.getlist(SIGNATURE_HEADER),
            timestamp=headers.get(TIMESTAMP_HEADER),
            now=now,
        )
    if settings.arize_auth == "header":
        header_secret = settings.arize_header_secret
        assert header_secret is not None, "the settings refuse header without a secret"
        name = settings.arize_header_name
        return check_header(headers.get(name), name, header_secret.get_secret_value())
    return check_bearer(headers.get("authorization"), settings.webhook_token.get_secret_value())
