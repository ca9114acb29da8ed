"""`audit verify` picks its path by the chain's size and the CPUs: one walk below the crossover."""

from __future__ import annotations

import pytest

from audit import ranges
from audit.ranges import (
    CROSSOVER_EVENTS_2_CPUS,
    MAX_WORKERS,
    RANGE_EVENTS,
    default_workers,
    parallel_from,
)


def test_the_crossover_is_a_measured_figure_beyond_two_ranges() -> None:
    assert CROSSOVER_EVENTS_2_CPUS >= 2 * RANGE_EVENTS


def test_below_the_crossover_or_on_one_cpu_the_chain_is_walked_once() -> None:
    assert default_workers(CROSSOVER_EVENTS_2_CPUS - 1, 2) == 1
    assert default_workers(10 * CROSSOVER_EVENTS_2_CPUS, 1) == 1
    assert default_workers(10 * CROSSOVER_EVENTS_2_CPUS, None) == 1
    assert default_workers(0, 8) == 1


def test_from_the_crossover_one_process_per_cpu_at_most_eight_and_the_ranges() -> None:
    assert default_workers(CROSSOVER_EVENTS_2_CPUS, 2) == 2
    assert default_workers(100 * CROSSOVER_EVENTS_2_CPUS, 64) == MAX_WORKERS
    ranges_of = -(-CROSSOVER_EVENTS_2_CPUS // RANGE_EVENTS)
    assert default_workers(CROSSOVER_EVENTS_2_CPUS, 64) <= ranges_of


@pytest.mark.parametrize("cpus", [3, 4, 8])
def test_more_cpus_pay_off_sooner_never_later(cpus: int) -> None:
    assert parallel_from(cpus) <= parallel_from(2) == CROSSOVER_EVENTS_2_CPUS
    assert parallel_from(cpus) >= CROSSOVER_EVENTS_2_CPUS // 2  # the fixed cost still counts
    assert default_workers(parallel_from(cpus) - 1, cpus) == 1


def test_the_rule_follows_the_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranges, "CROSSOVER_EVENTS_2_CPUS", 4 * RANGE_EVENTS)
    assert default_workers(4 * RANGE_EVENTS - 1, 2) == 1
    assert default_workers(4 * RANGE_EVENTS, 2) == 2
