"""Shell-shell and self-contact candidates closer than a search distance: vertex-triangle
pairs, and edge-edge pairs (two crossing edges can touch with no vertex near a face: a
coarse sheet laid across another's edge).

Found once per step from the step's start positions, so a step's contact pairs are a
function of its start state alone: the Newton iterations see a fixed, smooth energy, and
the backward pass finds the same pairs again (the force kernels place each pair's contact
point themselves, differentiably, see sim.shell.kernels._pair_frame).

Broad phase: a uniform spatial hash, vectorised in numpy. Triangles (edges) are hashed by
the cell of their centre (midpoint), and every vertex (edge midpoint) looks up its cell and
the 26 around it (two sorted key lists joined): the work grows with vertices + triangles
(edges), never with their product. A vertex never pairs with a triangle it belongs to or
touches through an edge of the mesh, nor an edge with one it shares a vertex with (those
are held apart by the membrane, not by contact).
"""

from __future__ import annotations

import numpy as np

_PRIMES = np.array([73856093, 19349663, 83492791], np.int64)
INSIDE = 1e-3  # an edge pair's closest points must be this far (of the edges' lengths) from their ends


def _keys(cells: np.ndarray) -> np.ndarray:
    return (cells.astype(np.int64) * _PRIMES).sum(axis=-1)


class ProximitySearch:
    """Vertex-triangle and edge-edge pairs of a fixed mesh (all shells stacked) within a
    search distance."""

    def __init__(self, nv: int, tris: np.ndarray) -> None:
        self.nv = nv
        self.tris = np.asarray(tris, np.int64)
        # vertices joined by a mesh edge (and each vertex to itself): never contact pairs
        e = np.concatenate([self.tris[:, [0, 1]], self.tris[:, [1, 2]], self.tris[:, [2, 0]]])
        e = np.concatenate([e, e[:, ::-1], np.stack([np.arange(nv)] * 2, axis=1)])
        self._near = np.unique(e[:, 0] * nv + e[:, 1])
        self.edges = np.unique(np.sort(e[: 3 * len(self.tris)], axis=1), axis=0)  # each mesh edge once

    def _touches(self, v: np.ndarray, t: np.ndarray) -> np.ndarray:
        near = np.zeros(len(v), bool)
        for k in range(3):
            key = v * self.nv + self.tris[t, k]
            idx = np.minimum(np.searchsorted(self._near, key), len(self._near) - 1)
            near |= self._near[idx] == key
        return near

    def pairs(self, x: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
        """(vertex (n,), triangle (n,)) of the pairs whose distance at positions x may be below
        ``distance`` (it is below it to the triangle's bounding box)."""
        if not len(self.tris) or distance <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        tx = x[self.tris]  # (T, 3 corners, 3)
        v, t = _neighbours(x, tx, distance)
        # within the distance of the triangle's box (a bound on the distance to the triangle,
        # which the force kernels measure themselves), once (two cells may share a key), and
        # not a mesh neighbour
        keep = _box_gap2(np.concatenate([x, x], axis=1)[v], _boxes(tx)[t]) < distance * distance
        pair = np.unique(v[keep] * len(tx) + t[keep])
        v, t = pair // len(tx), pair % len(tx)
        keep = ~self._touches(v, t)
        return v[keep], t[keep]

    def edge_pairs(self, x: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
        """(edge a (n, 2), edge b (n, 2)) vertex ids of the edge pairs, each once, whose distance
        at positions x may be below ``distance`` (it is below it between their boxes), that
        share no vertex, and whose closest points lie inside both edges: where one of them
        is an end, it is a vertex near an edge, which the vertex-triangle pairs hold."""
        if not len(self.edges) or distance <= 0:
            return np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64)
        ex = x[self.edges]  # (E, 2 ends, 3)
        a, b = _neighbours(ex.mean(axis=1), ex, distance, query_reach=0.5 * np.linalg.norm(ex[:, 1] - ex[:, 0], axis=1).max(),
                           half=True)
        boxes = _boxes(ex)
        keep = (a != b) & (_box_gap2(boxes[a], boxes[b]) < distance * distance)
        a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
        pair = np.unique(a * len(ex) + b)
        ea, eb = self.edges[pair // len(ex)], self.edges[pair % len(ex)]
        shared = (ea[:, :1] == eb).any(axis=1) | (ea[:, 1:] == eb).any(axis=1)
        ea, eb = ea[~shared], eb[~shared]
        s, t = _edge_weights(x[ea[:, 0]], x[ea[:, 1]], x[eb[:, 0]], x[eb[:, 1]])
        inside = (s > INSIDE) & (s < 1 - INSIDE) & (t > INSIDE) & (t < 1 - INSIDE)
        return ea[inside], eb[inside]


def _edge_weights(a0, a1, b0, b1) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) of the closest points a0 + s (a1 - a0) and b0 + t (b1 - b0) of segments, row
    by row, clamped onto the segments (as sim.shell.kernels._edge_weights)."""
    da, db, r = a1 - a0, b1 - b0, a0 - b0
    aa, bb, ab = (np.einsum("nd,nd->n", u, w) for u, w in ((da, da), (db, db), (da, db)))
    ar, br = np.einsum("nd,nd->n", da, r), np.einsum("nd,nd->n", db, r)
    det = aa * bb - ab * ab
    free = det > 1e-12 * aa * bb
    s = np.where(free, np.clip((ab * br - ar * bb) / np.where(free, det, 1.0), 0.0, 1.0), 0.0)
    t = (ab * s + br) / (bb + 1e-300)
    below, above = t < 0, t > 1
    s = np.where(below, np.clip(-ar / (aa + 1e-300), 0, 1), np.where(above, np.clip((ab - ar) / (aa + 1e-300), 0, 1), s))
    return s, np.clip(t, 0.0, 1.0)


def _boxes(corners: np.ndarray) -> np.ndarray:
    """(n, 6) axis-aligned boxes, low corner then high, of (n, corners, 3) shapes."""
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)


def _box_gap2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distance between (n, 6) boxes, row by row (one gather per side of the
    candidate pairs: the broad phase's cost is these gathers)."""
    gap = np.maximum(b[:, :3] - a[:, 3:], 0.0) + np.maximum(a[:, :3] - b[:, 3:], 0.0)
    return (gap * gap).sum(axis=1)


def _neighbours(query: np.ndarray, items: np.ndarray, distance: float, query_reach: float = 0.0, half: bool = False):
    """(query ids, item ids) of the points ``query`` (Q, 3) and the items (I, corners, 3)
    hashed into the same or neighbouring cells, a superset of the pairs within ``distance``
    when each query point stands for a shape reaching ``query_reach`` around it. ``half``:
    the queries are the items' own centres and pairs are unordered, so each looks up its
    cell and only the 13 neighbours on one side (of two neighbouring cells, the pair is
    found from the one whose offset to the other is in that half)."""
    centre = items.mean(axis=1)
    # cells as wide as the search distance plus the largest reaches from the points hashed:
    # a query near an item is in the cell of its centre or in one of the 26 around it
    cell = distance + query_reach + float(np.linalg.norm(items - centre[:, None], axis=2).max())
    item_keys = _keys(np.floor(centre / cell).astype(np.int64))
    order = np.argsort(item_keys, kind="stable")
    item_keys = item_keys[order]
    around = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    if half:  # the offsets lexicographically at or after (0, 0, 0)
        around = around[13:]
    keys = _keys(np.floor(query / cell).astype(np.int64)[:, None, :] + around[None]).reshape(-1)
    first = np.searchsorted(item_keys, keys, side="left")
    n = np.searchsorted(item_keys, keys, side="right") - first
    q = np.repeat(np.repeat(np.arange(len(query)), len(around)), n)
    i = order[np.repeat(first, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]
    return q, i
