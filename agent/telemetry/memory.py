"""Bound how many malloc arenas glibc keeps (`REMEDIATOR_MALLOC_ARENAS`).

glibc gives each thread that allocates while another holds the main arena an arena of its own,
up to eight per CPU, and memory freed in one stays with it: `serve` runs worker loops, probe
threads and the intake's writer, and leaves its memory scattered over them. Two arenas keep the
resident set lower at no cost here: the GIL leaves the threads little to contend on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Mapping

M_ARENA_MAX = -8
"""mallopt's parameter number for the arena limit (glibc's malloc.h)."""


def limit_malloc_arenas(arenas: int, env: Mapping[str, str] = os.environ) -> bool:
    """Set glibc's arena limit for this process; True if set.

    Nothing is done for 0, off glibc, or when MALLOC_ARENA_MAX is in the environment (glibc
    read it at start: the operator's choice stands). Call it before the threads start.
    """
    if arenas <= 0 or "MALLOC_ARENA_MAX" in env or platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    return bool(ctypes.CDLL(name).mallopt(M_ARENA_MAX, arenas))
