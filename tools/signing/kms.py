"""Sign with an asymmetric key in AWS KMS: the private key never leaves KMS, only signatures do.

The key's spec picks the algorithm: ECC_NIST_EDWARDS25519 signs Ed25519 (ED25519_SHA_512 over the
raw message), ECC_NIST_P256/P384/P521 ECDSA with SHA-256/384/512, RSA keys RSASSA-PSS with SHA-256.
Every one verifies offline with the public key that `GetPublicKey` returns (audit.signing).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives.serialization import load_der_public_key

from audit.signing import ED25519, RSA_PSS, key_id_of, public_pem

# KMS key spec -> (KMS signing algorithm, the algorithm's name in the audit trail).
ALGORITHMS: dict[str, tuple[str, str]] = {
    "ECC_NIST_EDWARDS25519": ("ED25519_SHA_512", ED25519),
    "ECC_NIST_P256": ("ECDSA_SHA_256", "ecdsa-sha256"),
    "ECC_NIST_P384": ("ECDSA_SHA_384", "ecdsa-sha384"),
    "ECC_NIST_P521": ("ECDSA_SHA_512", "ecdsa-sha512"),
    "RSA_2048": ("RSASSA_PSS_SHA_256", RSA_PSS),
    "RSA_3072": ("RSASSA_PSS_SHA_256", RSA_PSS),
    "RSA_4096": ("RSASSA_PSS_SHA_256", RSA_PSS),
}


class KmsSignError(RuntimeError):
    """KMS refused or could not be reached: nothing was signed."""


def make_kms_client(
    region: str,
    *,
    endpoint_url: str | None = None,
    timeout_seconds: float = 5.0,
    session: boto3.Session | None = None,
) -> Any:
    """Return a KMS client with timeouts and botocore's bounded standard retries."""
    config = Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return (session or boto3.Session()).client(
        "kms", region_name=region, endpoint_url=endpoint_url, config=config
    )


class KmsSigner:
    """Sign audit checkpoints and exports with `kms:Sign` on one asymmetric KMS key."""

    def __init__(self, client: Any, key: str) -> None:
        """Read the key's public key and algorithm once (`kms:GetPublicKey`)."""
        self._client = client
        self._key = key
        try:
            answer = client.get_public_key(KeyId=key)
        except (BotoCoreError, ClientError) as exc:
            raise KmsSignError(f"KMS key {key}: cannot read its public key ({exc})") from None
        spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec", "")
        if answer.get("KeyUsage") != "SIGN_VERIFY" or spec not in ALGORITHMS:
            raise KmsSignError(
                f"KMS key {key} is {spec} for {answer.get('KeyUsage')}: an asymmetric SIGN_VERIFY "
                f"key is needed ({', '.join(ALGORITHMS)})"
            )
        self._kms_algorithm, self.algorithm = ALGORITHMS[spec]
        public = load_der_public_key(answer["PublicKey"])
        self.key_id = key_id_of(public)
        self._pem = public_pem(public)

    def public_key_pem(self) -> bytes:
        """Return the KMS key's public key (SubjectPublicKeyInfo, PEM)."""
        return self._pem

    def sign(self, message: bytes) -> bytes:
        """Return KMS's signature of `message` (sent whole: checkpoints are a few hundred bytes)."""
        try:
            answer = self._client.sign(
                KeyId=self._key,
                Message=message,
                MessageType="RAW",
                SigningAlgorithm=self._kms_algorithm,
            )
        except (BotoCoreError, ClientError) as exc:
            raise KmsSignError(f"KMS key {self._key} did not sign: {exc}") from None
        signature: bytes = answer["Signature"]
        return signature
