"""`remediator doctor` reads each service's route from its failover backend (read-only).

A store that answers says nothing about one service: the doctor reported `ok` for a service the
gateway did not know, so its first failover would have failed in an incident.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.adapters.checks import CheckRow, run_checks
from agent.adapters.factory import build_adapters
from runbooks.catalog import load_catalog
from sandbox.stack import SandboxStack
from tests.conftest import make_settings, sandbox_overrides
from tools.failover.file import FileFailoverBackend
from tools.failover.ssm import SsmFailoverBackend, make_ssm_client
from tools.protocols import Route

PRIMARY = Route(provider="openai", model="bot-v1", region="eu-west-1")


def failover_rows(rows: list[CheckRow]) -> dict[str, CheckRow]:
    return {row.scope: row for row in rows if row.role == "failover"}


def catalog_with(tmp_path: Path, failover: dict[str, object]) -> Path:
    target = {"name": "backup-region", "provider": "openai", "model": "bot-v1"}
    services = {
        name: {"models": [name], "team": "t", "failover": {**failover, "targets": [target]}}
        for name in ("known", "unknown")
    }
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump({"teams": {"t": {}}, "services": services}))
    return path


def test_a_service_missing_from_the_routes_file_fails(tmp_path: Path) -> None:
    routes = tmp_path / "routes.json"
    FileFailoverBackend(routes).seed("known", PRIMARY)
    catalog = catalog_with(tmp_path, {"backend": "file", "routes_file": str(routes)})
    settings = make_settings(tmp_path, catalog_file=catalog)
    before = routes.read_bytes()

    rows = failover_rows(run_checks(settings, build_adapters(settings, load_catalog(catalog))))

    assert rows["known"].ok and "known routes to openai/bot-v1@eu-west-1" in rows["known"].detail
    assert not rows["unknown"].ok
    assert rows["unknown"].detail.startswith("no route for unknown: ")
    assert routes.read_bytes() == before  # read, never written


def test_a_service_without_a_parameter_in_ssm_fails(sandbox: SandboxStack, tmp_path: Path) -> None:
    prefix = f"/doctor-{tmp_path.name}"
    catalog = catalog_with(tmp_path, {"backend": "ssm", "parameter_prefix": prefix})
    settings = make_settings(tmp_path, catalog_file=catalog, **sandbox_overrides(sandbox))
    client = make_ssm_client(settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    SsmFailoverBackend(client, prefix=prefix).seed("known", PRIMARY)

    rows = failover_rows(run_checks(settings, build_adapters(settings, load_catalog(catalog))))

    assert rows["known"].ok, rows["known"].detail
    assert not rows["unknown"].ok and "no route stored for unknown" in rows["unknown"].detail


def test_a_service_the_gateway_does_not_know_fails(
    catalog_world: SandboxStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_world.catalog_path  # type: ignore[attr-defined]
    settings = make_settings(tmp_path, catalog_file=catalog, **sandbox_overrides(catalog_world))
    adapters = build_adapters(settings, load_catalog(catalog))
    assert failover_rows(run_checks(settings, adapters))["support-bot"].ok

    catalog_world.gateway.reset({"another-bot": {"provider": "openai", "model": "x"}})
    row = failover_rows(run_checks(settings, adapters))["support-bot"]

    assert not row.ok
    assert row.detail.startswith("no route for support-bot: ")
    assert catalog_world.gateway.history == []  # nothing was switched to find out
