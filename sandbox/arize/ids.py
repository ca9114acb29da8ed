"""Arize's global ids: padded standard base64 of `Kind:N:suffix` (ARIZE.md §2).

The SDK treats a string that is not such an id as a *name*, and sends ids percent-encoded in paths
(`=` as `%3D`), so the emulator mints only ids whose base64 has no `/` or `+` (they would need
encoding the SDK does not do) and decodes each path segment before reading it.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import secrets

KINDS = ("Monitor", "Tag", "Space", "Project", "Prompt", "PromptVersion", "User")
_ID_TEXT = re.compile(r"^(?P<kind>[A-Za-z]+):(?P<number>[0-9]+):(?P<suffix>[A-Za-z0-9]+)$")


def encode(kind: str, number: int, suffix: str) -> str:
    """Return the id of `Kind:number:suffix` (standard base64, padded)."""
    return base64.b64encode(f"{kind}:{number}:{suffix}".encode()).decode("ascii")


def decode(identifier: str) -> tuple[str, int, str] | None:
    """Return (kind, number, suffix) of an id, or None when the text is not an id (a name)."""
    try:
        raw = base64.b64decode(identifier.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    match = _ID_TEXT.match(raw)
    if match is None:
        return None
    return match["kind"], int(match["number"]), match["suffix"]


def is_id_of(identifier: str, kind: str) -> bool:
    """Tell whether `identifier` is a well-formed id of this kind."""
    decoded = decode(identifier)
    return decoded is not None and decoded[0] == kind


class IdMinter:
    """Mint fresh ids of each kind, numbered in order, never with `/` or `+` in them."""

    def __init__(self, start: int = 100) -> None:
        self._numbers = itertools.count(start)

    def mint(self, kind: str) -> str:
        """Return a new id of this kind."""
        if kind not in KINDS:
            raise ValueError(f"unknown id kind {kind!r}")
        while True:
            identifier = encode(kind, next(self._numbers), secrets.token_hex(4))
            if "/" not in identifier and "+" not in identifier:
                return identifier
