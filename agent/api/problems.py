"""The error answer every route gives, and the error responses the OpenAPI spec lists."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """An error answer: what was wrong with the request."""

    detail: str
    missing: list[str] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 413, 415, 422, 503)
}
"""The error answers of a route that takes a JSON body behind a token."""
