"""The vector DB's canary: a stored vector whose nearest neighbour is known while healthy."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models


@dataclass(frozen=True)
class Canary:
    """A stored query vector and the point id that must come back first for it."""

    collection: str
    vector: tuple[float, ...]
    expected_id: int | str


def seed_canary(
    client: QdrantClient,
    collection: str,
    dim: int,
    *,
    points: int = 64,
    distance: models.Distance = models.Distance.COSINE,
    seed: int = 7,
) -> Canary:
    """Fill a collection with deterministic vectors (ids 1..points) and return its canary.

    The canary is a slightly moved copy of one stored vector; its expected id is computed by exact
    search here, so it is right by construction. Creates the collection when missing; upserting the
    same ids again is harmless. Raises the client's errors: this is set-up, not a probe.
    """
    rng = random.Random(seed)
    vectors = [[rng.gauss(0.0, 1.0) for _ in range(dim)] for _ in range(points)]
    query = tuple(x + rng.gauss(0.0, 0.05) for x in vectors[points // 2])
    scores = [similarity(distance, query, vector) for vector in vectors]
    expected = 1 + max(range(points), key=scores.__getitem__)
    if not client.collection_exists(collection):
        client.create_collection(
            collection, vectors_config=models.VectorParams(size=dim, distance=distance)
        )
    client.upsert(
        collection,
        points=[
            models.PointStruct(id=i + 1, vector=vector, payload={"canary_seed": seed})
            for i, vector in enumerate(vectors)
        ],
        wait=True,
    )
    return Canary(collection, query, expected)


def capture_canary(client: QdrantClient, collection: str) -> Canary:
    """Take a stored point as the canary and record the id its vector finds first, today.

    Run while the index is known good (`remediator baseline capture`): later probes compare
    against this answer. Raises the client's errors, or ValueError when there is no usable point.
    """
    records, _ = client.scroll(collection, limit=1, with_vectors=True)
    stored = records[0].vector if records else None
    if not isinstance(stored, list) or not all(isinstance(x, float | int) for x in stored):
        raise ValueError(f"collection {collection} has no point with a plain vector to use")
    vector = [float(x) for x in stored]  # type: ignore[arg-type]
    hits = client.query_points(collection, query=vector, limit=1).points
    if not hits:
        raise ValueError(f"collection {collection} answered no neighbour for its own point")
    found = hits[0].id
    return Canary(collection, tuple(vector), found if isinstance(found, int) else str(found))


def load_canary(path: Path) -> Canary:
    """Read a canary file written by `remediator baseline capture`."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return Canary(
            str(data["collection"]), tuple(float(x) for x in data["vector"]), data["expected_id"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a canary file ({exc})") from None


def save_canary(canary: Canary, path: Path) -> None:
    """Write a canary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "collection": canary.collection,
                "vector": list(canary.vector),
                "expected_id": canary.expected_id,
            }
        ),
        encoding="utf-8",
    )


def similarity(distance: models.Distance, a: Sequence[float], b: Sequence[float]) -> float:
    """Return a score where larger is nearer, for each of Qdrant's distances."""
    pairs = list(zip(a, b, strict=True))
    if distance == models.Distance.EUCLID:
        return -math.sqrt(sum((x - y) ** 2 for x, y in pairs))
    if distance == models.Distance.MANHATTAN:
        return -sum(abs(x - y) for x, y in pairs)
    dot = sum(x * y for x, y in pairs)
    if distance == models.Distance.DOT:
        return dot
    return dot / (math.hypot(*a) * math.hypot(*b))
