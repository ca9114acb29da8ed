"""Scenario worlds with emulated Arize prompts: what loads, what is refused, how labels score."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sandbox.evaluation.arize_prompts import compare_labels, stage_prompts
from sandbox.evaluation.scenario import World
from sandbox.server import EmulatorServer

PROMPTS = [
    {
        "name": "support-answer",
        "versions": [
            {"labels": ["production", "stable"], "minutes_ago": 60},
            {"labels": ["staging", "production"], "minutes_ago": 12},
        ],
    }
]


def test_a_deployment_names_a_version_of_a_prompt_the_world_holds() -> None:
    world = World.model_validate(
        {
            "arize_prompts": PROMPTS,
            "deployments": [
                {
                    "kind": "prompt",
                    "arize_prompt": "support-answer",
                    "arize_version": 2,
                    "minutes_before_breach": 10,
                }
            ],
        }
    )
    assert world.deployments[0].version is None
    for wrong, says in (
        ({"arize_prompt": "support-answer", "arize_version": 3}, "has no version 3"),
        ({"arize_prompt": "other", "arize_version": 1}, "'other' has no version 1"),
        ({"arize_prompt": "support-answer"}, "together"),
        ({}, "give a version"),
    ):
        deployment = {"kind": "prompt", "minutes_before_breach": 10, **wrong}
        with pytest.raises(ValidationError, match=says):
            World.model_validate({"arize_prompts": PROMPTS, "deployments": [deployment]})


def test_staged_prompts_fill_deployments_and_report_labels() -> None:
    world = World.model_validate({"arize_prompts": PROMPTS})
    servers: list[EmulatorServer] = []
    staged = stage_prompts(world.arize_prompts, servers)
    try:
        assert staged is not None
        v1, v2 = staged.ids["support-answer"]
        payload = staged.deployment(
            {"kind": "prompt", "arize_prompt": "support-answer", "arize_version": 2}
        )
        assert payload == {"kind": "prompt", "version": v2, "previous_version": v1}
        assert staged.labels() == {"support-answer": {"stable": 1, "staging": 2, "production": 2}}
        assert staged.settings()["arize_api_port"] == servers[0].port
    finally:
        for server in servers:
            server.stop()
    assert stage_prompts([], servers) is None


def test_labels_are_scored_per_prompt_and_label() -> None:
    seen = {"support-answer": {"production": 1, "staging": 2}}
    assert compare_labels({"support-answer": {"production": 1, "canary": None}}, seen) == []
    assert compare_labels({"support-answer": {"production": 2}}, seen) == [
        "prompt_labels: support-answer production expected on version 2, got 1"
    ]
    assert compare_labels(None, seen) == []
