"""Pages and notes longer than PagerDuty takes are cut at a word, never refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The PagerDuty emulator and both adapters, as the notes tests set them up.
from tests.sandbox.test_pagerduty_notes import (  # noqa: F401
    DEDUP,
    Emulator,
    closing,
    emulator,
    events,
    rest,
    tls,
)
from tools.pager.pagerduty_client import NOTE_LIMIT, SUMMARY_LIMIT
from tools.pager.pagerduty_events import PagerDutyEventsPager
from tools.protocols import PageRequest
from tools.text import fit


def test_fit_cuts_at_a_word_and_says_so() -> None:
    assert fit("short", 10) == "short"
    assert fit("alpha beta gamma delta", 12) == "alpha beta…"
    assert fit("x" * 20, 10) == "x" * 9 + "…"
    assert all(len(fit("word " * 400, n)) <= n for n in (2, 10, 150, 1024))


def test_a_long_summary_and_a_long_note_are_accepted_cut(
    emulator: Emulator,  # noqa: F811
    events: Callable[..., PagerDutyEventsPager],  # noqa: F811
    rest: Callable[..., Any],  # noqa: F811
) -> None:
    state, _, _ = emulator
    words = "latency breach on support-bot " * 100

    opened = events().trigger(
        PageRequest(dedup_key=DEDUP, summary=words, source="support-bot", severity="critical")
    )
    noted = rest().note_for_dedup_key(DEDUP, words * 10)

    assert (opened.status, noted.status) == ("ok", "ok"), (opened, noted)
    summary = state.accepted[0]["payload"]["summary"]
    assert len(summary) <= SUMMARY_LIMIT and summary.endswith("support-bot…")
    [note] = state.notes
    assert len(note["content"]) <= NOTE_LIMIT and note["content"].endswith("…")
