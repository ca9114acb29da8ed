"""The Qdrant emulator searches for real, refuses what Qdrant refuses, and injects faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient, models

from sandbox.server import EmulatorServer
from sandbox.vectordb import VectorDBState, create_vectordb_app
from tools.probes.canary import capture_canary, seed_canary

# A fresh connection per request: on a reused loopback connection each answer waits ~40 ms for a
# delayed ACK (qdrant-client turns keep-alive off for localhost for the same reason).
HTTP = httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0))


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[VectorDBState, str]]:
    state = VectorDBState()
    running = EmulatorServer(create_vectordb_app(state)).start()
    yield state, running.url
    running.stop()
    HTTP.close()


@pytest.fixture
def emulator(server: tuple[VectorDBState, str]) -> tuple[VectorDBState, str]:
    """The emulator with one 3-d collection per distance, each holding the same three points."""
    state, url = server
    state.reset()
    for distance in ("Cosine", "Dot", "Euclid"):
        name = distance.lower()
        call(url, "PUT", f"/collections/{name}", {"vectors": {"size": 3, "distance": distance}})
        points = [
            {"id": 1, "vector": [1.0, 0.0, 0.0], "payload": {"name": "x"}},
            {"id": 2, "vector": [10.0, 10.0, 0.0], "payload": {"name": "long-xy"}},
            {"id": 3, "vector": [0.0, 0.0, 1.0], "payload": {"name": "z"}},
        ]
        call(url, "PUT", f"/collections/{name}/points?wait=true", {"points": points})
    return state, url


def call(url: str, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    return HTTP.request(method, url + path, json=body, **kwargs)


def nearest(url: str, collection: str, vector: list[float], **request: Any) -> list[Any]:
    answer = call(
        url, "POST", f"/collections/{collection}/points/query", {"query": vector, **request}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["result"]["points"])


def test_seed_through_the_real_client_and_read_collection_info(
    emulator: tuple[VectorDBState, str],
) -> None:
    state, url = emulator
    client = QdrantClient(url=url, check_compatibility=False)

    canary = seed_canary(client, "canary", dim=8, points=20)
    info = client.get_collection("canary")
    hits = client.query_points("canary", query=list(canary.vector), limit=2).points

    assert info.points_count == 20
    assert info.config.params.vectors == models.VectorParams(size=8, distance="Cosine")
    assert hits[0].id == canary.expected_id and hits[0].payload == {"canary_seed": 7}
    assert client.collection_exists("canary") and not client.collection_exists("other")
    assert state.requests_to("/points")[0]["query"] == {"wait": "true"}


def test_search_is_real_for_each_distance(emulator: tuple[VectorDBState, str]) -> None:
    _, url = emulator
    query = [3.0, 1.0, 0.0]

    cosine = nearest(url, "cosine", query, with_payload=True)
    dot = nearest(url, "dot", {"nearest": query}, limit=2)  # type: ignore[arg-type]
    euclid = nearest(url, "euclid", query, offset=1, limit=1)

    assert [p["id"] for p in cosine] == [1, 2, 3]
    assert cosine[0]["score"] == pytest.approx(3 / 10**0.5)
    assert cosine[0]["payload"] == {"name": "x"}
    assert [(p["id"], p["score"]) for p in dot] == [(2, 40.0), (1, 3.0)]
    assert "payload" not in dot[0]
    assert [p["id"] for p in euclid] == [3]


def test_score_threshold_and_a_corrupt_index(emulator: tuple[VectorDBState, str]) -> None:
    state, url = emulator

    above = nearest(url, "dot", [2.0, 1.0, 0.0], score_threshold=5.0)
    state.corrupt_index = True
    corrupt = nearest(url, "dot", [2.0, 1.0, 0.0])

    assert [p["id"] for p in above] == [2]
    assert [p["id"] for p in corrupt] == [1, 3]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("PUT", "/collections/dot", {"vectors": {"size": 3, "distance": "Dot"}}, 409,
         "Wrong input: Collection `dot` already exists!"),
        ("PUT", "/collections/new", {"vectors": {"size": 0, "distance": "Dot"}}, 400,
         "vectors.size"),
        ("PUT", "/collections/new", {"vectors": {"size": 3, "distance": "Cos"}}, 400,
         "unknown variant `Cos`"),
        ("PUT", "/collections/dot/points", {"points": [{"id": 4, "vector": [1.0, 2.0]}]}, 400,
         "Wrong input: Vector dimension error: expected dim: 3, got 2"),
        ("PUT", "/collections/dot/points", {"points": [{"id": -4, "vector": [1, 2, 3]}]}, 400,
         "unsigned integer or a UUID"),
        ("POST", "/collections/dot/points/query", {"query": [1.0, 2.0, 3.0, 4.0]}, 400,
         "Wrong input: Vector dimension error: expected dim: 3, got 4"),
        ("POST", "/collections/nope/points/query", {"query": [1.0, 2.0, 3.0]}, 404,
         "Not found: Collection `nope` doesn't exist!"),
        ("GET", "/collections/nope", None, 404, "Not found: Collection `nope` doesn't exist!"),
        ("POST", "/collections/dot/points/query", {"query": [1, 2, 3], "filter": {}}, 400,
         "`filter` is not supported by the emulator"),
        ("POST", "/collections/dot/points/query", {"query": [1, 2, 3], "limt": 3}, 400,
         "unknown field `limt`"),
        ("POST", "/collections/dot/points/query", {"query": [1, 2, 3], "limit": -1}, 400,
         "`limit` must be an unsigned integer"),
    ],
)  # fmt: skip
def test_emulator_refuses_what_qdrant_refuses(
    emulator: tuple[VectorDBState, str],
    method: str,
    path: str,
    body: Any,
    status: int,
    error: str,
) -> None:
    state, url = emulator

    answer = call(url, method, path, body)

    assert answer.status_code == status
    assert error in answer.json()["status"]["error"]
    assert isinstance(answer.json()["time"], float)
    assert state.snapshot()["collections"] == {"cosine": 3, "dot": 3, "euclid": 3}


@pytest.mark.parametrize("raw", [b'{"query": [1, 2', b'{"query": [NaN, 1, 2]}'])
def test_emulator_refuses_a_malformed_body(emulator: tuple[VectorDBState, str], raw: bytes) -> None:
    _, url = emulator
    answer = HTTP.post(f"{url}/collections/dot/points/query", content=raw)
    assert answer.status_code == 400
    assert answer.json()["status"]["error"].startswith("Format error in JSON body")


def test_api_key_is_required_except_on_health_endpoints(
    emulator: tuple[VectorDBState, str],
) -> None:
    state, url = emulator
    state.api_key = "secret"

    missing = call(url, "GET", "/collections/dot")
    wrong = call(url, "GET", "/collections/dot", headers={"api-key": "guess"})
    by_header = call(url, "GET", "/collections/dot", headers={"api-key": "secret"})
    by_bearer = call(url, "GET", "/collections/dot", headers={"Authorization": "Bearer secret"})

    assert (missing.status_code, missing.text) == (
        401,
        "Must provide an API key or an Authorization bearer token",
    )
    assert (wrong.status_code, wrong.text) == (401, "Invalid API key or JWT")
    assert by_header.status_code == by_bearer.status_code == 200
    assert call(url, "GET", "/readyz").text == "all shards are ready"


def test_health_endpoints_and_readiness_switch(emulator: tuple[VectorDBState, str]) -> None:
    state, url = emulator
    assert call(url, "GET", "/healthz").text == "healthz check passed"
    assert call(url, "GET", "/").json()["title"] == "qdrant - vector search engine"
    state.ready = False
    not_ready = call(url, "GET", "/readyz")
    assert (not_ready.status_code, not_ready.text) == (503, "some shards are not ready")


def test_faults_apply_to_the_matching_path_only(emulator: tuple[VectorDBState, str]) -> None:
    state, url = emulator
    state.fail_next(429, retry_after=4, path="/points/query")
    state.malformed_next(path="/collections/dot")

    info = call(url, "GET", "/collections/dot")
    limited = call(url, "POST", "/collections/dot/points/query", {"query": [1, 0, 0]})
    after = call(url, "POST", "/collections/dot/points/query", {"query": [1, 0, 0]})

    assert info.status_code == 200
    with pytest.raises(ValueError):
        info.json()
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "4"
    assert limited.json()["status"] == {"error": "injected fault"}
    assert after.status_code == 200


def test_scroll_pages_through_points_and_feeds_canary_capture(
    emulator: tuple[VectorDBState, str],
) -> None:
    _, url = emulator
    client = QdrantClient(url=url, check_compatibility=False)

    first, following = client.scroll("euclid", limit=2, with_vectors=True)
    rest, end = client.scroll("euclid", limit=2, offset=following)
    canary = capture_canary(client, "euclid")

    assert [p.id for p in first] == [1, 2] and first[0].vector == [1.0, 0.0, 0.0]
    assert [p.id for p in rest] == [3] and end is None
    assert (canary.collection, canary.vector, canary.expected_id) == ("euclid", (1.0, 0.0, 0.0), 1)
    refused = call(url, "POST", "/collections/euclid/points/scroll", {"filter": {}})
    assert refused.status_code == 400 and "`filter` is not supported" in refused.text
    assert call(url, "POST", "/collections/euclid/points/scroll", {"limit": 0}).status_code == 400
