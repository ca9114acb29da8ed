"""Decoding a JSON request body strictly, with bounds, before anything else looks at it."""

from __future__ import annotations

import json
import re
from typing import Any

from agent.store.values import find_unstorable_text


class BodyError(ValueError):
    """A body refused as it was decoded: the answer's status, a metric reason and what is wrong."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


# A JSON string (escapes included): brackets inside one do not nest anything.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")
# The only ways a JSON text can carry a NUL or a lone surrogate: as an escape.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def decode_json(body: bytes, *, max_depth: int) -> Any:
    """Return the decoded body, or raise BodyError saying what is wrong with it.

    Refused: an empty body, text that is not UTF-8 or not JSON, NaN and Infinity, numbers out of
    a double's range (400); arrays and objects nested deeper than `max_depth` (400, before the
    parser recurses); strings or keys no database can store, a NUL or a lone surrogate (422,
    naming where).
    """
    if not body.strip():
        raise BodyError(400, "bad_json", "empty body: expected a JSON object")
    if nesting_exceeds(body, max_depth):
        raise BodyError(
            400,
            "too_deep",
            f"JSON nested deeper than the limit of {max_depth} levels (REMEDIATOR_MAX_JSON_DEPTH)",
        )
    try:
        value = json.loads(
            body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except UnicodeDecodeError:
        raise BodyError(400, "bad_json", "body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BodyError(
            400, "bad_json", f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise BodyError(400, "bad_json", f"malformed JSON: {exc}") from None
    if _SUSPECT_ESCAPE.search(body) is not None:
        found = find_unstorable_text(value)
        if found is not None:
            where, problem = found
            raise BodyError(422, "bad_text", f"{where} {problem}")
    return value


def nesting_exceeds(body: bytes, limit: int) -> bool:
    """Tell whether a JSON text nests arrays and objects more than `limit` deep.

    Counting brackets is enough for almost every body (fewer than `limit` in all); only the
    others are scanned, strings first taken out.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        shown = text if len(text) <= 32 else f"{text[:29]}..."
        raise ValueError(f"number {shown} is out of range")
    return number
