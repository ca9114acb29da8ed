"""The Merkle tree over the audit chain (RFC 9162): tree heads and proofs that an event is in it.

Leaf `i` is event `i + 1`. A signed checkpoint names the tree of the first `n` events by its root;
a proof of inclusion (about log2(n) hashes) shows that one event, exactly as exported, sits at its
place in that tree, without the events around it: what lets an auditor check one incident's
events, interleaved with every other incident's, with nothing but the public key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(*, prev_hash: str, hash: str, body: str) -> bytes:
    """Return the tree's leaf of an event: its link (`body`, see audit.chain) and both its hashes.

    Everything stored of the event is in it, so a leaf that matches is the event unaltered.
    """
    return link_leaf(hash, f"{prev_hash}\n{body}".encode())


def link_leaf(hash: str, linked: bytes) -> bytes:
    """Return `leaf_hash` from the bytes the event's HMAC covers (`prev_hash`, newline, body).

    SHA-256 of 0x00, then `hash`, newline, `prev_hash`, newline, body in UTF-8: verification
    reuses the HMAC's bytes instead of encoding the event a second time.
    """
    return _sha256(LEAF_PREFIX + hash.encode() + b"\n" + linked).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the hash of an inner node from its two children."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """Return the largest power of two smaller than `size` (>= 2): where RFC 9162 splits."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_sizes(size: int) -> list[int]:
    """Return the sizes of the perfect subtrees that make up a tree of `size` leaves, left first."""
    return [1 << bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]


class Frontier:
    """The right edge of a tree being built: one root per perfect subtree, largest first.

    Enough to extend the tree leaf by leaf and to compute its root, in log2(n) hashes of memory.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        sizes = subtree_sizes(size)
        if len(sizes) != len(hashes):
            raise ValueError(f"{size} leaves make {len(sizes)} subtrees, not {len(hashes)}")
        self.size = size
        self.nodes: list[tuple[int, bytes]] = list(zip(sizes, hashes, strict=True))

    def copy(self) -> Frontier:
        """Return an independent copy."""
        twin = Frontier()
        twin.size, twin.nodes = self.size, list(self.nodes)
        return twin

    def append(self, leaf: bytes) -> None:
        """Add the next leaf (a binary counter: as many merges as the new size's trailing zeros)."""
        size = self.size = self.size + 1
        width, node, nodes = 1, leaf, self.nodes
        while not size & 1:
            node = _sha256(NODE_PREFIX + nodes.pop()[1] + node).digest()
            width <<= 1
            size >>= 1
        nodes.append((width, node))

    def add_subtree(self, size: int, root: bytes) -> None:
        """Add a perfect subtree of `size` leaves that starts where the tree ends."""
        if self.size % size or (self.nodes and self.nodes[-1][0] < size):
            raise ValueError(f"a subtree of {size} leaves cannot follow a tree of {self.size}")
        self.nodes.append((size, root))
        self.size += size
        while len(self.nodes) > 1 and self.nodes[-1][0] == self.nodes[-2][0]:
            (width, left), (_, right) = self.nodes[-2], self.nodes[-1]
            self.nodes[-2:] = [(2 * width, node_hash(left, right))]

    def hashes(self) -> list[bytes]:
        """Return the subtrees' roots, largest first."""
        return [root for _, root in self.nodes]

    def root(self) -> bytes:
        """Return the tree's root (RFC 9162's MTH of the leaves so far)."""
        if not self.nodes:
            return EMPTY_ROOT
        found = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            found = node_hash(left, found)
        return found


class PartialTree:
    """A tree of `size` leaves known by the frontier of its first `start` leaves and the rest.

    Proofs for leaves at or after `start` need only those two: the subtrees left of a leaf are in
    the frontier, those right of it are built from the leaves that follow.
    """

    def __init__(self, frontier: Frontier, leaves: Sequence[bytes]) -> None:
        self.start = frontier.size
        self.size = frontier.size + len(leaves)
        self._leaves = leaves
        self._known: dict[tuple[int, int], bytes] = {}
        low = 0
        for width, root in frontier.nodes:
            self._known[(low, low + width)] = root
            low += width

    def hash_range(self, low: int, high: int) -> bytes:
        """Return the root of the subtree over leaves `low`..`high - 1`."""
        found = self._known.get((low, high))
        if found is not None:
            return found
        if high - low == 1:
            if low < self.start:
                raise ValueError(f"leaf {low} is inside the frontier and cannot be read")
            return self._leaves[low - self.start]
        middle = low + _split(high - low)
        found = node_hash(self.hash_range(low, middle), self.hash_range(middle, high))
        self._known[(low, high)] = found
        return found

    def root(self) -> bytes:
        """Return the root of the whole tree."""
        return self.hash_range(0, self.size) if self.size else EMPTY_ROOT

    def inclusion(self, index: int) -> list[bytes]:
        """Return the audit path of leaf `index` (RFC 9162 2.1.3.1), nearest sibling first."""
        if not self.start <= index < self.size:
            raise ValueError(f"leaf {index} is not between {self.start} and {self.size - 1}")
        path: list[bytes] = []
        low, high = 0, self.size
        while high - low > 1:
            middle = low + _split(high - low)
            if index < middle:
                path.append(self.hash_range(middle, high))
                high = middle
            else:
                path.append(self.hash_range(low, middle))
                low = middle
        path.reverse()
        return path


def root_from_path(index: int, size: int, leaf: bytes, path: Iterable[bytes]) -> bytes | None:
    """Return the root that leaf `index` of a tree of `size` leaves and its path lead to.

    None when the path cannot belong to that place (too long, too short, index out of the tree):
    RFC 9162 section 2.1.3.2, so an event proven here is proven at its own sequence number.
    """
    if not 0 <= index < size:
        return None
    position, last, found = index, size - 1, leaf
    for sibling in path:
        if last == 0:
            return None
        if position & 1 or position == last:
            found = node_hash(sibling, found)
            while not position & 1 and position:
                position >>= 1
                last >>= 1
        else:
            found = node_hash(found, sibling)
        position >>= 1
        last >>= 1
    return found if last == 0 else None
