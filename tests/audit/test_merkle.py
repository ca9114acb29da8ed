"""The Merkle tree matches RFC 9162's definition, and a proof holds only at its own place."""

from __future__ import annotations

import hashlib

import pytest

from audit.merkle import EMPTY_ROOT, Frontier, PartialTree, node_hash, root_from_path


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 9162's MTH, written the way the RFC defines it."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(reference_root(leaves[:split]), reference_root(leaves[split:]))


def leaves_of(count: int) -> list[bytes]:
    return [hashlib.sha256(f"leaf {i}".encode()).digest() for i in range(count)]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 8, 13, 33])
def test_the_frontier_gives_the_rfc_root_at_every_size(size: int) -> None:
    leaves = leaves_of(size)
    frontier = Frontier()
    for count, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.root() == reference_root(leaves[:count])
    assert Frontier(size, frontier.hashes()).root() == reference_root(leaves)


@pytest.mark.parametrize("size", [1, 2, 7, 16, 21])
def test_every_leaf_is_proven_at_its_place_from_any_earlier_frontier(size: int) -> None:
    leaves = leaves_of(size)
    root = reference_root(leaves)
    for start in range(size + 1):
        known = Frontier()
        for leaf in leaves[:start]:
            known.append(leaf)
        tree = PartialTree(Frontier(start, known.hashes()), leaves[start:])
        assert tree.root() == root
        for index in range(start, size):
            path = tree.inclusion(index)
            assert root_from_path(index, size, leaves[index], path) == root
            # The same path proves nothing at another place or for another leaf.
            for other in {index - 1, index + 1} & set(range(size)):
                assert root_from_path(other, size, leaves[index], path) != root
            assert root_from_path(index, size, leaves[index - 1], path) != root or size == 1
            assert root_from_path(index, size, leaves[index], [*path, root]) is None


def test_a_frontier_that_does_not_fit_its_size_is_refused() -> None:
    with pytest.raises(ValueError, match="subtrees"):
        Frontier(6, [EMPTY_ROOT])
