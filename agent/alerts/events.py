"""Arize deliveries that are not alerts: prompt version events as changes, the rest audited.

Each is stored once by its delivery id (X-Arize-Webhook-Id; `sha256:<body digest>` without one)
in `webhook_delivery`, whose unique key holds across replicas and processes: a retry answers
200 duplicate and writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from agent.alerts.arize_events import PromptChange
from agent.alerts.models import WebhookDelivery
from agent.alerts.service import INGRESS_ACTOR, DeliveryMeta
from agent.changes.models import DeploymentIn
from agent.changes.service import previous_prompt_version, record_deployment
from agent.store.audit_log import AuditLog
from agent.store.db import session_scope
from agent.store.values import text_problem
from audit.service import lock_head
from runbooks.catalog import Catalog

ARIZE_ACTOR = "arize"


class UnstorableEvent(ValueError):
    """The delivery holds text no database can store: refused (4xx), nothing written."""


@dataclass(frozen=True)
class EventReceipt:
    """What became of a non-alert delivery."""

    delivery_id: uuid.UUID
    created: bool
    outcome: str
    """`change` or `audited`."""
    change_ids: list[uuid.UUID] = field(default_factory=list)
    services: list[str] = field(default_factory=list)


def delivery_key(meta: DeliveryMeta, body_sha256: str) -> str:
    """Return the key a delivery is stored once by."""
    return meta.webhook_id or f"sha256:{body_sha256}"


def prompt_services(catalog: Catalog | None, change: PromptChange) -> tuple[list[str], str]:
    """Return the services a prompt belongs to, and by which rule.

    `catalog`: the catalog services whose `arize_prompts` list the prompt's id or name.
    `name`: otherwise, the service named like the prompt (its name, else its id), so that a
    prompt named after its service needs no catalog entry.
    """
    if catalog is not None:
        listed = catalog.services_for_prompt(
            prompt_id=change.prompt_id, prompt_name=change.prompt_name
        )
        if listed:
            return listed, "catalog"
    return [change.prompt_name or change.prompt], "name"


def accept_event(
    engine: Engine,
    audit: AuditLog,
    *,
    source: str,
    meta: DeliveryMeta,
    body_sha256: str,
    payload: dict[str, Any],
    prompt: PromptChange | None,
    catalog: Catalog | None,
    signed_sha256: str | None = None,
) -> EventReceipt:
    """Store a non-alert delivery once (its changes and its audit event); say if it is new.

    A delivery is known by its id, or, signed (`signed_sha256`), by what was signed: a replay
    under another id is a duplicate too. A concurrent copy that won the race on a unique key
    is answered as a duplicate.
    """
    key = delivery_key(meta, body_sha256)
    try:
        with session_scope(engine) as session:
            return _accept(
                session,
                audit,
                source,
                key,
                meta,
                (body_sha256, signed_sha256),
                payload,
                prompt,
                catalog,
            )
    except IntegrityError:
        with Session(engine) as session:
            known = _known(session, source, key, signed_sha256)
        if known is None:
            raise
        return known


def _known(
    session: Session, source: str, key: str, signed_sha256: str | None
) -> EventReceipt | None:
    same = col(WebhookDelivery.webhook_id) == key
    if signed_sha256 is not None:
        same = or_(same, col(WebhookDelivery.signed_sha256) == signed_sha256)
    row = session.exec(
        select(WebhookDelivery).where(col(WebhookDelivery.source) == source, same)
    ).first()
    return EventReceipt(row.id, created=False, outcome=row.outcome) if row else None


def _accept(
    session: Session,
    audit: AuditLog,
    source: str,
    key: str,
    meta: DeliveryMeta,
    digests: tuple[str, str | None],
    payload: dict[str, Any],
    prompt: PromptChange | None,
    catalog: Catalog | None,
) -> EventReceipt:
    body_sha256, signed_sha256 = digests
    # Every writer of the audit chain takes this lock first: no other transaction can store
    # this delivery between the lookup and the insert (the unique key is the last guard).
    lock_head(session=session)
    known = _known(session, source, key, signed_sha256)
    if known is not None:
        return known
    changes = []
    services: list[str] = []
    mapped_by = None
    if prompt is not None:
        services, mapped_by = prompt_services(catalog, prompt)
        previous = prompt.previous_version
        if previous is None and prompt.action == "labeled" and prompt.label:
            previous = previous_prompt_version(
                session=session, prompt_id=prompt.prompt, label=prompt.label, version=prompt.version
            )
        for service in services:
            change = DeploymentIn(
                service=service,
                kind="prompt",
                version=prompt.version,
                previous_version=previous,
                prompt_id=prompt.prompt,
                label=prompt.label,
                deployed_at=prompt.at,
                actor=prompt.actor,
                description=prompt.commit_message,
            )
            changes.append(
                record_deployment(
                    session=session,
                    audit=audit,
                    change=change,
                    prompt_name=prompt.prompt_name,
                    event=meta.event,
                    default_actor=ARIZE_ACTOR,
                )
            )
    outcome = "change" if prompt is not None else "audited"
    row = WebhookDelivery(
        source=source,
        webhook_id=key,
        event=meta.event,
        auth_mode=meta.auth_mode or "none",
        outcome=outcome,
        body_sha256=body_sha256,
        signed_sha256=signed_sha256,
        received_at=audit.now(),
    )
    session.add(row)
    session.flush()
    what = (
        f"recorded as a prompt change of {', '.join(services)} (by {mapped_by})"
        if prompt is not None
        else "audited only: not a monitor alert"
    )
    event = audit.prepare(
        f"{source}.event.received",
        {
            "summary": f"{source} event {meta.event or 'of no type'}: {what}",
            "delivery": meta.audited(),
            "outcome": outcome,
            "services": services,
            "mapped_by": mapped_by,
            "change_ids": [str(c.id) for c in changes],
            "raw": payload,
        },
        actor=INGRESS_ACTOR,
        computed={"body_sha256": body_sha256},
    )
    problem = text_problem(event.data)
    if problem is not None:
        raise UnstorableEvent(f"the delivery's body {problem}")
    audit.record_many(session, [event])
    return EventReceipt(
        row.id, created=True, outcome=outcome, change_ids=[c.id for c in changes], services=services
    )
