"""The outside systems a scenario breaks or heals: their states, and setting the sandbox to them.

Setting a system always starts from healthy (queued faults dropped, delays and switches cleared),
so the same call stages the world before the first alert and changes it during the run
(`World.changes`): a dependency that comes back, a primary that heals, a pager that goes down.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sandbox.fault_proxy import FaultProxyState
from sandbox.stack import DIAGNOSTIC_ANSWERS, EMBEDDING_MODEL, SandboxStack

# Latency budgets of the sandbox catalog, and what "slow" means against them: fast to run, yet
# far enough apart that a loaded machine does not blur healthy into slow.
BUDGET_MS = 2000.0
SLOW_SECONDS = 3.0
# Queued faults outlast any scenario's requests: the system stays down until changed.
LASTING = 10_000


class Strict(BaseModel):
    """A scenario section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _bare_state(cls, data: Any) -> Any:
        # `vector_db: down` is short for `vector_db: {state: down}`.
        if isinstance(data, str) and "state" in cls.model_fields:
            return {"state": data}
        return data


class VectorDbWorld(Strict):
    """The vector DB: healthy, answering wrong neighbours, slow (delay per request) or down."""

    state: Literal["healthy", "wrong_neighbour", "slow", "down"] = "healthy"
    delay_seconds: float = Field(SLOW_SECONDS, gt=0, le=30)
    status: int = Field(503, ge=400, le=599)


class EmbeddingsWorld(Strict):
    """The embedding service: healthy, drifted from its golden vectors, slow or down."""

    state: Literal["healthy", "drift", "down", "slow"] = "healthy"
    drift: float = Field(0.5, gt=0, le=1)
    delay_seconds: float = Field(SLOW_SECONDS, gt=0, le=30)
    status: int = Field(503, ge=400, le=599)


class EndpointWorld(Strict):
    """One region's (or provider's) LLM endpoint: healthy, failing, wrong answers or slow."""

    state: Literal["healthy", "failing", "wrong_answers", "slow"] = "healthy"
    status: int = Field(503, ge=400, le=599)
    delay_seconds: float = Field(SLOW_SECONDS, gt=0, le=30)


class ToolWorld(Strict):
    """One of the agent's own tools: healthy, failing (`status`, `times` requests) or slow.

    `times` omitted: every request fails until a change heals it (down). 429 with
    `retry_after` is a rate limit. `slow` delays every request by `delay_seconds`.
    """

    state: Literal["healthy", "failing", "slow"] = "healthy"
    status: int = Field(503, ge=400, le=599)
    times: int | None = Field(None, ge=1, le=1000)
    retry_after: int | None = Field(None, ge=0, le=30)
    delay_seconds: float = Field(SLOW_SECONDS, gt=0, le=30)


class ToolsWorld(Strict):
    """The agent's tools: pager, chat, the gateway's route switch, and both log stores.

    `gateway` faults hit only its admin writes (the switch), never the traffic it carries.
    """

    pagerduty: ToolWorld | None = None
    slack: ToolWorld | None = None
    gateway: ToolWorld | None = None
    cloudwatch: ToolWorld | None = None
    gcp: ToolWorld | None = None


class Systems(Strict):
    """The systems a world sets; a system left out is not touched."""

    vector_db: VectorDbWorld | None = None
    embeddings: EmbeddingsWorld | None = None
    endpoint: dict[str, EndpointWorld] = Field(default_factory=dict)
    """Region or provider → state; a provider's state applies to every route it serves."""
    tools: ToolsWorld = Field(default_factory=ToolsWorld)


class WorldChange(Systems):
    """A change of the world during the run: before step N is posted, or seconds after the first.

    `before_step` counts from 0 (the first alert is step 0, so `before_step: 1` is the earliest);
    `after_seconds` is real time after the first alert was posted.
    """

    before_step: int | None = Field(None, ge=1, le=100)
    after_seconds: float | None = Field(None, gt=0, le=300)

    @model_validator(mode="after")
    def _one_moment(self) -> WorldChange:
        if (self.before_step is None) == (self.after_seconds is None):
            raise ValueError("give exactly one of before_step and after_seconds")
        return self


def set_endpoint(
    stack: SandboxStack,
    key: str,
    fault: EndpointWorld,
    *,
    upstream: Mapping[str, tuple[str, str]],
) -> None:
    """Set every route a region or provider serves to this state (from healthy)."""
    regions = {region for _, region in upstream.values()}
    models = [m for m, (provider, region) in upstream.items() if key in (provider, region)]
    with stack.gateway.lock:
        stack.gateway.failing_regions.pop(key, None)
        if fault.state == "failing" and key in regions:
            stack.gateway.failing_regions[key] = fault.status
    for name in models:
        model = stack.openai.model(name)
        with model.lock:
            model.faults.clear()
        model.rules = dict(DIAGNOSTIC_ANSWERS)
        model.latency_seconds = 0.0
        if fault.state == "failing" and key not in regions:
            model.fail_next(fault.status, times=LASTING)
        elif fault.state == "wrong_answers":
            model.rules = {}
        elif fault.state == "slow":
            model.latency_seconds = fault.delay_seconds


def set_vector_db(stack: SandboxStack, world: VectorDbWorld) -> None:
    """Set the vector DB to this state (from healthy)."""
    state = stack.vectordb
    with state.lock:
        state.faults.clear()
        state.corrupt_index = False
        state.delay_seconds = 0.0
    if world.state == "wrong_neighbour":
        state.corrupt_index = True
    elif world.state == "slow":
        state.delay_seconds = world.delay_seconds
    elif world.state == "down":
        state.fail_next(world.status, times=LASTING)


def set_embeddings(stack: SandboxStack, world: EmbeddingsWorld) -> None:
    """Set the embedding service to this state (from healthy)."""
    model = stack.openai.model(EMBEDDING_MODEL)
    with model.lock:
        model.faults.clear()
    model.drift = 0.0
    model.latency_seconds = 0.0
    if world.state == "drift":
        model.set_drift(world.drift)
    elif world.state == "slow":
        model.latency_seconds = world.delay_seconds
    elif world.state == "down":
        model.fail_next(world.status, times=LASTING)


def set_tool(
    stack: SandboxStack, name: str, tool: ToolWorld, *, cloudwatch: FaultProxyState
) -> None:
    """Set one of the agent's tools to this state (from healthy)."""
    times = tool.times or LASTING
    delay = tool.delay_seconds if tool.state == "slow" else 0.0
    failing = tool.state == "failing"
    if name == "pagerduty":
        with stack.pagerduty.lock:
            stack.pagerduty.faults.clear()
        stack.pagerduty.delay_seconds = delay
        if failing:
            stack.pagerduty.fail_next(tool.status, times, tool.retry_after)
    elif name == "slack":
        with stack.slack.lock:
            stack.slack.faults.clear()
        stack.slack.delay_seconds = delay
        if failing:
            stack.slack.fail_next(tool.status, times, tool.retry_after)
    elif name == "gateway":
        with stack.gateway.lock:
            stack.gateway.faults.clear()
        if failing:
            stack.gateway.fail_next(tool.status, times, tool.retry_after, methods={"PUT"})
        elif delay:
            stack.gateway.delay_next(delay, times, methods={"PUT"})
    elif name == "gcp":
        with stack.gcp.lock:
            stack.gcp.faults.clear()
        stack.gcp.delay_seconds = delay
        if failing:
            stack.gcp.fail_next(tool.status, times, tool.retry_after)
    elif name == "cloudwatch":
        with cloudwatch.lock:
            cloudwatch.faults.clear()
        cloudwatch.delay_seconds = delay
        if failing:
            body = json.dumps(_aws_error(tool.status)).encode()
            headers = {"Retry-After": str(tool.retry_after)} if tool.retry_after is not None else {}
            cloudwatch.fail_next(tool.status, body, times, headers)


def _aws_error(status: int) -> dict[str, str]:
    # The shapes CloudWatch Logs answers with (awsJson1_1): throttling, unavailable, internal.
    if status in (400, 429):
        return {"__type": "ThrottlingException", "message": "Rate exceeded"}
    if status == 503:
        return {"__type": "ServiceUnavailableException", "message": "Service unavailable"}
    return {"__type": "InternalFailure", "message": "Internal failure"}


def set_systems(
    stack: SandboxStack,
    systems: Systems,
    *,
    upstream: Mapping[str, tuple[str, str]],
    cloudwatch: FaultProxyState,
) -> None:
    """Set every system the section names; leave the others as they are."""
    for key, fault in systems.endpoint.items():
        set_endpoint(stack, key, fault, upstream=upstream)
    if systems.vector_db is not None:
        set_vector_db(stack, systems.vector_db)
    if systems.embeddings is not None:
        set_embeddings(stack, systems.embeddings)
    for name in ToolsWorld.model_fields:
        tool = getattr(systems.tools, name)
        if tool is not None:
            set_tool(stack, name, tool, cloudwatch=cloudwatch)
