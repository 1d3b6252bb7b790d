"""Shell-shell and self-contact candidates: vertex-triangle pairs closer than a search distance.

Found once per step from the step's start positions, so a step's contact pairs are a
function of its start state alone: the Newton iterations see a fixed, smooth energy, and
the backward pass finds the same pairs again (the force kernels place each pair's contact
point themselves, differentiably, see sim.shell.kernels._pair_frame).

Broad phase: a uniform spatial hash, vectorised in numpy. Triangles are hashed by the cell
of their centre, and every vertex looks up its cell and the 26 around it (two sorted key
lists joined): the work grows with vertices + triangles, never with their product. A vertex never pairs with a triangle it belongs to or touches through
an edge of the mesh (those are held apart by the membrane, not by contact).
"""

from __future__ import annotations

import numpy as np

_PRIMES = np.array([73856093, 19349663, 83492791], np.int64)


def _keys(cells: np.ndarray) -> np.ndarray:
    return (cells.astype(np.int64) * _PRIMES).sum(axis=-1)


class ProximitySearch:
    """Vertex-triangle pairs of a fixed mesh (all shells stacked) within a search distance."""

    def __init__(self, nv: int, tris: np.ndarray) -> None:
        self.nv = nv
        self.tris = np.asarray(tris, np.int64)
        # vertices joined by a mesh edge (and each vertex to itself): never contact pairs
        e = np.concatenate([self.tris[:, [0, 1]], self.tris[:, [1, 2]], self.tris[:, [2, 0]]])
        e = np.concatenate([e, e[:, ::-1], np.stack([np.arange(nv)] * 2, axis=1)])
        self._near = np.unique(e[:, 0] * nv + e[:, 1])

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
        centre = tx.mean(axis=1)
        # cells as wide as the search distance plus the largest centre-to-corner reach: a
        # vertex near a triangle is in the cell of its centre or in one of the 26 around it
        cell = distance + float(np.linalg.norm(tx - centre[:, None], axis=2).max())
        tri_keys = _keys(np.floor(centre / cell).astype(np.int64))
        order = np.argsort(tri_keys, kind="stable")
        tri_keys = tri_keys[order]
        around = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
        query = _keys(np.floor(x / cell).astype(np.int64)[:, None, :] + around[None]).reshape(-1)
        first = np.searchsorted(tri_keys, query, side="left")
        n = np.searchsorted(tri_keys, query, side="right") - first
        v = np.repeat(np.repeat(np.arange(self.nv), len(around)), n)
        t = order[np.repeat(first, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]
        # within the distance of the triangle's box (a bound on the distance to the triangle,
        # which the force kernels measure themselves), once (two cells may share a key), and
        # not a mesh neighbour
        box_lo, box_hi = tx.min(axis=1), tx.max(axis=1)
        outside = np.maximum(box_lo[t] - x[v], 0.0) + np.maximum(x[v] - box_hi[t], 0.0)
        keep = np.einsum("nd,nd->n", outside, outside) < distance * distance
        pair = np.unique(v[keep] * len(tx) + t[keep])
        v, t = pair // len(tx), pair % len(tx)
        keep = ~self._touches(v, t)
        return v[keep], t[keep]
