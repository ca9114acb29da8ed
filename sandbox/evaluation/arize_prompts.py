"""Scenario worlds with Arize prompts: seed the emulated prompts, read where their labels end.

`world.yaml`:

    arize_prompts:
      - name: support-answer
        versions:                      # oldest first; a label moves onto each version given it
          - {commit_message: v1, labels: [production, stable], minutes_ago: 1440}
          - {commit_message: v2, labels: [staging, production], minutes_ago: 12}
    deployments:
      - {kind: prompt, arize_prompt: support-answer, arize_version: 2, minutes_before_breach: 10}

A deployment naming `arize_prompt` and `arize_version` (1-based, in the order listed) is posted
with the version's Arize id as its `version` (and the version before it as `previous_version`
unless one is given). `expected.yaml` `prompt_labels: {support-answer: {production: 1}}` checks
which version (1-based; `null`: none) each label is on at the end of the run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from sandbox.arize.prompts import PromptsState, create_prompts_app, seed_prompt
from sandbox.evaluation.systems import Strict
from sandbox.server import EmulatorServer


class PromptVersionWorld(Strict):
    """One version of an emulated Arize prompt, and the labels it is given when created."""

    commit_message: str = "update"
    labels: list[str] = Field(default_factory=list)
    minutes_ago: float | None = Field(None, ge=0, le=365 * 24 * 60)


class PromptWorld(Strict):
    """An emulated Arize prompt and its versions, oldest first."""

    name: str = Field(min_length=1, max_length=200)
    versions: list[PromptVersionWorld] = Field(min_length=1, max_length=50)


@dataclass
class StagedPrompts:
    """The running prompts emulator, its API key, and each prompt's version ids in world order."""

    state: PromptsState
    server: EmulatorServer
    api_key: str
    ids: dict[str, list[str]]

    def settings(self) -> dict[str, Any]:
        """Return the service settings that point its Arize adapter at the emulator."""
        return {
            "arize_api_key": self.api_key,
            "arize_api_host": self.server.host,
            "arize_api_scheme": "http",
            "arize_api_port": self.server.port,
        }

    def deployment(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Return a deployment payload with its Arize prompt version filled in."""
        name, index = payload.pop("arize_prompt", None), payload.pop("arize_version", None)
        if name is None or index is None:
            return payload
        versions = self.ids[name]
        payload["version"] = versions[index - 1]
        if index > 1:
            payload.setdefault("previous_version", versions[index - 2])
        return payload

    def labels(self) -> dict[str, dict[str, int]]:
        """Return prompt name → label → the 1-based version it is on now."""
        found: dict[str, dict[str, int]] = {}
        for name, ids in self.ids.items():
            found[name] = {
                label: ids.index(vid) + 1
                for vid in ids
                for label in self.state.versions[vid]["labels"]
            }
        return found


def stage_prompts(
    prompts: list[PromptWorld], servers: list[EmulatorServer]
) -> StagedPrompts | None:
    """Start the prompts emulator and seed the world's prompts (None: the world has none)."""
    if not prompts:
        return None
    key = "ak-sandbox-" + secrets.token_hex(8)
    state = PromptsState(api_keys={key})
    server = EmulatorServer(create_prompts_app(state)).start()
    servers.append(server)
    ids = {
        prompt.name: seed_prompt(state, prompt.model_dump(exclude_none=True))["version_ids"]
        for prompt in prompts
    }
    return StagedPrompts(state, server, key, ids)


def check_deployments(prompts: list[PromptWorld], deployments: list[Any]) -> None:
    """Raise ValueError when a deployment names a prompt or version the world does not hold."""
    counts = {prompt.name: len(prompt.versions) for prompt in prompts}
    for index, deployment in enumerate(deployments):
        name, version = deployment.arize_prompt, deployment.arize_version
        if (name is None) != (version is None):
            raise ValueError(f"deployments.{index}: give arize_prompt and arize_version together")
        if name is not None and not 1 <= version <= counts.get(name, 0):
            raise ValueError(
                f"deployments.{index}: arize_prompt {name!r} has no version {version} "
                f"(arize_prompts holds {counts.get(name, 0)})"
            )


def compare_labels(
    expected: dict[str, dict[str, int | None]] | None, seen: dict[str, dict[str, int]]
) -> list[str]:
    """Return how the labels at the end differ from what the scenario expects."""
    problems = []
    for name, labels in (expected or {}).items():
        for label, version in labels.items():
            got = seen.get(name, {}).get(label)
            if got != version:
                problems.append(
                    f"prompt_labels: {name} {label} expected on version {version}, got {got}"
                )
    return problems
