"""The prompt-label adapter against the sandbox's Arize prompts emulator, through the real SDK."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.adapters.checks import run_checks
from agent.adapters.factory import build_adapters
from sandbox.arize.ids import decode, encode
from sandbox.arize.prompts import CONTROL, PromptsState, create_prompts_app
from sandbox.server import EmulatorServer
from tests.conftest import make_settings
from tools.arize.prompts import ArizePromptRegistry
from tools.protocols import PromptRegistry
from tools.result import ToolStatus

os.environ.setdefault("ARIZE_LOG_ENABLE", "false")
arize = pytest.importorskip("arize")

KEY = "ak-test-prompts"


@pytest.fixture
def state() -> PromptsState:
    return PromptsState(api_keys={KEY})


@pytest.fixture
def server(state: PromptsState) -> Iterator[EmulatorServer]:
    running = EmulatorServer(create_prompts_app(state)).start()
    yield running
    running.stop()


def client_for(server: EmulatorServer, key: str = KEY) -> object:
    return arize.ArizeClient(
        api_key=key, api_host=server.host, api_scheme="http", api_port=server.port
    )


@pytest.fixture
def registry(server: EmulatorServer) -> Iterator[ArizePromptRegistry]:
    yield ArizePromptRegistry(client_for(server), timeout_seconds=2.0)


def seed(state: PromptsState) -> tuple[str, list[str]]:
    prompt = state.add_prompt("support-answer")
    v1 = state.add_version(prompt, commit_message="v1", labels=["production", "stable"])
    v2 = state.add_version(prompt, commit_message="v2", labels=["staging"])
    state.set_labels(v2, ["staging", "production"])
    return prompt, [v1, v2]


def test_ids_are_base64_kind_number_suffix_without_slash_or_plus(state: PromptsState) -> None:
    prompt = state.add_prompt("p")
    assert (decode(prompt) or ("",))[0] == "Prompt"
    for _ in range(400):
        minted = state.add_version(prompt)
        assert "/" not in minted and "+" not in minted
        assert (decode(minted) or ("",))[0] == "PromptVersion"


def test_the_adapter_is_a_prompt_registry(registry: ArizePromptRegistry) -> None:
    assert isinstance(registry, ArizePromptRegistry)
    checked: PromptRegistry = registry
    assert checked.name == "arize_prompts"


def test_reads_through_the_sdk(state: PromptsState, registry: ArizePromptRegistry) -> None:
    prompt, (v1, v2) = seed(state)
    # The ids end in '=' so the SDK sends them percent-encoded; the emulator decodes them.
    assert any(i.endswith("=") for i in (prompt, v1, v2))
    production = registry.version_by_label(prompt, "production")
    assert production.status == ToolStatus.ok
    assert production.evidence["version"]["id"] == v2
    assert production.evidence["version"]["labels"] == ["staging", "production"]
    listed = registry.list_versions(prompt)
    assert [v["id"] for v in listed.evidence["versions"]] == [v2, v1]  # newest first
    assert listed.evidence["versions"][1]["labels"] == ["stable"]
    got = registry.get_version(v1)
    assert got.evidence["version"]["commit_message"] == "v1"
    assert got.evidence["version"]["prompt_id"] == prompt
    assert registry.check() == (True, "Arize prompts API answers")


def test_set_labels_replaces_and_moves_labels(
    state: PromptsState, registry: ArizePromptRegistry
) -> None:
    prompt, (v1, v2) = seed(state)
    result = registry.set_labels(v1, ["stable", "production"])
    assert result.status == ToolStatus.ok
    assert result.evidence["version"]["labels"] == ["stable", "production"]
    assert state.versions[v2]["labels"] == ["staging"]  # production moved off v2
    assert registry.version_by_label(prompt, "production").evidence["version"]["id"] == v1
    # Replacing, not merging: sending only production strips the version's other labels.
    registry.set_labels(v1, ["production"])
    assert state.versions[v1]["labels"] == ["production"]
    moved = [(e["event"], e["version_id"], e["label"]) for e in state.events[-4:]]
    assert ("prompt.version.unlabeled", v2, "production") in moved
    assert ("prompt.version.unlabeled", v1, "stable") in moved
    assert state.writes()[-1]["body"] == {"labels": ["production"]}


def test_not_found_is_an_error_result_with_404(
    state: PromptsState, registry: ArizePromptRegistry
) -> None:
    prompt, _ = seed(state)
    missing = registry.version_by_label(prompt, "canary")
    assert missing.status == ToolStatus.error
    assert missing.evidence == {"http_status": 404, "not_found": True}
    assert "label 'canary' not found" in str(missing.error)
    unknown = registry.get_version(encode("PromptVersion", 999, "abcd"))
    assert unknown.evidence["http_status"] == 404


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_down_and_change_nothing(
    state: PromptsState, registry: ArizePromptRegistry, status: int
) -> None:
    prompt, (v1, v2) = seed(state)
    state.fail_next(status)
    result = registry.set_labels(v1, ["production"])
    assert result.status == ToolStatus.down
    assert result.evidence["http_status"] == status
    assert state.versions[v2]["labels"] == ["staging", "production"]
    assert registry.version_by_label(prompt, "production").evidence["version"]["id"] == v2


def test_a_429_with_retry_after_is_retried_by_urllib3(
    state: PromptsState, registry: ArizePromptRegistry
) -> None:
    """The SDK's urllib3 honours Retry-After on 429/503 (ARIZE.md says these are not retried:
    true only without the header): one throttled answer, then the write lands once."""
    prompt, (v1, _) = seed(state)
    state.fail_next(429, retry_after=0)
    result = registry.set_labels(v1, ["production"])
    assert result.status == ToolStatus.ok
    assert [r["status"] for r in state.requests[-2:]] == [429, 200]
    assert len(state.writes()) == 1


def test_a_slow_answer_is_cut_at_the_deadline(state: PromptsState, server: EmulatorServer) -> None:
    prompt, _ = seed(state)
    quick = ArizePromptRegistry(client_for(server), timeout_seconds=0.3)
    state.slow_next(3.0, path_contains="/labels/")
    result = quick.version_by_label(prompt, "production")
    assert result.status == ToolStatus.down
    assert result.error == "no answer within 0.3 s"


def test_a_wrong_key_is_refused_with_a_problem(state: PromptsState, server: EmulatorServer) -> None:
    prompt, _ = seed(state)
    wrong = ArizePromptRegistry(client_for(server, key="ak-wrong"), timeout_seconds=2.0)
    result = wrong.version_by_label(prompt, "production")
    ok, why = wrong.check()
    assert result.status == ToolStatus.error
    assert result.evidence["http_status"] == 401
    assert not ok and "401" in why


def test_wire_rules_pagination_problems_and_bad_bodies(
    state: PromptsState, server: EmulatorServer
) -> None:
    prompt, (v1, v2) = seed(state)
    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server.url, headers=auth) as http:
        page = http.get(f"/v2/prompts/{prompt}/versions", params={"limit": 1}).json()
        assert [v["id"] for v in page["prompt_versions"]] == [v2]
        assert page["pagination"]["has_more"] is True
        cursor = page["pagination"]["next_cursor"]
        last = http.get(f"/v2/prompts/{prompt}/versions", params={"cursor": cursor}).json()
        assert [v["id"] for v in last["prompt_versions"]] == [v1]
        assert last["pagination"] == {"next_cursor": None, "has_more": False}
        for body in ({"labels": "production"}, {"labels": [""]}, {"labels": [], "x": 1}, []):
            answer = http.put(f"/v2/prompt-versions/{v1}/labels", json=body)
            assert answer.status_code == 400
            assert answer.headers["content-type"] == "application/problem+json"
            assert set(answer.json()) == {"title", "status", "type", "detail", "instance"}
        assert http.put(f"/v2/prompt-versions/{v1}/labels", content=b"{").status_code == 400
        assert http.get(f"/v2/prompts/{prompt}/versions", params={"limit": 0}).status_code == 400
        assert http.get("/v2/nothing-here").json()["status"] == 404
        assert http.delete(f"/v2/prompt-versions/{v1}/labels/stable").status_code == 204
        assert http.delete(f"/v2/prompt-versions/{v1}/labels/stable").status_code == 404
    assert state.versions[v2]["labels"] == ["staging", "production"]
    assert state.versions[v1]["labels"] == []


def test_control_api_seeds_queues_faults_and_reports(server: EmulatorServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        seeded = http.post(
            CONTROL,
            json={
                "name": "p",
                "versions": [
                    {"commit_message": "old", "labels": ["production"], "minutes_ago": 60},
                    {"commit_message": "new", "labels": ["production"], "minutes_ago": 10},
                ],
            },
        )
        assert seeded.status_code == 201
        ids = seeded.json()
        assert (
            http.post(CONTROL, json={"name": "p", "versions": [{"provider": "x"}]}).status_code
            == 400
        )
        assert http.post(CONTROL + "/faults", json={"status": 503}).json() == {"queued": 1}
        assert http.post(CONTROL + "/faults", json={}).status_code == 400
        snapshot = http.get(CONTROL).json()
    versions = snapshot["prompts"][0]["versions"]
    assert [v["commit_message"] for v in versions] == ["new", "old"]
    assert versions[0]["labels"] == ["production"] and versions[1]["labels"] == []
    assert versions[0]["id"] == ids["version_ids"][1]
    assert snapshot["faults_queued"] == 1


def test_doctor_checks_the_prompts_api_when_a_key_is_set(
    server: EmulatorServer, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        arize_api_key=KEY,
        arize_api_host=server.host,
        arize_api_scheme="http",
        arize_api_port=server.port,
    )
    rows = run_checks(settings, build_adapters(settings))
    [row] = [r for r in rows if r.role == "arize.prompts"]
    assert row.ok, row
    unset = run_checks(make_settings(tmp_path), build_adapters(make_settings(tmp_path)))
    assert not [r for r in unset if r.role == "arize.prompts"]
