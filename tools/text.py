"""Text made to fit a limit an outside system enforces (PagerDuty summaries, Slack blocks)."""

from __future__ import annotations


def fit(text: str, limit: int) -> str:
    """Return text within `limit` characters: cut at a word and ended with `…` when too long.

    The systems refuse a longer text outright; a cut mid-word reads as a typo.
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"
