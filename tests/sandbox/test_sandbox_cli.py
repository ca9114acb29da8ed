"""`python -m sandbox`: the harness's own command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from sandbox.cli import app

ROOT = Path(__file__).parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_refuses_a_missing_folder_and_an_empty_one(tmp_path: Path) -> None:
    code, _, err = run("eval", str(tmp_path / "nope"))
    assert code == 2 and "is not a folder" in err
    code, _, err = run("eval", str(tmp_path))
    assert code == 2 and "no scenario" in err


def test_the_module_entry_point_lists_the_harness_commands() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "sandbox", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    for command in ("up", "demo", "eval"):
        assert command in finished.stdout
    assert "python -m sandbox" in finished.stdout
