"""The README stays true to the code: every setting documented, no documented setting missing."""

from __future__ import annotations

import re
from pathlib import Path

from agent.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme_table_and_no_other() -> None:
    documented = set(re.findall(r"^\| `(REMEDIATOR_[A-Z_]+)` \|", README, flags=re.MULTILINE))
    actual = {f"REMEDIATOR_{name.upper()}" for name in Settings.model_fields}
    assert documented == actual


def test_quick_start_is_the_two_make_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.strip().splitlines()]
    assert commands == ["make demo", "make test"]
