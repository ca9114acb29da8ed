"""Self-verifying exports: an incident's events, with proof that each is in the signed chain.

An export (JSON Lines) carries, beside what a reader wants, what a verifier with nothing but the
public key needs:

- each event exactly as stored (its fields, `prev_hash` and `hash`) and its proof of inclusion:
  the Merkle audit path from the event's leaf (at its sequence number) to a checkpoint's root;
- those checkpoints, each signed with the service's private key (audit.checkpoints);
- a last line, the seal: the SHA-256 of every byte before it, signed with the same key.

An event is proven against the first checkpoint signed after it was written, whatever other
incidents' events lie between; the seal makes any other change to the file fail too.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from audit.chain import canonical_json, link_body
from audit.checkpoints import Checkpoint, read_leaves, tree_before, tree_checkpoints
from audit.merkle import PartialTree, leaf_hash, root_from_path
from audit.signing import Signer, TrustedKeys, encode_signature

EXPORT_FORMAT = "remediator-audit-export/1"


class NotCovered(Exception):
    """An event is newer than every signed checkpoint: sign one, then prove again."""


@dataclass(frozen=True)
class EventProofs:
    """The checkpoints an export carries and, for each event, (tree size, audit path)."""

    checkpoints: list[dict[str, Any]]
    paths: dict[int, tuple[int, list[str]]]

    def proof(self, seq: int) -> dict[str, Any]:
        """Return event `seq`'s proof as exported."""
        tree_size, path = self.paths[seq]
        return {"tree_size": tree_size, "path": path}


def prove_events(
    *, session: Session, seqs: Sequence[int], trusted: TrustedKeys | None = None
) -> EventProofs:
    """Prove each event against the first signed checkpoint that covers it.

    Only checkpoints whose signature verifies with `trusted` are used. Raises NotCovered when an
    event is newer than every checkpoint, ValueError when a checkpoint's root is not the chain's.
    """
    checkpoints = [
        row
        for row in tree_checkpoints(session=session)
        if trusted is None or Checkpoint.of(row).problem(key=None, trusted=trusted) is None
    ]
    heads = [row.head_seq for row in checkpoints]
    groups: dict[int, list[int]] = {}
    for seq in sorted(set(seqs)):
        at = bisect.bisect_left(heads, seq)
        if at == len(heads):
            raise NotCovered(f"event {seq} is newer than every signed checkpoint")
        groups.setdefault(at, []).append(seq)
    exported, paths = [], {}
    for at, group in groups.items():
        row = checkpoints[at]
        base, _ = tree_before(session=session, seq=group[0], trusted=trusted)
        tree = PartialTree(
            base, read_leaves(session=session, start=base.size + 1, end=row.head_seq)
        )
        if tree.root().hex() != row.tree_root:
            raise ValueError(
                f"the checkpoint of event {row.head_seq} does not sign the chain's events: "
                "run `remediator audit verify`"
            )
        for seq in group:
            paths[seq] = (row.head_seq, [node.hex() for node in tree.inclusion(seq - 1)])
        exported.append(
            {
                "type": "checkpoint",
                "tree_size": row.head_seq,
                "tree_root": row.tree_root,
                "head_hash": row.head_hash,
                "created_at": row.created_at.isoformat(),
                "key_id": row.key_id,
                "algorithm": row.algorithm,
                "signature": row.signature,
            }
        )
    return EventProofs(exported, paths)


def seal_message(*, key_id: str, algorithm: str, sha256: str, signed_at: str) -> bytes:
    """Return the bytes an export's seal signs."""
    return "\n".join((EXPORT_FORMAT, key_id, algorithm, sha256, signed_at)).encode()


def seal_export(text: str, signer: Signer, now: datetime) -> str:
    """Return the export with its seal appended: its SHA-256, signed."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    signed_at = now.isoformat()
    message = seal_message(
        key_id=signer.key_id, algorithm=signer.algorithm, sha256=digest, signed_at=signed_at
    )
    seal = {
        "type": "seal",
        "format": EXPORT_FORMAT,
        "key_id": signer.key_id,
        "algorithm": signer.algorithm,
        "sha256": digest,
        "signed_at": signed_at,
        "signature": encode_signature(signer.sign(message)),
    }
    return text + _line(seal)


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"


@dataclass
class ExportVerdict:
    """What verifying an export found: what was proven, or the first reason it failed."""

    ok: bool
    reason: str | None = None
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    incident_id: str | None = None
    checkpoints: list[tuple[int, str, str]] = field(default_factory=list)
    """(tree size, key id, signed at) of each checkpoint the events are proven against."""
    sealed_by: str | None = None
    sealed_at: str | None = None


class _Refused(Exception):
    pass


def verify_export(raw: bytes, trusted: TrustedKeys) -> ExportVerdict:
    """Check an export with public keys alone: its seal, its checkpoints, every event's proof."""
    verdict = ExportVerdict(ok=False)
    try:
        _check(raw, trusted, verdict)
    except _Refused as exc:
        verdict.reason = str(exc)
        return verdict
    verdict.ok = True
    return verdict


def _check(raw: bytes, trusted: TrustedKeys, verdict: ExportVerdict) -> None:
    if not raw.endswith(b"\n"):
        raise _Refused("the file does not end with its seal line (cut short?)")
    cut = raw.rstrip(b"\n").rfind(b"\n") + 1
    body, last = raw[:cut], raw[cut:]
    seal = _record(last, "the last line")
    fields = {"type", "format", "key_id", "algorithm", "sha256", "signed_at", "signature"}
    well_formed = set(seal) == fields and seal["type"] == "seal" and _line(seal).encode() == last
    if not well_formed or seal["format"] != EXPORT_FORMAT:
        raise _Refused("the last line is not the export's seal (added to or edited)")
    if hashlib.sha256(body).hexdigest() != seal.get("sha256"):
        raise _Refused("the file is not the one that was sealed: its SHA-256 differs")
    message = seal_message(
        key_id=str(seal.get("key_id")),
        algorithm=str(seal.get("algorithm")),
        sha256=str(seal.get("sha256")),
        signed_at=str(seal.get("signed_at")),
    )
    problem = trusted.check(
        key_id=str(seal.get("key_id")),
        algorithm=str(seal.get("algorithm")),
        message=message,
        signature=str(seal.get("signature")),
    )
    if problem is not None:
        raise _Refused(f"the seal is {problem}")
    verdict.sealed_by, verdict.sealed_at = str(seal["key_id"]), str(seal.get("signed_at"))
    records = [(number, _record(line, f"line {number}")) for number, line in _lines(body)]
    if not any(record.get("type") == "incident" for _, record in records):
        raise _Refused("the file holds no incident record: not an incident export")
    roots = _checkpoints(records, trusted, verdict)
    previous = 0
    for number, record in records:
        if record.get("type") == "incident":
            verdict.incident_id = str(record.get("id"))
        if record.get("type") != "event":
            continue
        seq = record.get("seq")
        where = f"line {number} (event {seq})"
        if not isinstance(seq, int) or isinstance(seq, bool) or seq <= previous:
            raise _Refused(f"{where}: sequence numbers must rise (reordered or edited)")
        reason = _event_problem(record, roots)
        if reason is not None:
            raise _Refused(f"{where}: {reason}")
        previous = seq
        verdict.events += 1
        verdict.first_seq = verdict.first_seq or seq
        verdict.last_seq = seq


def _lines(body: bytes) -> list[tuple[int, bytes]]:
    return [(n, line) for n, line in enumerate(body.split(b"\n")[:-1], start=1)]


def _record(line: bytes, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise _Refused(f"{where} is not JSON") from None
    if not isinstance(record, dict):
        raise _Refused(f"{where} is not a JSON object")
    return record


def _checkpoints(
    records: list[tuple[int, dict[str, Any]]], trusted: TrustedKeys, verdict: ExportVerdict
) -> dict[int, str]:
    """Check every checkpoint's signature; return each tree size's signed root."""
    roots: dict[int, str] = {}
    for number, record in records:
        if record.get("type") != "checkpoint":
            continue
        try:
            checkpoint = Checkpoint(
                head_seq=int(record["tree_size"]),
                head_hash=str(record["head_hash"]),
                created_at=datetime.fromisoformat(str(record["created_at"])),
                signature=str(record["signature"]),
                algorithm=str(record["algorithm"]),
                key_id=str(record["key_id"]),
                tree_root=str(record["tree_root"]),
            )
        except (KeyError, ValueError, TypeError):
            raise _Refused(f"line {number}: not a checkpoint") from None
        problem = checkpoint.problem(key=None, trusted=trusted)
        if problem is not None:
            raise _Refused(
                f"line {number}: the checkpoint of event {checkpoint.head_seq} {problem}"
            )
        if roots.setdefault(checkpoint.head_seq, str(checkpoint.tree_root)) != checkpoint.tree_root:
            raise _Refused(f"line {number}: two checkpoints of event {checkpoint.head_seq} differ")
        verdict.checkpoints.append(
            (checkpoint.head_seq, str(checkpoint.key_id), checkpoint.created_at.isoformat())
        )
    return roots


def _event_problem(record: dict[str, Any], roots: dict[int, str]) -> str | None:
    """Return why an event line is not proven in the chain, or None."""
    proof = record.get("proof")
    if not isinstance(proof, dict):
        return "carries no proof"
    tree_size, path = proof.get("tree_size"), proof.get("path")
    if not isinstance(tree_size, int) or tree_size not in roots:
        return f"its proof names a checkpoint of event {tree_size} that the file does not carry"
    texts = (record.get("ts"), record.get("actor"), record.get("kind"))
    hashes = (record.get("prev_hash"), record.get("hash"))
    ids = (record.get("incident_id"), record.get("alert_id"))
    if not all(isinstance(v, str) for v in (*texts, *hashes)) or not isinstance(path, list):
        return "a field of the event or of its proof is missing or of the wrong kind"
    if not all(v is None or isinstance(v, str) for v in ids):
        return "an id of the event is of the wrong kind"
    body = link_body(
        seq=record["seq"],
        ts=record["ts"],
        incident_id=ids[0],
        alert_id=ids[1],
        actor=record["actor"],
        kind=record["kind"],
        data=canonical_json(record.get("data")),
    )
    leaf = leaf_hash(prev_hash=record["prev_hash"], hash=record["hash"], body=body)
    try:
        siblings = [bytes.fromhex(node) for node in path]
    except (TypeError, ValueError):
        return "its proof is not a list of hex hashes"
    found = root_from_path(record["seq"] - 1, tree_size, leaf, siblings)
    if found is None or found.hex() != roots[tree_size]:
        return (
            f"not the event at sequence {record['seq']} under the checkpoint of event {tree_size} "
            "(altered, moved, or its proof edited)"
        )
    return None
