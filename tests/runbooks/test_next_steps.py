"""Runbooks' suggested next steps: optional, validated, and filled in for the shipped runbooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.graph.policy import builtin_runbook
from agent.settings import Settings
from runbooks.library import SHIPPED_RUNBOOKS, load_runbooks
from runbooks.loader import ConfigError
from runbooks.schema import DIAGNOSES, MAX_STEP_CHARS, MAX_STEPS
from tests.runbooks.test_runbooks import runbook, text, write


def test_next_steps_are_optional() -> None:
    assert all(runbook().next_steps.of(d) == [] for d in DIAGNOSES)


def test_steps_are_one_line_each_and_listed_per_diagnosis() -> None:
    found = runbook(extra="next_steps:\n  endpoint_isolated:\n    - |\n      Check\n      it.\n")

    assert found.next_steps.of("endpoint_isolated") == ["Check it."]
    assert found.next_steps.of("no_fault_found") == []
    assert found.next_steps.of("not_a_diagnosis") == []


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ("  reboot:\n    - x\n", "next_steps.reboot: unknown key (not in the schema)"),
        ("  segment_only: [a, a]\n", "segment_only: step listed twice: 'a'"),
        ("  segment_only: ['']\n", "an empty step: say what to do"),
        (
            f"  segment_only: [{'x' * (MAX_STEP_CHARS + 1)}]\n",
            f"{MAX_STEP_CHARS + 1} characters: at most {MAX_STEP_CHARS}",
        ),
        (f"  segment_only: [{', '.join(map(str, range(MAX_STEPS + 1)))}]\n", "at most 10 items"),
        ("  segment_only: [{a: 1}]\n", "valid string"),
    ],
)
def test_wrong_next_steps_are_errors_naming_them(tmp_path: Path, steps: str, problem: str) -> None:
    path = write(tmp_path, "slow.yaml", text(extra=f"next_steps:\n{steps}"))

    with pytest.raises(ConfigError) as caught:
        load_runbooks(tmp_path)

    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_every_shipped_runbook_suggests_steps_for_each_diagnosis_it_acts_on() -> None:
    for found in load_runbooks(SHIPPED_RUNBOOKS):
        for diagnosis in DIAGNOSES:
            if found.allowed(diagnosis):
                steps = found.next_steps.of(diagnosis)
                assert steps, f"{found.ref}: no next steps for {diagnosis}"
                assert all(len(step.split()) >= 4 for step in steps), (found.ref, steps)


def test_the_built_in_policy_suggests_steps_and_says_to_write_a_runbook() -> None:
    builtin = builtin_runbook(Settings(_env_file=None, env="dev"))  # type: ignore[call-arg]

    for diagnosis in DIAGNOSES:
        steps = builtin.next_steps.of(diagnosis)
        assert steps and "No runbook covers this breach" in steps[-1]
