"""The sandbox reached by another name (as the compose file's services reach `sandbox`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sandbox.stack import SandboxStack
from tools.pager.pagerduty_events import PagerDutyEventsPager
from tools.protocols import PageRequest

# Loopback, but not a name the certificate holds unless the stack adds it.
OTHER_NAME = "127.0.0.2"


def test_urls_catalog_and_certificate_use_the_public_host(tmp_path: Path) -> None:
    stack = SandboxStack(tmp_path, host=OTHER_NAME, public_host=OTHER_NAME).start()
    try:
        env = stack.service_env()
        catalog = yaml.safe_load(stack.write_catalog(tmp_path / "services.yaml").read_text())
        pager = PagerDutyEventsPager(
            stack.routing_key,
            base_url=env["REMEDIATOR_PAGERDUTY_EVENTS_URL"],
            ca_bundle=Path(env["REMEDIATOR_PAGERDUTY_CA_BUNDLE"]),
        )
        result = pager.trigger(
            PageRequest(dedup_key="public-host", summary="s", source="test", severity="info")
        )
        pager.close()
    finally:
        stack.stop()

    assert env["REMEDIATOR_PAGERDUTY_EVENTS_URL"].startswith(f"https://{OTHER_NAME}:")
    assert env["REMEDIATOR_SLACK_BASE_URL"].startswith(f"http://{OTHER_NAME}:")
    assert env["REMEDIATOR_AWS_ENDPOINT_URL"].startswith(f"http://{OTHER_NAME}:")
    service = catalog["services"]["support-bot"]
    assert service["endpoint"]["base_url"].startswith(f"http://{OTHER_NAME}:")
    assert service["dependencies"]["vector_db"]["url"].startswith(f"http://{OTHER_NAME}:")
    assert result.status == "ok", result  # the certificate names the public host


def test_public_rewrites_only_the_host() -> None:
    stack = SandboxStack(Path("unused"), host="0.0.0.0", public_host="sandbox")
    assert stack.public("https://0.0.0.0:8443") == "https://sandbox:8443"
    assert SandboxStack(Path("unused")).public("http://127.0.0.1:1") == "http://127.0.0.1:1"
