"""One Arize emulator serves monitors, tags and prompts (the doctor checks both through it)."""

import json

from fastapi.testclient import TestClient

from sandbox.arize import ArizeState, create_arize_app


def test_prompts_are_served_by_the_stack_emulator_and_its_snapshot_is_json() -> None:

    state = ArizeState()
    client = TestClient(create_arize_app(state))
    r = client.get("/v2/prompts", headers={"Authorization": "Bearer k"})
    assert r.status_code == 200, r.text
    json.dumps(state.snapshot())
