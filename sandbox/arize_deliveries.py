"""Send a webhook delivery to the service as Arize would: each auth mode, each signing-key form.

What Arize documents (its SDK's `WebhookAuthType`, see ../shared/ARIZE.md §1):

- `bearer`: the token the user stored is sent verbatim as the `Authorization` header (with or
  without a `Bearer ` prefix, as stored);
- `hmac`: `X-Arize-Webhook-Signature: v1=<hex HMAC-SHA256>` over `<timestamp>.<raw body>`, the
  timestamp (Unix seconds) in `X-Arize-Webhook-Timestamp`. Which key is used is not documented:
  `key_form` picks one of the three candidates (`whsec`: the whole `whsec_…` string,
  `after_prefix`: the text after `whsec_`, `base64`: that text base64-decoded);
- custom headers (up to 20), the third way: `header`.

Every delivery carries `X-Arize-Webhook-Id` (retries of one event keep it) and
`X-Arize-Webhook-Event`. The signing here is written from that description, not imported from
the service, so a test that passes proves the two agree.

    webhook = ArizeWebhook(url, auth="hmac", signing_secret=new_signing_secret())
    send(webhook, {"monitor_id": "m1", "status": "triggered"}, event="monitor.triggered")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

AuthMode = Literal["bearer", "hmac", "header", "none"]
KeyForm = Literal["whsec", "after_prefix", "base64"]
KEY_FORMS: tuple[KeyForm, ...] = ("whsec", "after_prefix", "base64")
PROMPT_LABELED = "prompt.version.labeled"
PROMPT_UNLABELED = "prompt.version.unlabeled"
PROMPT_CREATED = "prompt.version.created"


class Poster(Protocol):
    """What sends the request: an httpx.Client, or a FastAPI TestClient."""

    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST a body."""


def new_signing_secret() -> str:
    """Return a signing secret shaped like the one Arize shows once: `whsec_<base64>`."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(secret: str, key_form: KeyForm) -> bytes:
    """Return the HMAC key a signing secret stands for in one key form."""
    rest = secret.removeprefix("whsec_")
    if key_form == "whsec":
        return secret.encode()
    if key_form == "after_prefix":
        return rest.encode()
    return base64.b64decode(rest + "=" * (-len(rest) % 4))


def signature(secret: str, timestamp: int | str, body: bytes, key_form: KeyForm = "whsec") -> str:
    """Return the `v1=<hex>` value Arize puts in X-Arize-Webhook-Signature."""
    signed = f"{timestamp}.".encode() + body
    return "v1=" + hmac.new(signing_key(secret, key_form), signed, hashlib.sha256).hexdigest()


@dataclass
class ArizeWebhook:
    """A webhook as configured in Arize: where it posts and how it authenticates."""

    url: str
    auth: AuthMode = "bearer"
    token: str | None = None
    """bearer: the stored token, sent verbatim as Authorization (add `Bearer ` to send it so)."""
    signing_secret: str | None = None
    """hmac: the `whsec_…` secret."""
    key_form: KeyForm = "whsec"
    header_name: str = "X-Remediator-Webhook-Secret"
    header_value: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    old_signing_secrets: list[str] = field(default_factory=list)
    """hmac: secrets being rotated out; each adds a `v1=` value to the signature header."""

    def headers(
        self,
        body: bytes,
        *,
        event: str | None,
        webhook_id: str | None,
        timestamp: int | None = None,
    ) -> dict[str, str]:
        """Return the headers of one delivery of `body`."""
        headers = {"Content-Type": "application/json", **self.extra_headers}
        if webhook_id is not None:
            headers["X-Arize-Webhook-Id"] = webhook_id
        if event is not None:
            headers["X-Arize-Webhook-Event"] = event
        if self.auth == "bearer":
            assert self.token is not None, "a bearer webhook needs its token"
            headers["Authorization"] = self.token
        elif self.auth == "header":
            assert self.header_value is not None, "a header webhook needs its value"
            headers[self.header_name] = self.header_value
        elif self.auth == "hmac":
            assert self.signing_secret is not None, "an hmac webhook needs its signing secret"
            moment = int(time.time()) if timestamp is None else timestamp
            values = [
                signature(secret, moment, body, self.key_form)
                for secret in [self.signing_secret, *self.old_signing_secrets]
            ]
            headers["X-Arize-Webhook-Timestamp"] = str(moment)
            headers["X-Arize-Webhook-Signature"] = " ".join(values)
        return headers


def encode(payload: Mapping[str, Any] | bytes) -> bytes:
    """Return the raw body of a delivery (bytes are sent as they are)."""
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, separators=(",", ":")).encode()


def send(
    webhook: ArizeWebhook,
    payload: Mapping[str, Any] | bytes,
    *,
    event: str | None = None,
    webhook_id: str | None = None,
    timestamp: int | None = None,
    client: Poster | None = None,
) -> httpx.Response:
    """POST one delivery as Arize would; a new `webhook_id` unless one is given (a retry)."""
    body = encode(payload)
    headers = webhook.headers(
        body,
        event=event,
        webhook_id=webhook_id or f"evt_{uuid.uuid4().hex}",
        timestamp=timestamp,
    )
    if client is not None:
        return client.post(webhook.url, content=body, headers=headers)
    return httpx.post(webhook.url, content=body, headers=headers, timeout=10)


def prompt_event(
    event: str,
    *,
    prompt_id: str,
    version_id: str,
    label: str | None = None,
    prompt_name: str | None = None,
    user: str = "prompt-author@example.com",
    occurred_at: str | None = None,
) -> dict[str, Any]:
    """Return a plausible body of a prompt version event (Arize does not document one).

    Shaped like its other REST objects: the event's dotted name in `event`, the PromptVersion
    (`id`, `prompt_id`, `labels`) under `data`, the label moved beside it.
    """
    data: dict[str, Any] = {
        "prompt_version": {
            "id": version_id,
            "prompt_id": prompt_id,
            "labels": [label] if label and event == PROMPT_LABELED else [],
            "commit_message": "tune the system prompt",
        },
        "user": {"email": user},
    }
    if prompt_name is not None:
        data["prompt"] = {"id": prompt_id, "name": prompt_name}
    if label is not None:
        data["label"] = label
    body: dict[str, Any] = {"event": event, "data": data}
    if occurred_at is not None:
        body["occurred_at"] = occurred_at
    return body
