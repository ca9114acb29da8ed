"""`serve` and `worker` bound glibc's malloc arenas, unless the operator said otherwise."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from agent.settings import Settings
from agent.telemetry.memory import limit_malloc_arenas


def test_the_environment_and_zero_leave_glibc_alone() -> None:
    assert limit_malloc_arenas(2, {"MALLOC_ARENA_MAX": "4"}) is False
    assert limit_malloc_arenas(0, {}) is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_limit() -> None:
    code = "from agent.telemetry.memory import limit_malloc_arenas as f; print(f(2, {}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


def test_the_setting_defaults_to_two_and_refuses_a_negative() -> None:
    assert Settings(env="dev").malloc_arenas == 2
    with pytest.raises(ValueError, match="malloc_arenas"):
        Settings(env="dev", malloc_arenas=-1)
