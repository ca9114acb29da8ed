"""What the services' adapters share: one Qdrant client per store and key, one boto3 Session."""

from __future__ import annotations

from pathlib import Path

from qdrant_client import QdrantClient

from agent.adapters.factory import build_adapters
from runbooks.catalog import Catalog
from tests.conftest import make_settings
from tools.probes.canary import save_canary, seed_canary
from tools.result import ToolStatus


def qdrant_service(store: str, collection: str, canary: Path) -> dict[str, object]:
    vector_db = {"path": store, "collection": collection, "canary_file": str(canary)}
    return {
        "models": [collection],
        "team": "t",
        "dependencies": {"vector_db": vector_db | {"owner": "t"}},
    }


def test_services_on_one_local_qdrant_share_its_client_and_each_probes_its_collection(
    tmp_path: Path,
) -> None:
    store = tmp_path / "qdrant"
    seeding = QdrantClient(path=str(store))
    for name in ("articles", "tickets"):
        save_canary(seed_canary(seeding, name, dim=8), tmp_path / f"{name}.json")
    seeding.close()
    catalog = Catalog.model_validate(
        {
            "teams": {"t": {}},
            "services": {
                name: qdrant_service(str(store), name, tmp_path / f"{name}.json")
                for name in ("articles", "tickets")
            },
        }
    )
    adapters = build_adapters(make_settings(tmp_path), catalog, env={})

    probes = [adapters.for_service(name) for name in ("articles", "tickets")]

    results = [tools.vector_db.probe() for tools in probes if tools and tools.vector_db]
    assert [r.status for r in results] == [ToolStatus.ok, ToolStatus.ok], results
    assert [r.asked["collection"] for r in results] == ["articles", "tickets"]
    shared = adapters.qdrant_client(str(store), None)
    assert shared is adapters.qdrant_client(str(store), None)  # a local path opens only once
    shared.close()


def test_another_api_key_gets_a_client_of_its_own(tmp_path: Path) -> None:
    adapters = build_adapters(make_settings(tmp_path), env={})
    url = "https://127.0.0.1:9"

    one = adapters.qdrant_client(url, "key-1")

    assert adapters.qdrant_client(url, "key-1") is one
    assert adapters.qdrant_client(url, "key-2") is not one


def test_aws_clients_share_a_session_each_in_its_own_region(tmp_path: Path) -> None:
    adapters = build_adapters(make_settings(tmp_path, aws_region="eu-west-1"), env={})

    default, elsewhere = (
        adapters.aws_client("logs"),
        adapters.aws_client("logs", region="us-east-2"),
    )

    assert default.meta.region_name == "eu-west-1"
    assert elsewhere.meta.region_name == "us-east-2"
