"""What the sandbox OpenAI-compatible server knows: its models, their scripts, and what it received.

Each model is scripted on its own (`ModelScript`): a fixed latency, queued HTTP faults, malformed
answers, chat replies chosen by prompt substring, and deterministic embeddings that a drift setting
moves away from the vectors given before.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

MalformedKind = Literal["not_json", "missing_field"]


@dataclass(frozen=True)
class ToolCall:
    """A scripted reply that calls a function instead of answering in text."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


Reply = str | ToolCall | list[ToolCall]


@dataclass
class Fault:
    """An HTTP error the server gives instead of answering one request."""

    status: int
    retry_after: float | None = None


@dataclass
class ModelScript:
    """How one model behaves: latency, queued faults, replies by rule, embedding shape and drift."""

    name: str
    kind: Literal["chat", "embedding"]
    latency_seconds: float = 0.0
    default: Reply = "OK"
    rules: dict[str, Reply] = field(default_factory=dict)
    dimension: int = 16
    drift: float = 0.0
    faults: deque[Fault] = field(default_factory=deque)
    malformed: deque[MalformedKind] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next `times` requests for this model with this HTTP status."""
        with self.lock:
            self.faults.extend(Fault(status, retry_after) for _ in range(times))

    def malformed_next(self, times: int = 1, kind: MalformedKind = "not_json") -> None:
        """Answer the next `times` requests with HTTP 200 and a body the client cannot use."""
        with self.lock:
            self.malformed.extend(kind for _ in range(times))

    def set_drift(self, amount: float) -> None:
        """Blend this share (0..1) of unrelated noise into every embedding from now on."""
        if not 0.0 <= amount <= 1.0:
            raise ValueError("drift must be between 0 and 1")
        self.drift = amount

    def take_fault(self) -> Fault | MalformedKind | None:
        """Pop the next queued fault or malformed answer, if any."""
        with self.lock:
            if self.faults:
                return self.faults.popleft()
            if self.malformed:
                return self.malformed.popleft()
            return None

    def reply_for(self, prompt: str) -> Reply:
        """Return the reply of the first rule whose key occurs in the prompt, else the default."""
        for needle, reply in self.rules.items():
            if needle in prompt:
                return reply
        return self.default

    def embed(self, item: str | list[int], dimensions: int | None = None) -> list[float]:
        """Return the unit vector of one input: a hash of its text, shortened to `dimensions`."""
        text = item if isinstance(item, str) else json.dumps(item)
        size = dimensions or self.dimension
        base = _hash_vector(f"{self.name}:{text}", self.dimension)[:size]
        if self.drift:
            noise = _hash_vector(f"drift:{self.name}:{text}", self.dimension)[:size]
            base = [(1 - self.drift) * b + self.drift * n for b, n in zip(base, noise, strict=True)]
        return _unit(base)


def _hash_vector(seed: str, dimension: int) -> list[float]:
    values: list[float] = []
    block = 0
    while len(values) < dimension:
        digest = hashlib.sha256(f"{seed}#{block}".encode()).digest()
        values.extend(u / 0xFFFFFFFF * 2 - 1 for u in struct.unpack("<8I", digest))
        block += 1
    return values[:dimension]


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


@dataclass
class RecordedRequest:
    """One request as the server saw it, and the status it answered."""

    path: str
    model: str | None
    body: Any
    status: int
    usage: dict[str, int] | None = None


@dataclass
class OpenAIServerState:
    """The models the server serves, the API keys it accepts, and every request it received."""

    api_keys: set[str] = field(default_factory=lambda: {"sk-sandbox"})
    models: dict[str, ModelScript] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_chat_model(
        self,
        name: str,
        *,
        default: Reply = "OK",
        rules: dict[str, Reply] | None = None,
        latency_seconds: float = 0.0,
    ) -> ModelScript:
        """Serve a chat model that answers by rule (prompt substring → reply) or by default."""
        script = ModelScript(
            name, "chat", latency_seconds=latency_seconds, default=default, rules=dict(rules or {})
        )
        self.models[name] = script
        return script

    def add_embedding_model(
        self, name: str, *, dimension: int = 16, latency_seconds: float = 0.0
    ) -> ModelScript:
        """Serve an embedding model with deterministic unit vectors of this dimension."""
        script = ModelScript(
            name, "embedding", latency_seconds=latency_seconds, dimension=dimension
        )
        self.models[name] = script
        return script

    def reset(self) -> None:
        """Forget every model and every request, so one running server can serve a new scenario."""
        with self.lock:
            self.models.clear()
            self.requests.clear()
            self.generation += 1

    def model(self, name: str) -> ModelScript:
        """Return the script of a served model."""
        return self.models[name]

    def record(self, request: RecordedRequest, generation: int | None = None) -> None:
        """Keep one request, whatever its outcome, unless it began before the last reset."""
        with self.lock:
            if generation is None or generation == self.generation:
                self.requests.append(request)

    def received(self, path: str | None = None, model: str | None = None) -> list[RecordedRequest]:
        """Return the recorded requests, narrowed to a path and a model when given."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (path is None or r.path == path) and (model is None or r.model == model)
            ]

    def snapshot(self) -> dict[str, Any]:
        """Return every request received, for tests and the demo."""
        with self.lock:
            return {
                "requests": [
                    {"path": r.path, "model": r.model, "status": r.status, "usage": r.usage}
                    for r in self.requests
                ]
            }
