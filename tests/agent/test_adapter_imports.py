"""A deployment loads only the SDKs its settings and catalog use.

Each case runs in a fresh interpreter: it imports what `remediator serve` imports, builds every
adapter of the settings and the catalog, and reports which SDK modules got loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SDKS = (
    "google.cloud.logging",
    "grpc",
    "langchain_openai",
    "openai",
    "qdrant_client",
    "tools.analyst.llm",
)

SERVE = """
import json, sys
from pathlib import Path
import agent.api.app, agent.cli, agent.graph.runner, agent.worker.loop
from agent.adapters.factory import build_adapters
from agent.settings import Settings
from runbooks.catalog import load_catalog

adapters = build_adapters(Settings(_env_file=None), load_catalog(Path(sys.argv[1])))
adapters.warm_up()
print(json.dumps(sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)))
"""


def loaded_sdks(tmp_path: Path, catalog: dict[str, Any], **settings: str) -> set[str]:
    """Return which of SDKS a service process holds once its adapters are built."""
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump(catalog))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REMEDIATOR_")},
        "REMEDIATOR_ENV": "dev",
        "REMEDIATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
        "REMEDIATOR_AWS_REGION": "eu-west-1",
        "REMEDIATOR_CLOUDWATCH_LOG_GROUPS": "/llm/gateway",
        "REMEDIATOR_PAGERDUTY_ROUTING_KEY": "0" * 32,
        "REMEDIATOR_SLACK_BOT_TOKEN": "xoxb-test",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PD_KEY_ASSISTANT": "1" * 32,
        **{f"REMEDIATOR_{k.upper()}": v for k, v in settings.items()},
    }
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(path), json.dumps(SDKS)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def catalog(**logs: Any) -> dict[str, Any]:
    """A service on CloudWatch logs (plus `logs`), an HTTP vector store and a routes file."""
    return {
        "teams": {"assistant": {"pagerduty_routing_key_env": "PD_KEY_ASSISTANT"}},
        "services": {
            "support-bot": {
                "models": ["support-bot"],
                "team": "assistant",
                "logs": {"cloudwatch": {"log_groups": ["/llm/support-bot"]}, **logs},
                "dependencies": {
                    "vector_db": {
                        "kind": "http",
                        "readiness_url": "http://127.0.0.1:9/ready",
                        "owner": "assistant",
                    }
                },
                "failover": {
                    "backend": "file",
                    "routes_file": "routes.json",
                    "targets": [{"name": "backup", "provider": "openai", "model": "m2"}],
                },
            }
        },
    }


def test_a_deployment_without_gcp_qdrant_endpoint_or_analyst_loads_none_of_their_sdks(
    tmp_path: Path,
) -> None:
    assert loaded_sdks(tmp_path, catalog()) == set()


def test_gcp_logs_and_an_analyst_load_their_sdks(tmp_path: Path) -> None:
    gcp = {"gcp": {"project": "p", "resource_type": "k8s_container", "anonymous": True}}

    loaded = loaded_sdks(tmp_path, catalog(**gcp), analyst_base_url="http://127.0.0.1:9/v1")

    assert {"google.cloud.logging", "langchain_openai", "tools.analyst.llm"} <= loaded
    assert "qdrant_client" not in loaded
