"""Asymmetric signatures of checkpoints and exports: a private key signs, public keys verify.

The service holds the private key (an Ed25519 file, or a key in AWS KMS that never leaves it);
auditors hold only public keys, which verify but cannot sign. Each signature names its key by id,
the SHA-256 of the public key's DER encoding, so after a rotation old signatures still find the
key that made them.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

ED25519 = "ed25519"
ECDSA: dict[str, type[hashes.HashAlgorithm]] = {
    "ecdsa-sha256": hashes.SHA256,
    "ecdsa-sha384": hashes.SHA384,
    "ecdsa-sha512": hashes.SHA512,
}
RSA_PSS = "rsa-pss-sha256"
ALGORITHMS = (ED25519, *ECDSA, RSA_PSS)


class Signer(Protocol):
    """Something that signs with a private key the verifier knows only by its public key."""

    @property
    def key_id(self) -> str:
        """Return the id of the public key that verifies this signer's signatures."""
        ...

    @property
    def algorithm(self) -> str:
        """Return the signature algorithm, one of ALGORITHMS."""
        ...

    def public_key_pem(self) -> bytes:
        """Return the public key (SubjectPublicKeyInfo, PEM)."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Return the signature of `message`."""
        ...


def key_id_of(public_key: PublicKeyTypes) -> str:
    """Return a public key's id: the first 32 hex digits of the SHA-256 of its DER encoding."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:32]


def public_pem(public_key: PublicKeyTypes) -> bytes:
    """Return a public key as SubjectPublicKeyInfo PEM."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Ed25519Signer:
    """Sign with an Ed25519 private key held in this process (read from a PEM file)."""

    algorithm = ED25519

    def __init__(self, private_key: ed25519.Ed25519PrivateKey) -> None:
        self._private = private_key
        self.key_id = key_id_of(private_key.public_key())

    @classmethod
    def from_file(cls, path: Path) -> Ed25519Signer:
        """Load an unencrypted PKCS#8 PEM Ed25519 key (`openssl genpkey -algorithm ed25519`)."""
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(loaded, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return cls(loaded)

    def public_key_pem(self) -> bytes:
        """Return the public key (SubjectPublicKeyInfo, PEM)."""
        return public_pem(self._private.public_key())

    def sign(self, message: bytes) -> bytes:
        """Return the Ed25519 signature of `message`."""
        return self._private.sign(message)


def generate_key_file(path: Path) -> bool:
    """Write a new Ed25519 private key to `path` (mode 0600) and its public key beside it.

    Returns False, writing nothing, when `path` already exists; processes racing to create it
    end up with one key (it is written aside, then linked into place, never half-written).
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:
            return False
    finally:
        aside.unlink(missing_ok=True)
    public_path(path).write_bytes(public_pem(private.public_key()))
    return True


def public_path(private_path: Path) -> Path:
    """Return where the public key of a private key file is written: `<file>.pub`."""
    return private_path.with_name(private_path.name + ".pub")


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a verifier trusts, by key id."""

    keys: Mapping[str, PublicKeyTypes]

    @classmethod
    def from_pems(cls, pems: Iterable[bytes]) -> TrustedKeys:
        """Trust these PEM public keys (a private key's PEM is refused: hand out public keys)."""
        keys: dict[str, PublicKeyTypes] = {}
        for pem in pems:
            try:
                key = serialization.load_pem_public_key(pem)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise ValueError(f"not a PEM public key ({exc})") from None
            keys[key_id_of(key)] = key
        return cls(keys)

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> TrustedKeys:
        """Trust the PEM public keys in these files; a bad file raises ValueError naming it."""
        pems = []
        for path in paths:
            try:
                pems.append(path.read_bytes())
                cls.from_pems(pems[-1:])
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: {exc}") from None
        return cls.from_pems(pems)

    def with_pem(self, pem: bytes) -> TrustedKeys:
        """Return these keys and one more."""
        return TrustedKeys({**self.keys, **TrustedKeys.from_pems([pem]).keys})

    def check(self, *, key_id: str, algorithm: str, message: bytes, signature: str) -> str | None:
        """Return None when `signature` (base64) is `key_id`'s over `message`, else why not."""
        key = self.keys.get(key_id)
        if key is None:
            return f"signed by key {key_id}, which is not among the trusted public keys"
        try:
            raw = base64.b64decode(signature, validate=True)
        except (ValueError, TypeError):
            return "the signature is not base64"
        try:
            _verify(key, algorithm, raw, message)
        except InvalidSignature:
            return f"the signature does not verify with key {key_id} (forged or edited)"
        except ValueError as exc:
            return str(exc)
        return None


def _verify(key: PublicKeyTypes, algorithm: str, signature: bytes, message: bytes) -> None:
    if algorithm == ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, message)
    elif algorithm in ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, message, ec.ECDSA(ECDSA[algorithm]()))
    elif algorithm == RSA_PSS and isinstance(key, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
        key.verify(signature, message, pss, hashes.SHA256())
    else:
        raise ValueError(f"algorithm {algorithm!r} does not fit a {type(key).__name__}")


def encode_signature(signature: bytes) -> str:
    """Return a signature as stored and exported: base64."""
    return base64.b64encode(signature).decode("ascii")
