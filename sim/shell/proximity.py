"""Shell-shell and self-contact candidates: vertex-triangle pairs closer than a search distance.

Found once per step from the step's start positions, so a step's contact pairs are a
function of its start state alone: the Newton iterations see a fixed, smooth energy, and
the backward pass finds the same pairs again (the force kernels place each pair's contact
point themselves, differentiably, see sim.shell.kernels._pair_frame).

Broad phase: a uniform spatial hash, vectorised in numpy. Every triangle's box (grown by
the search distance) is split into the hash cells it overlaps, every vertex hashed to its
cell, and the two sorted key lists joined: the work grows with vertices + triangles, never
with their product. A vertex never pairs with a triangle it belongs to or touches through
an edge of the mesh (those are held apart by the membrane, not by contact).
"""

from __future__ import annotations

import numpy as np

_PRIMES = np.array([73856093, 19349663, 83492791], np.int64)


def _keys(cells: np.ndarray) -> np.ndarray:
    return (cells.astype(np.int64) * _PRIMES).sum(axis=-1)


def closest_weights(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric weights (n, 3) of the points of triangles (a, b, c) closest to points p
    (the Voronoi-region construction of Ericson, Real-Time Collision Detection, 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp = p - b
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp = p - c
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    w = np.empty((len(p), 3))
    total = va + vb + vc
    safe = np.where(np.abs(total) > 1e-300, total, 1.0)
    w[:, 1], w[:, 2] = vb / safe, vc / safe  # inside the face
    w[:, 0] = 1.0 - w[:, 1] - w[:, 2]
    done = np.zeros(len(p), bool)

    def put(mask, wa, wb, wc):
        nonlocal done
        m = mask & ~done
        w[m, 0], w[m, 1], w[m, 2] = wa[m], wb[m], wc[m]
        done |= m

    zero, one = np.zeros(len(p)), np.ones(len(p))
    put((d1 <= 0) & (d2 <= 0), one, zero, zero)  # vertex a
    put((d3 >= 0) & (d4 <= d3), zero, one, zero)  # vertex b
    put((d6 >= 0) & (d5 <= d6), zero, zero, one)  # vertex c
    t = d1 / np.where(d1 - d3 != 0, d1 - d3, 1.0)
    put((vc <= 0) & (d1 >= 0) & (d3 <= 0), 1 - t, t, zero)  # edge ab
    t = d2 / np.where(d2 - d6 != 0, d2 - d6, 1.0)
    put((vb <= 0) & (d2 >= 0) & (d6 <= 0), 1 - t, zero, t)  # edge ac
    t = (d4 - d3) / np.where((d4 - d3) + (d5 - d6) != 0, (d4 - d3) + (d5 - d6), 1.0)
    put((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), zero, 1 - t, t)  # edge bc
    return w


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
        """(vertex (n,), triangle (n,)) of the pairs whose distance at positions x is below
        ``distance``."""
        if not len(self.tris) or distance <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        tx = x[self.tris]  # (T, 3 corners, 3)
        edge = np.linalg.norm(tx[:, 1] - tx[:, 0], axis=1).mean()
        cell = max(distance, edge)
        lo = np.floor((tx.min(axis=1) - distance) / cell).astype(np.int64)
        hi = np.floor((tx.max(axis=1) + distance) / cell).astype(np.int64)
        # every (triangle, overlapped cell): a box spans 1-2 cells a side when cell >= edge
        span = hi - lo + 1
        counts = span.prod(axis=1)
        tri_of = np.repeat(np.arange(len(tx)), counts)
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        sy, sz = span[tri_of, 1], span[tri_of, 2]
        offs = np.stack([local // (sy * sz), (local // sz) % sy, local % sz], axis=1)
        tri_keys = _keys(lo[tri_of] + offs)
        order = np.argsort(tri_keys, kind="stable")
        tri_keys, tri_of = tri_keys[order], tri_of[order]
        v_keys = _keys(np.floor(x / cell).astype(np.int64))
        first = np.searchsorted(tri_keys, v_keys, side="left")
        last = np.searchsorted(tri_keys, v_keys, side="right")
        n = last - first
        v = np.repeat(np.arange(self.nv), n)
        t = tri_of[np.repeat(first, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]
        keep = ~self._touches(v, t)
        v, t = v[keep], t[keep]
        w = closest_weights(x[v], tx[t, 0], tx[t, 1], tx[t, 2])
        d = np.linalg.norm(x[v] - np.einsum("nk,nkd->nd", w, tx[t]), axis=1)
        keep = d < distance
        return v[keep], t[keep]
