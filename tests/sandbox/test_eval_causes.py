"""The eval's cause checks fail what a naive grouping does: merged causes, extra alerts, threads."""

from __future__ import annotations

from sandbox.evaluation.causes import ExpectedCause, SeenCause, compare_causes

TWO = [
    ExpectedCause(owner="ml-platform", services=["chatbot", "rag-search"]),
    ExpectedCause(owner="ml-platform", services=["docs-qa", "help-desk"]),
]


def seen(services: list[str], alerts: int = 1, threads: int = 1) -> SeenCause:
    text = "Cause: " + ", ".join(services)
    return SeenCause("ml-platform", sorted(services), alerts, [text] * threads)


def test_the_expected_causes_pass() -> None:
    causes = [seen(["rag-search", "chatbot"]), seen(["help-desk", "docs-qa"])]
    assert compare_causes({"ml-platform": 2}, TWO, {"ml-platform": 2}, causes) == []


def test_two_causes_merged_into_one_fail() -> None:
    merged = [seen(["chatbot", "rag-search", "help-desk", "docs-qa"])]
    problems = compare_causes({"ml-platform": 2}, TWO, {"ml-platform": 1}, merged)
    assert any(p.startswith("PagerDuty alerts") for p in problems)
    assert any(p.startswith("causes:") for p in problems)


def test_a_cause_with_two_alerts_or_no_thread_or_a_service_left_out_fails() -> None:
    left_out = SeenCause("ml-platform", ["chatbot", "rag-search"], 1, ["Cause: chatbot"])
    causes = [seen(["chatbot", "rag-search"], alerts=2), seen(["help-desk", "docs-qa"], threads=0)]
    problems = compare_causes(None, TWO, {}, causes)
    assert any("2 PagerDuty alerts" in p for p in problems)
    assert any("0 Slack threads" in p for p in problems)
    assert any(
        "does not name rag-search" in p for p in compare_causes(None, TWO[:1], {}, [left_out])
    )
    # A cause of one service needs no thread of its own (its incident's thread says it).
    assert (
        compare_causes(
            None, [ExpectedCause(owner="t", services=["a"])], {}, [SeenCause("t", ["a"], 1, [])]
        )
        == []
    )
