"""FastAPI dependencies: the session, the service's parts, and bearer-token checks."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Engine
from sqlmodel import Session

from agent.adapters.checks import CachedChecks
from agent.alerts.intake import AlertIntake
from agent.review.service import ChainStatus
from agent.settings import Settings
from agent.store.audit_log import AuditLog
from agent.telemetry import metrics
from agent.wiring import Services
from runbooks.catalog import Catalog


@dataclass
class AppState:
    """What the routes need: the service's parts and the API's own, kept on app.state."""

    services: Services
    field_paths: dict[str, list[str]]
    """Where the Arize adapter finds each breach field (REMEDIATOR_ARIZE_FIELD_MAP)."""
    chain: ChainStatus
    """The audit chain's cached verification."""
    checks: CachedChecks
    """The doctor's cached rows, shown on /readyz."""
    intake: AlertIntake
    """The group-commit writer of accepted alerts."""
    integrations: dict[str, str] = field(default_factory=dict)
    worker_alive: Callable[[], bool] | None = None
    """Tells whether the in-process worker runs; None when there is none."""
    wake_worker: Callable[[], None] | None = None
    """Makes the in-process worker look for work now (after a decision)."""

    @property
    def settings(self) -> Settings:
        """Return the settings."""
        return self.services.settings

    @property
    def engine(self) -> Engine:
        """Return the database engine."""
        return self.services.engine

    @property
    def audit(self) -> AuditLog:
        """Return the audit log."""
        return self.services.audit

    @property
    def catalog(self) -> Catalog | None:
        """Return the service catalog, when one is configured."""
        return self.services.catalog

    @property
    def group_members(self) -> Callable[[str], set[str] | None] | None:
        """Return a Slack user group's members (approvers), when Slack is set up."""
        chat = self.services.adapters.chat
        return chat.group_members if chat is not None else None


async def get_services(request: Request) -> AppState:
    """Return the service's parts (async: FastAPI would run a plain def in a thread)."""
    app_state: AppState = request.app.state.app_state
    return app_state


AppStateDep = Annotated[AppState, Depends(get_services)]


def get_session(app_state: AppStateDep) -> Iterator[Session]:
    """Yield one session per request; the route commits what it writes."""
    with Session(app_state.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def read_bounded(
    request: Request, limit: int, on_too_large: Callable[[], None] | None = None
) -> bytes:
    """Read the raw body, answering 413 as soon as it passes `limit` (chunked bodies too).

    `on_too_large` is told first (the webhooks count the refusal).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        _too_large(limit, on_too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            _too_large(limit, on_too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int, on_too_large: Callable[[], None] | None) -> NoReturn:
    if on_too_large is not None:
        on_too_large()
    raise HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"body larger than the limit of {limit} bytes"
    )


def bearer_token(request: Request) -> str:
    """Return the request's bearer token, or answer 401 saying what is missing."""
    header = request.headers.get("authorization")
    if not header:
        _count_bad_token(request)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing Authorization header: send 'Authorization: Bearer <webhook token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        _count_bad_token(request)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Authorization header must be 'Bearer <webhook token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


async def require_webhook_token(request: Request, app_state: AppStateDep) -> None:
    """Let the request through only with the webhook token (compared in constant time).

    Async, though it never awaits: FastAPI runs a plain def dependency in a worker thread,
    and that hop cost more than the check.
    """
    check_webhook_token(request, app_state.settings)


def check_webhook_token(request: Request, settings: Settings) -> None:
    """Answer 401 unless the request carries the webhook token (compared in constant time)."""
    given = bearer_token(request).encode()
    expected = settings.webhook_token.get_secret_value().encode()
    if not hmac.compare_digest(given, expected):
        _count_bad_token(request)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid webhook token",
            headers={"WWW-Authenticate": "Bearer"},
        )


WebhookAuth = Depends(require_webhook_token)


def _count_bad_token(request: Request) -> None:
    """Count a webhook delivery refused for its token (other routes' 401s are not alerts)."""
    metrics.count_refused(request.scope["path"], "bad_token")


VIEWER_COOKIE = "remediator_viewer"
_SESSION_VERSION = "s1"


def _session_key(settings: Settings) -> bytes | None:
    """Return the key that signs viewer sessions: derived from the viewer token, so rotating
    the token invalidates every session signed before."""
    if settings.viewer_token is None:
        return None
    secret = settings.viewer_token.get_secret_value().encode()
    return hmac.new(secret, b"remediator viewer session key", "sha256").digest()


def new_viewer_session(settings: Settings, now: datetime) -> str | None:
    """Return a new session cookie value: random, signed, expiring after the session length.

    No session store: the value carries its expiry and an HMAC over it; a logout deletes it
    from the browser, and rotating the viewer token ends every session at once.
    """
    key = _session_key(settings)
    if key is None:
        return None
    expires = int(now.timestamp() + settings.viewer_session_seconds)
    payload = f"{_SESSION_VERSION}.{expires}.{secrets.token_urlsafe(16)}"
    return f"{payload}.{hmac.new(key, payload.encode(), 'sha256').hexdigest()}"


def viewer_session_valid(settings: Settings, value: str, now: datetime) -> bool:
    """Tell whether a session cookie was signed with the current viewer token and is unexpired."""
    key = _session_key(settings)
    payload, _, mac = value.rpartition(".")
    version, _, rest = payload.partition(".")
    expires, _, _nonce = rest.partition(".")
    if (
        key is None
        or version != _SESSION_VERSION
        or not (expires.isascii() and expires.isdigit())
        or len(expires) > 12
    ):
        return False
    expected = hmac.new(key, payload.encode(), "sha256").hexdigest()
    return hmac.compare_digest(mac.encode(), expected.encode()) and now.timestamp() < int(expires)


def is_viewer(request: Request, settings: Settings, now: datetime) -> bool:
    """Tell whether the request carries the viewer token or a valid viewer session cookie."""
    if settings.viewer_token is None:
        return False
    cookie = request.cookies.get(VIEWER_COOKIE)
    if cookie and viewer_session_valid(settings, cookie, now):
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and viewer_token_matches(settings, token)


def viewer_token_matches(settings: Settings, token: str) -> bool:
    """Compare a presented token with the viewer token in constant time."""
    if settings.viewer_token is None or not token.strip():
        return False
    expected = settings.viewer_token.get_secret_value().encode()
    return hmac.compare_digest(token.strip().encode(), expected)


def require_viewer(request: Request, app_state: AppStateDep) -> None:
    """Let the request through only for the `viewer` role."""
    if app_state.settings.viewer_token is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the review API is disabled: set REMEDIATOR_VIEWER_TOKEN to enable it",
        )
    if not is_viewer(request, app_state.settings, app_state.services.clock()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send 'Authorization: Bearer <viewer token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


ViewerAuth = Depends(require_viewer)
