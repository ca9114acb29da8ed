"""What both PagerDuty adapters share: TLS trust, bounded retries, error text."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path
from typing import Any

import httpx2

ERROR_LIMIT = 1000
SUMMARY_LIMIT = 1024
"""Events API v2: at most this many characters of `payload.summary`."""
NOTE_LIMIT = 25_000
"""REST API v2: at most this many characters of a note's `content`."""


@functools.cache
def tls_verify(ca_bundle: Path | None) -> ssl.SSLContext:
    """Return the TLS context PagerDuty's clients verify with: the CA bundle's, or (None) the
    SDK's own default, the system's trust store.

    One per bundle, shared by every client: a context loads its own copy of the CA certificates
    (about 1 MB), and a team's pager each is a client each. A context is safe to share between
    clients and threads.
    """
    if ca_bundle is None:
        return httpx2.create_ssl_context()
    return ssl.create_default_context(cafile=str(ca_bundle))


def bound_retries(client: Any, timeout_seconds: float, retry_base_seconds: float) -> None:
    client.timeout = timeout_seconds
    # The SDK retries 429 forever by default; an incident cannot wait forever. Other 4xx are
    # not in the table, so they come back at once (401 raises inside the SDK).
    client.retry = {429: 3, 500: 2, 502: 2, 503: 3, 504: 3}
    client.max_http_attempts = 4
    client.max_network_attempts = 2
    client.sleep_timer = retry_base_seconds
    client.sleep_timer_base = 2


def rest_error(response: Any) -> tuple[str, int | None]:
    """Return REST API v2's error as text (message, code, errors) and its numeric code."""
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:ERROR_LIMIT], None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(body)[:ERROR_LIMIT], None
    code = error.get("code") if isinstance(error.get("code"), int) else None
    errors = [str(e) for e in error.get("errors") or []]
    text = "; ".join([str(error.get("message", "")), *errors]).strip("; ")
    return (f"{text} (code {code})" if code is not None else text), code


def error_detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)
    if isinstance(body, dict):
        errors = body.get("errors") or []
        message = body.get("message", "")
        return "; ".join([str(message), *map(str, errors)]).strip("; ")
    return str(body)
