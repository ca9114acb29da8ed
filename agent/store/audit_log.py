"""The service's handle on the audit chain: the keys and the clock, bound once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NotRequired, TypedDict, Unpack

import structlog
from sqlalchemy import Engine
from sqlmodel import Session

from agent.settings import Settings
from agent.store.db import session_scope
from audit.chain import canonical_json
from audit.models import AuditCheckpoint, AuditEvent
from audit.proofs import EventProofs, NotCovered, prove_events, seal_export
from audit.redact import PayloadPolicy, Redactor
from audit.service import (
    NewEvent,
    VerifyResult,
    append_checkpoint_file,
    append_events,
    append_prepared,
    verify_chain,
    write_checkpoint,
)
from audit.signing import Signer, TrustedKeys
from audit.sqltypes import utcnow

STRICTNESS: dict[str, int] = {"full": 0, "hash": 1, "none": 2}
log = structlog.get_logger(__name__)


class EventFields(TypedDict):
    """Who wrote an event and what it is about, as `record`, `record_now` and `prepare` take them.

    `payload_policy` (a runbook's) tightens the service's policy for prompts and responses; the
    stricter of the two applies, never the looser.
    """

    actor: str
    incident_id: NotRequired[uuid.UUID | None]
    alert_id: NotRequired[uuid.UUID | None]
    payload_policy: NotRequired[PayloadPolicy | None]


@dataclass(frozen=True)
class AuditLog:
    """Write audit events with the chain key from Settings, redacting secrets and PII first.

    Checkpoints and exports are signed by the signer `make_signer` builds on first use (so a
    process that never signs never reads the private key, nor calls KMS); they verify with its
    public key and with `public_key_files`, the public keys of the keys it replaced.
    """

    key: bytes
    now: Callable[[], datetime] = utcnow
    redactor: Redactor = field(default_factory=Redactor)
    payload_policy: PayloadPolicy = "hash"
    make_signer: Callable[[], Signer] | None = None
    public_key_files: tuple[Path, ...] = ()
    _keys: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def signer(self) -> Signer:
        """Return the signer of checkpoints and exports; ValueError when none can be had."""
        with self._lock:
            if "signer" not in self._keys:
                if self.make_signer is None:
                    raise ValueError("no audit signing key is configured")
                self._keys["signer"] = self.make_signer()
            signer: Signer = self._keys["signer"]
            return signer

    def trusted(self) -> TrustedKeys:
        """Return the public keys checkpoints may be signed with: the signer's and earlier ones."""
        signer = self.signer()
        with self._lock:
            if "trusted" not in self._keys:
                earlier = TrustedKeys.from_files(self.public_key_files)
                self._keys["trusted"] = earlier.with_pem(signer.public_key_pem())
            trusted: TrustedKeys = self._keys["trusted"]
            return trusted

    def verify(self, session: Session, **options: Any) -> VerifyResult:
        """Verify the whole chain and every checkpoint (see audit.service.verify_chain)."""
        return verify_chain(session=session, key=self.key, trusted=self.trusted(), **options)

    def record(
        self, session: Session, kind: str, data: dict[str, Any], **fields: Unpack[EventFields]
    ) -> AuditEvent:
        """Append one event inside the caller's transaction (`fields`: see EventFields)."""
        new = self.prepare(kind, data, **fields)
        return append_prepared(session=session, key=self.key, event=new, now=self.now)

    def prepare(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        computed: dict[str, str] | None = None,
        **fields: Unpack[EventFields],
    ) -> NewEvent:
        """Redact an event now, outside any transaction, to be chained later by `record_many`.

        `computed` holds values the service made itself (a body's sha256): no caller's text is
        in them, so they are added as they are, after the rest is redacted.
        """
        cleaned = self._clean(data, fields.get("payload_policy"))
        if computed:
            assert isinstance(cleaned, dict)
            cleaned.update(computed)
        return NewEvent(
            kind=kind,
            actor=self.redactor.text(fields["actor"]),
            data=canonical_json(cleaned),
            incident_id=fields.get("incident_id"),
            alert_id=fields.get("alert_id"),
        )

    def record_many(self, session: Session, events: Sequence[NewEvent]) -> list[int]:
        """Append prepared events in this order inside the caller's transaction; return seqs."""
        return append_events(session=session, key=self.key, events=events, now=self.now)

    def record_now(
        self, engine: Engine, kind: str, data: dict[str, Any], **fields: Unpack[EventFields]
    ) -> AuditEvent:
        """Append one event in a transaction of its own (`fields`: see EventFields)."""
        with session_scope(engine) as session:
            return self.record(session, kind, data, **fields)

    def _clean(self, data: dict[str, Any], tighter: PayloadPolicy | None) -> object:
        """Apply the prompt/response policy, then mask secrets and PII everywhere else."""
        policy = self.payload_policy
        if tighter is not None and STRICTNESS[tighter] > STRICTNESS[policy]:
            policy = tighter
        return self.redactor.clean(data, policy)

    def checkpoint(self, engine: Engine, copy_to: Path | None = None) -> AuditCheckpoint:
        """Sign the chain's head now; also append it to a file kept outside the database."""
        signer, trusted = self.signer(), self.trusted()
        with session_scope(engine) as session:
            checkpoint = write_checkpoint(
                session=session, signer=signer, trusted=trusted, key=self.key, now=self.now
            )
        if copy_to is not None:
            append_checkpoint_file(copy_to, checkpoint)
        return checkpoint

    def prove(
        self, engine: Engine, seqs: Sequence[int], copy_to: Path | None = None
    ) -> EventProofs:
        """Prove events in the signed chain, signing a checkpoint first if one is too new."""
        trusted = self.trusted()
        with Session(engine) as session:
            try:
                return prove_events(session=session, seqs=seqs, trusted=trusted)
            except NotCovered:
                pass
        try:
            self.checkpoint(engine, copy_to)
        except OSError:  # stored in the database all the same; the file is a copy
            log.warning("audit.checkpoint_file_failed", path=str(copy_to), exc_info=True)
        with Session(engine) as session:
            return prove_events(session=session, seqs=seqs, trusted=trusted)

    def seal(self, text: str) -> str:
        """Return an export with its signed seal appended (audit.proofs)."""
        return seal_export(text, self.signer(), self.now())


def make_audit(
    settings: Settings,
    now: Callable[[], datetime] = utcnow,
    make_signer: Callable[[], Signer] | None = None,
) -> AuditLog:
    """Return the audit log with the keys, redaction and payload policy of the settings."""
    return AuditLog(
        key=settings.audit_key.get_secret_value().encode(),
        now=now,
        redactor=Redactor(field_names=frozenset(settings.redact_fields)),
        payload_policy=settings.payload_policy,
        make_signer=make_signer,
        public_key_files=tuple(settings.audit_public_keys),
    )
