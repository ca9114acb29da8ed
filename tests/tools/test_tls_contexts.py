"""Clients verify TLS with shared contexts: PagerDuty's one per CA bundle, httpx's one."""

from __future__ import annotations

import ssl
from pathlib import Path

from sandbox.tls import make_self_signed
from tools.pager.pagerduty_client import tls_verify
from tools.tls import shared_context


def test_without_a_bundle_every_pager_shares_one_verifying_context() -> None:
    context = tls_verify(None)

    assert context is tls_verify(None)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_bundle_gets_a_context_of_its_own_trusting_it(tmp_path: Path) -> None:
    bundle, _ = make_self_signed(tmp_path)

    context = tls_verify(bundle)

    assert context is tls_verify(bundle) and context is not tls_verify(None)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.cert_store_stats()["x509_ca"] == 1


def test_the_httpx_clients_share_one_verifying_context() -> None:
    context = shared_context()

    assert context is shared_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
