"""The audit signer: what signs checkpoints, from a key file (Ed25519) or AWS KMS.

Kept apart from the adapter factory so that the processes that only write the audit trail (the
intake's writer process) start without loading every SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog

from agent.settings import Settings
from audit.signing import Ed25519Signer, Signer, generate_key_file, public_path

log = structlog.get_logger(__name__)


def signer_factory(settings: Settings, env: Mapping[str, str]) -> Callable[[], Signer]:
    """Return what builds the audit signer: KMS when a key id is set, else the key file.

    Outside dev a missing key file is an error naming how to make one: a key that each process
    (or container) made for itself would sign with keys nobody was given to verify.
    """

    def build() -> Signer:
        if settings.audit_kms_key_id:
            # Imported here: boto3 is for those who sign with KMS, not for every writer process.
            from agent.adapters.factory import _aws_session
            from tools.signing.kms import KmsSigner, KmsSignError, make_kms_client

            client = make_kms_client(
                settings.aws_region,
                endpoint_url=settings.aws_endpoint_url,
                session=_aws_session(settings, env),
            )
            try:
                return KmsSigner(client, settings.audit_kms_key_id)
            except KmsSignError as exc:
                raise ValueError(str(exc)) from None
        path = settings.audit_signing_key_file
        if not path.exists():
            if settings.env != "dev":
                raise ValueError(
                    f"REMEDIATOR_AUDIT_SIGNING_KEY_FILE {path} does not exist: make one with "
                    f"`remediator audit keygen {path}` (or `openssl genpkey -algorithm ed25519`), "
                    "or set REMEDIATOR_AUDIT_KMS_KEY_ID"
                )
            if generate_key_file(path):
                public = str(public_path(path))
                log.warning("audit.signing_key_created", path=str(path), public=public)
        return Ed25519Signer.from_file(path)

    return build
