"""Qdrant REST emulator: the calls qdrant-client 1.20 makes for the canary seed and the probe.

Contract (Qdrant's REST API, paths and bodies as qdrant-client's `http/api/*.py` sends them):
`PUT /collections/{name}` with `{"vectors": {"size", "distance"}}` (409 when it exists),
`PUT /collections/{name}/points?wait=true` with `{"points": [{"id", "vector", "payload"}]}`,
`GET /collections/{name}` (CollectionInfo), `GET /collections/{name}/exists`,
`POST /collections/{name}/points/query` with `{"query": {"nearest": [...]}, "limit", ...}`.
Answers are `{"result": …, "status": "ok", "time": s}`; errors `{"status": {"error": …}, "time": s}`
(404 unknown collection, 400 wrong dimension or bad JSON). `api-key` (or `Authorization: Bearer`)
is required when a key is set, except on `/healthz`, `/livez` and `/readyz`, which answer text.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

# Reported by GET /; the client warns when its minor version is more than one away.
VERSION = "1.20.0"
DISTANCES = ("Cosine", "Dot", "Euclid", "Manhattan")
MAX_DIM = 65536
COLLECTION_FIELDS = frozenset(
    "vectors shard_number sharding_method replication_factor write_consistency_factor"
    " on_disk_payload hnsw_config wal_config optimizers_config quantization_config sparse_vectors"
    " strict_mode_config metadata".split()
)
QUERY_FIELDS = frozenset("query limit offset with_vector with_payload score_threshold".split())
UNSUPPORTED_QUERY_FIELDS = frozenset("prefetch using filter params lookup_from shard_key".split())
OPEN_PATHS = ("/healthz", "/livez", "/readyz")
TRUNCATED_JSON = b'{"result":{"points":[{"id":1,"vers'


class Refusal(Exception):
    """A request Qdrant would refuse, with the status and message it would answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Point:
    """One stored point; cosine collections keep the vector normalised, as Qdrant does."""

    vector: list[float]
    payload: dict[str, Any]
    version: int


@dataclass
class Collection:
    """One collection of a single unnamed dense vector."""

    size: int
    distance: str
    points: dict[int | str, Point] = field(default_factory=dict)
    status: str = "green"


@dataclass
class Fault:
    """What the emulator does to the next matching request instead of (or before) answering it."""

    status: int | None = None
    retry_after: int | None = None
    delay_seconds: float = 0.0
    body: bytes | None = None
    path: str | None = None


@dataclass
class VectorDBState:
    """The collections the emulator holds, what it received, and the faults queued for it."""

    api_key: str | None = None
    collections: dict[str, Collection] = field(default_factory=dict)
    ready: bool = True
    delay_seconds: float = 0.0
    corrupt_index: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    operations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forget every collection, request and fault, and clear the switches."""
        with self.lock:
            self.collections.clear()
            self.received.clear()
            self.refused.clear()
            self.faults.clear()
            self.api_key, self.ready, self.delay_seconds, self.corrupt_index = (
                None,
                True,
                0.0,
                False,
            )

    def fail_next(
        self, status: int, times: int = 1, retry_after: int | None = None, path: str | None = None
    ) -> None:
        """Answer the next `times` requests (whose path ends with `path`) with this status."""
        with self.lock:
            self.faults.extend(Fault(status, retry_after, path=path) for _ in range(times))

    def stall_next(self, seconds: float, times: int = 1, path: str | None = None) -> None:
        """Hold the next `times` matching requests for `seconds` before answering them."""
        with self.lock:
            self.faults.extend(Fault(delay_seconds=seconds, path=path) for _ in range(times))

    def malformed_next(
        self, times: int = 1, path: str | None = None, body: bytes = TRUNCATED_JSON
    ) -> None:
        """Answer the next `times` matching requests with HTTP 200 and this broken body."""
        with self.lock:
            self.faults.extend(Fault(200, body=body, path=path) for _ in range(times))

    def take_fault(self, path: str) -> Fault | None:
        """Remove and return the first queued fault that applies to this path."""
        with self.lock:
            for fault in self.faults:
                if fault.path is None or path.endswith(fault.path):
                    self.faults.remove(fault)
                    return fault
        return None

    def requests_to(self, suffix: str) -> list[dict[str, Any]]:
        """Return the received requests whose path ends with `suffix`."""
        with self.lock:
            return [r for r in self.received if r["path"].endswith(suffix)]

    def search(
        self, name: str, vector: list[float], limit: int, offset: int, threshold: float | None
    ) -> list[tuple[int | str, float, Point]]:
        """Return (id, score, point) by exact search; a corrupt index loses the true nearest."""
        collection = self.collections[name]
        smaller_is_better = collection.distance in ("Euclid", "Manhattan")
        if collection.distance == "Cosine":
            vector = _normalise(vector)
        scored = [
            (pid, _score(collection.distance, vector, point.vector), point)
            for pid, point in collection.points.items()
        ]
        scored.sort(key=lambda hit: hit[1], reverse=not smaller_is_better)
        if threshold is not None:
            scored = [
                h for h in scored if (h[1] <= threshold if smaller_is_better else h[1] >= threshold)
            ]
        if self.corrupt_index:
            scored = scored[1:]
        return scored[offset : offset + limit]

    def snapshot(self) -> dict[str, Any]:
        """Return what was received and refused, and the size of each collection."""
        with self.lock:
            return {
                "received": list(self.received),
                "refused": list(self.refused),
                "collections": {n: len(c.points) for n, c in self.collections.items()},
            }


def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else list(vector)


def _score(distance: str, a: list[float], b: list[float]) -> float:
    if distance == "Euclid":
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    if distance == "Manhattan":
        return sum(abs(x - y) for x, y in zip(a, b, strict=True))
    return sum(x * y for x, y in zip(a, b, strict=True))


def _parse_json(body: bytes) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number")

    try:
        return json.loads(body, parse_constant=refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(str(exc)) from exc


def _bad(detail: str) -> Refusal:
    return Refusal(400, f"Format error in JSON body: {detail}")


def _vector(value: Any, size: int, what: str) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in value
    ):
        raise _bad(f"{what} must be a list of numbers")
    if len(value) != size:
        raise Refusal(
            400, f"Wrong input: Vector dimension error: expected dim: {size}, got {len(value)}"
        )
    return [float(x) for x in value]


def _point_id(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise _bad("point id must be an unsigned integer or a UUID")


def _collection(state: VectorDBState, name: str) -> Collection:
    collection = state.collections.get(name)
    if collection is None:
        raise Refusal(404, f"Not found: Collection `{name}` doesn't exist!")
    return collection


def _object(
    body: Any, known: AbstractSet[str], unsupported: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("expected a JSON object")
    for key in body:
        if key in unsupported:
            raise _bad(f"`{key}` is not supported by the emulator")
        if key not in known:
            raise _bad(f"unknown field `{key}`")
    return body


def create_collection(state: VectorDBState, name: str, body: Any) -> bool:
    """Create a collection from a CreateCollection body."""
    vectors = _object(body, COLLECTION_FIELDS).get("vectors")
    if not isinstance(vectors, dict) or set(vectors) - {"size", "distance", "on_disk", "datatype"}:
        raise _bad("`vectors` must be one unnamed {size, distance}")
    size, distance = vectors.get("size"), vectors.get("distance")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_DIM:
        raise Refusal(400, f"Validation error in JSON body: [vectors.size: must be 1 to {MAX_DIM}]")
    if distance not in DISTANCES:
        raise _bad(f"unknown variant `{distance}`, expected one of {', '.join(DISTANCES)}")
    with state.lock:
        if name in state.collections:
            raise Refusal(409, f"Wrong input: Collection `{name}` already exists!")
        state.collections[name] = Collection(size, distance)
    return True


def upsert_points(state: VectorDBState, name: str, body: Any, wait: bool) -> dict[str, Any]:
    """Insert or replace points from a PointsList body."""
    collection = _collection(state, name)
    points = _object(body, {"points", "shard_key"}, {"shard_key"}).get("points")
    if not isinstance(points, list):
        raise _bad("missing field `points`")
    staged: dict[int | str, tuple[list[float], dict[str, Any]]] = {}
    for point in points:
        point = _object(point, {"id", "vector", "payload"})
        payload = point.get("payload") or {}
        if not isinstance(payload, dict):
            raise _bad("payload must be an object")
        vector = _vector(point.get("vector"), collection.size, "vector")
        if collection.distance == "Cosine":
            vector = _normalise(vector)
        staged[_point_id(point.get("id"))] = (vector, payload)
    with state.lock:
        state.operations += 1
        for pid, (vector, payload) in staged.items():
            collection.points[pid] = Point(vector, payload, state.operations)
        operation = state.operations
    return {"operation_id": operation, "status": "completed" if wait else "acknowledged"}


def collection_info(state: VectorDBState, name: str) -> dict[str, Any]:
    """Return a CollectionInfo as Qdrant reports it."""
    collection = _collection(state, name)
    return {
        "status": collection.status,
        "optimizer_status": "ok",
        "indexed_vectors_count": 0,
        "points_count": len(collection.points),
        "segments_count": 1,
        "config": {
            "params": {
                "vectors": {"size": collection.size, "distance": collection.distance},
                "shard_number": 1,
                "replication_factor": 1,
                "write_consistency_factor": 1,
                "on_disk_payload": True,
            },
            "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
            "optimizer_config": {"default_segment_number": 0, "flush_interval_sec": 5},
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
        },
        "payload_schema": {},
    }


def query_points(state: VectorDBState, name: str, body: Any) -> dict[str, Any]:
    """Answer a QueryRequest whose query is a dense vector (plain or `{"nearest": …}`)."""
    collection = _collection(state, name)
    request = _object(body, QUERY_FIELDS | UNSUPPORTED_QUERY_FIELDS, UNSUPPORTED_QUERY_FIELDS)
    query = request.get("query")
    if isinstance(query, dict) and set(query) == {"nearest"}:
        query = query["nearest"]
    if not isinstance(query, list):
        raise _bad("the emulator answers only nearest-vector queries")
    vector = _vector(query, collection.size, "query")
    limit, offset = request.get("limit", 10), request.get("offset") or 0
    for key, value in (("limit", limit), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _bad(f"`{key}` must be an unsigned integer")
    threshold = request.get("score_threshold")
    with state.lock:
        hits = state.search(name, vector, limit, offset, threshold)
    points = []
    for pid, score, point in hits:
        answer: dict[str, Any] = {"id": pid, "version": point.version, "score": score}
        if request.get("with_payload") is True:
            answer["payload"] = point.payload
        if request.get("with_vector") is True:
            answer["vector"] = point.vector
        points.append(answer)
    return {"points": points}


SCROLL_FIELDS = frozenset({"offset", "limit", "with_payload", "with_vector"})


def scroll_points(state: VectorDBState, name: str, body: Any) -> dict[str, Any]:
    """Answer a ScrollRequest: points in id order, from `offset`, with `next_page_offset`."""
    collection = _collection(state, name)
    request = _object(body, SCROLL_FIELDS, frozenset({"filter", "order_by"}))
    limit = request.get("limit", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise _bad("`limit` must be a positive integer")
    with state.lock:
        ids = sorted(collection.points, key=str)
        start = ids.index(request["offset"]) if request.get("offset") in ids else 0
        page = ids[start : start + limit]
        points = []
        for pid in page:
            point = collection.points[pid]
            answer: dict[str, Any] = {"id": pid}
            if request.get("with_payload", True) is True:
                answer["payload"] = point.payload
            if request.get("with_vector") is True:
                answer["vector"] = point.vector
            points.append(answer)
        following = ids[start + limit] if start + limit < len(ids) else None
    return {"points": points, "next_page_offset": following}


def create_vectordb_app(state: VectorDBState) -> FastAPI:
    """Build the emulator's ASGI app around its state."""
    app = FastAPI(title="Qdrant REST emulator", openapi_url=None)

    async def handle(request: Request, work: Callable[[bytes], Any]) -> Response:
        started, body, path = time.perf_counter(), await request.body(), request.url.path
        with state.lock:
            state.received.append(
                {
                    "method": request.method,
                    "path": path,
                    "query": dict(request.query_params),
                    "body": body.decode(errors="replace"),
                }
            )
        fault = state.take_fault(path)
        if delay := state.delay_seconds + (fault.delay_seconds if fault else 0.0):
            await asyncio.sleep(delay)
        if fault is not None and fault.body is not None:
            return Response(fault.body, fault.status or 200, media_type="application/json")
        if fault is not None and fault.status is not None:
            wait = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return _error(fault.status, "injected fault", started, wait)
        if state.api_key is not None and path not in OPEN_PATHS:
            if (refusal := _auth_refusal(state.api_key, request)) is not None:
                return refusal
        try:
            result = work(body)
        except Refusal as exc:
            with state.lock:
                state.refused.append({"path": path, "status": exc.status, "error": exc.message})
            return _error(exc.status, exc.message, started)
        if isinstance(result, Response):
            return result
        return JSONResponse(
            {"result": result, "status": "ok", "time": time.perf_counter() - started}
        )

    @app.get("/")
    async def root(request: Request) -> Response:
        banner = {"title": "qdrant - vector search engine", "version": VERSION, "commit": "0" * 40}
        return await handle(request, lambda _: JSONResponse(banner))

    @app.get("/healthz")
    @app.get("/livez")
    async def alive(request: Request) -> Response:
        return await handle(request, lambda _: PlainTextResponse("healthz check passed"))

    @app.get("/readyz")
    async def ready(request: Request) -> Response:
        def answer(_: bytes) -> Response:
            if state.ready:
                return PlainTextResponse("all shards are ready")
            return PlainTextResponse("some shards are not ready", status_code=503)

        return await handle(request, answer)

    @app.put("/collections/{name}")
    async def create(name: str, request: Request) -> Response:
        return await handle(request, lambda b: create_collection(state, name, _parse_json(b)))

    @app.get("/collections/{name}")
    async def info(name: str, request: Request) -> Response:
        return await handle(request, lambda _: collection_info(state, name))

    @app.get("/collections/{name}/exists")
    async def exists(name: str, request: Request) -> Response:
        return await handle(request, lambda _: {"exists": name in state.collections})

    @app.put("/collections/{name}/points")
    async def upsert(name: str, request: Request) -> Response:
        wait = request.query_params.get("wait") == "true"
        return await handle(request, lambda b: upsert_points(state, name, _parse_json(b), wait))

    @app.post("/collections/{name}/points/query")
    async def query(name: str, request: Request) -> Response:
        return await handle(request, lambda b: query_points(state, name, _parse_json(b)))

    @app.post("/collections/{name}/points/scroll")
    async def scroll(name: str, request: Request) -> Response:
        return await handle(request, lambda b: scroll_points(state, name, _parse_json(b)))

    @app.get("/_sandbox/state")
    def snapshot() -> dict[str, Any]:
        return state.snapshot()

    return app


def _auth_refusal(key: str, request: Request) -> Response | None:
    given = request.headers.get("api-key")
    bearer = request.headers.get("authorization", "")
    if given is None and bearer.startswith("Bearer "):
        given = bearer.removeprefix("Bearer ")
    if given is None:
        return PlainTextResponse(
            "Must provide an API key or an Authorization bearer token", status_code=401
        )
    if given != key:
        return PlainTextResponse("Invalid API key or JWT", status_code=401)
    return None


def _error(
    status: int, message: str, started: float, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"status": {"error": message}, "time": time.perf_counter() - started},
        status_code=status,
        headers=headers,
    )
