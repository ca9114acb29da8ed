"""AWS KMS signs audit checkpoints (moto's KMS server); they verify offline with its public key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from agent.store.db import session_scope, upgrade
from agent.wiring import build_services
from audit.service import verify_chain, write_checkpoint
from audit.signing import TrustedKeys
from sandbox.aws import start_moto
from tests.audit.test_chain import KEY, write_events
from tests.conftest import make_settings
from tools.signing.kms import KmsSigner, KmsSignError, make_kms_client

REGION = "us-east-1"


@pytest.fixture(scope="module")
def kms_url() -> Iterator[str]:
    server, url = start_moto()
    yield url
    server.stop()


def new_key(url: str, spec: str, usage: str = "SIGN_VERIFY") -> str:
    client: Any = boto3.client("kms", region_name=REGION, endpoint_url=url)
    key_id: str = client.create_key(KeyUsage=usage, KeySpec=spec)["KeyMetadata"]["KeyId"]
    return key_id


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        ("ECC_NIST_P256", "ecdsa-sha256"),
        ("ECC_NIST_P384", "ecdsa-sha384"),
        ("RSA_2048", "rsa-pss-sha256"),
    ],
)
def test_kms_signs_checkpoints_that_verify_with_its_public_key_alone(
    migrated_engine: Engine, kms_url: str, spec: str, algorithm: str
) -> None:
    key = new_key(kms_url, spec)
    signer = KmsSigner(make_kms_client(REGION, endpoint_url=kms_url), key)
    write_events(migrated_engine, 3)

    with session_scope(migrated_engine) as session:
        row = write_checkpoint(session=session, signer=signer, key=KEY)

    assert (row.algorithm, row.key_id) == (algorithm, signer.key_id)
    public_only = TrustedKeys.from_pems([signer.public_key_pem()])
    with Session(migrated_engine) as session:
        assert verify_chain(session=session, key=KEY, trusted=public_only).ok
        another = KmsSigner(signer_client(kms_url), new_key(kms_url, spec))
        other = TrustedKeys.from_pems([another.public_key_pem()])
        refused = verify_chain(session=session, key=KEY, trusted=other)
    assert not refused.ok and f"signed by key {signer.key_id}" in (refused.reason or "")


def signer_client(url: str) -> Any:
    return make_kms_client(REGION, endpoint_url=url)


@pytest.mark.parametrize(
    ("spec", "usage"),
    [("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"), ("HMAC_256", "GENERATE_VERIFY_MAC")],
)
def test_a_kms_key_that_cannot_sign_is_refused_by_name(kms_url: str, spec: str, usage: str) -> None:
    key = new_key(kms_url, spec, usage)
    with pytest.raises(KmsSignError, match="asymmetric SIGN_VERIFY key is needed"):
        KmsSigner(signer_client(kms_url), key)
    with pytest.raises(KmsSignError, match="cannot read its public key"):
        KmsSigner(signer_client(kms_url), "alias/no-such-key")


def test_the_service_signs_with_kms_when_a_key_id_is_set(tmp_path: Path, kms_url: str) -> None:
    key = new_key(kms_url, "ECC_NIST_P256")
    client: Any = boto3.client("kms", region_name=REGION, endpoint_url=kms_url)
    client.create_alias(AliasName="alias/remediator-audit", TargetKeyId=key)
    settings = make_settings(
        tmp_path, audit_kms_key_id="alias/remediator-audit", aws_endpoint_url=kms_url
    )
    services = build_services(settings)
    upgrade(services.engine)
    services.audit.record_now(services.engine, "probe.completed", {"summary": "x"}, actor="agent")

    row = services.audit.checkpoint(services.engine)

    signer = services.audit.signer()
    assert (row.key_id, row.algorithm) == (signer.key_id, "ecdsa-sha256")
    with Session(services.engine) as session:
        assert services.audit.verify(session).ok
    assert not settings.audit_signing_key_file.exists()  # no key file is made when KMS signs
