"""Values every backend can store, checked where they come in rather than failing at a commit.

PostgreSQL refuses a NUL character in any text (`\\u0000` in a JSON string decodes to one), and
no driver can encode a lone UTF-16 surrogate (`\\ud800`, which JSON's escapes allow) as UTF-8;
SQLite stores neither either. Times must be aware, and stay in range once moved to UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
"""The times accepted from outside: room to add or subtract a window without overflowing."""


def text_problem(text: str) -> str | None:
    """Return why no backend can store this text, or None when every one can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    character = found.group()
    if character == "\x00":
        return "contains a NUL character (\\u0000)"
    return f"contains a lone surrogate (\\u{ord(character):04x}); text must be valid Unicode"


def find_unstorable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """Return (where, why) for the first string, or object key, that no backend can store.

    `where` is a path such as `alerts[0].labels.alertname` (`body` for the value itself).
    """
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node)
            if problem is not None:
                return where or "body", problem
        elif isinstance(node, Mapping):
            for key, item in reversed(list(node.items())):
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and (problem := text_problem(key)) is not None:
                    return f"a key of {where or 'the body'}", f"{problem} ({key!r})"
                stack.append((name, item))
        elif isinstance(node, list | tuple):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(node))))
    return None


def _storable_text(text: str) -> str:
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(f"text {problem}")
    return text


StorableText = Annotated[str, AfterValidator(_storable_text)]
"""Text every backend can store (for request models and query parameters)."""


def as_utc(moment: datetime) -> datetime:
    """Return an aware time in UTC, or raise ValueError when it is outside the accepted range."""
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"time {moment.isoformat()} is out of range") from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(
            f"time {moment.isoformat()} is out of range ({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})"
        )
    return utc


UTCTime = Annotated[AwareDatetime, AfterValidator(as_utc)]
"""An aware time (with its UTC offset) within the accepted range, moved to UTC."""
