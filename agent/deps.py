"""FastAPI dependencies: the session, the service's parts, and bearer-token checks."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Engine
from sqlmodel import Session

from agent.auditlog import AuditLog
from agent.settings import Settings


@dataclass
class Services:
    """Everything the routes need, built once at start-up and kept on app.state."""

    settings: Settings
    engine: Engine
    audit: AuditLog
    field_paths: dict[str, list[str]]
    integrations: dict[str, str] = field(default_factory=dict)
    worker_alive: Any = None
    """A callable telling whether the in-process worker runs; None when there is none."""


def get_services(request: Request) -> Services:
    """Return the service's parts."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """Yield one session per request; the route commits what it writes."""
    with Session(services.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(request: Request) -> str:
    """Return the request's bearer token, or answer 401 saying what is missing."""
    header = request.headers.get("authorization")
    if not header:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing Authorization header: send 'Authorization: Bearer <webhook token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Authorization header must be 'Bearer <webhook token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def require_webhook_token(request: Request, services: ServicesDep) -> None:
    """Let the request through only with the webhook token (compared in constant time)."""
    given = bearer_token(request).encode()
    expected = services.settings.webhook_token.get_secret_value().encode()
    if not hmac.compare_digest(given, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid webhook token",
            headers={"WWW-Authenticate": "Bearer"},
        )


WebhookAuth = Depends(require_webhook_token)
