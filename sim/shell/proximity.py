"""Shell-shell and self-contact candidates that may come within a contact distance during a
step: vertex-triangle pairs, and edge-edge pairs (two crossing edges can touch with no
vertex near a face: a coarse sheet laid across another's edge).

A pair is a candidate when its gap (between bounding boxes) is below the distance plus a
slack times the largest displacement of one of its vertices relative to another (given per
vertex: the last step's motion, say). Only relative motion closes a gap: a sheet lifted as a
whole keeps no more candidates than one at rest (a 65 x 65 sheet being lifted had 142,000
pairs under a bound from the largest motion anywhere, a pair-force pass of 40 ms per
Hessian-vector product). The slack term is capped at the slack times the largest motion.

Found once per step from the step's start positions, so a step's contact pairs are a
function of its start state alone: the Newton iterations see a fixed, smooth energy, and
the backward pass finds the same pairs again (the force kernels place each pair's contact
point themselves, differentiably, see sim.shell.kernels._pair_frame).

Broad phase: a uniform spatial hash in Taichi kernels, on the device that holds the
positions. Triangles (edges) are binned by the cell of their centre (midpoint) into a
counting-sorted table; every vertex (edge midpoint) visits its cell and the 26 around it,
so the work grows with vertices + triangles (edges), never with their product. A bucket
may hold other cells' items (the table is hashed): only those binned in the visited cell
count, so each pair is met once. A vertex never pairs with a triangle it belongs to or
touches through an edge of the mesh, nor an edge with one it shares a vertex with (those
are held apart by the membrane, not by contact). Kernel threads append pairs in any order;
the pairs are then sorted, so the search is deterministic.
"""

import numpy as np
import taichi as ti

from sim.host_arrays import read, write
from sim.shell import kernels

A = ti.types.ndarray()
T = ti.template()
INSIDE = 1e-3  # an edge pair's closest points must be this far (of the edges' lengths) from their ends


@ti.func
def _bucket(cell, table):
    return ((cell[0] * 73856093) ^ (cell[1] * 19349663) ^ (cell[2] * 83492791)) & (table - 1)


@ti.func
def _centre(x: T, items: T, i):
    c = x[items[i, 0]]
    for k in range(1, items.shape[1]):
        c += x[items[i, k]]
    return c / items.shape[1]


@ti.func
def _box(x: T, items: T, i):
    lo = x[items[i, 0]]
    hi = lo
    for k in range(1, items.shape[1]):
        lo = ti.min(lo, x[items[i, k]])
        hi = ti.max(hi, x[items[i, k]])
    return lo, hi


@ti.func
def _gap2(lo_a, hi_a, lo_b, hi_b):
    """Squared distance between two axis-aligned boxes."""
    gap = ti.max(lo_b - hi_a, 0.0) + ti.max(lo_a - hi_b, 0.0)
    return gap.norm_sqr()


@ti.func
def _append(out: T, count: T, a, b):
    k = ti.atomic_add(count[0], 1)
    if k < out.shape[0]:
        out[k, 0] = a
        out[k, 1] = b


@ti.kernel
def _extent(x: A, items: A) -> ti.f64:
    """The largest distance from an item's centre to its corners."""
    worst = 0.0
    ti.loop_config(serialize=kernels.SERIAL)
    for i in range(items.shape[0]):
        c = _centre(x, items, i)
        for k in range(items.shape[1]):
            ti.atomic_max(worst, (x[items[i, k]] - c).norm())
    return worst


@ti.kernel
def _bin(x: A, items: A, size: ti.f64, cell: A, slot: A, count: A, start: A, order: A):
    """Counting sort of the items by the bucket of their centre's cell: bucket b's items are
    order[start[b]:start[b + 1]]."""
    table = count.shape[0]
    ti.loop_config(serialize=kernels.SERIAL)
    for b in range(table):
        count[b] = 0
    ti.loop_config(serialize=kernels.SERIAL)
    for i in range(items.shape[0]):
        c = ti.floor(_centre(x, items, i) / size, ti.i32)
        cell[i] = c
        slot[i] = ti.atomic_add(count[_bucket(c, table)], 1)
    start[0] = 0
    ti.loop_config(serialize=True)
    for b in range(table):
        start[b + 1] = start[b] + count[b]
    ti.loop_config(serialize=kernels.SERIAL)
    for i in range(items.shape[0]):
        order[start[_bucket(cell[i], table)] + slot[i]] = i


@ti.func
def _reach2(motion: T, a, b, distance, slack, cap):
    """Squared reach of a pair from one of its vertices a to another b (see the module doc)."""
    r = distance + ti.min(slack * (motion[a] - motion[b]).norm(), cap)
    return r * r


@ti.kernel
def _vertex_triangle(x: A, motion: A, nq: ti.i32, first_obstacle: ti.i32, tris: A, size: ti.f64, cell: A, start: A,
                     order: A, near_start: A, near: A, distance: ti.f64, slack: ti.f64, cap: ti.f64, out: A,
                     count: A) -> ti.i32:
    count[0] = 0
    table = start.shape[0] - 1
    ti.loop_config(serialize=kernels.SERIAL)
    for v in range(nq):
        p = x[v]
        home = ti.floor(p / size, ti.i32)
        for nb in range(27):  # a runtime loop: unrolled, such kernels take minutes to compile
            c = home + ti.Vector([nb // 9 - 1, nb // 3 % 3 - 1, nb % 3 - 1])
            b = _bucket(c, table)
            for j in range(start[b], start[b + 1]):
                t = order[j]
                # (an obstacle vertex and an obstacle triangle never pair)
                if (cell[t] == c).all() and (v < first_obstacle or tris[t, 0] < first_obstacle):
                    lo, hi = _box(x, tris, t)
                    gap2 = _gap2(p, p, lo, hi)
                    close = False
                    for k in ti.static(range(3)):
                        if gap2 < _reach2(motion, v, tris[t, k], distance, slack, cap):
                            close = True
                    if close:
                        touches = False  # v is a corner of t or joined to one by a mesh edge
                        for m in range(near_start[v], near_start[v + 1]):
                            for k in ti.static(range(3)):
                                if near[m] == tris[t, k]:
                                    touches = True
                        if not touches:
                            _append(out, count, v, t)
    return count[0]


@ti.kernel
def _edge_edge(x: A, motion: A, edges: A, first_obstacle: ti.i32, size: ti.f64, cell: A, start: A, order: A,
               distance: ti.f64, slack: ti.f64, cap: ti.f64, out: A, count: A) -> ti.i32:
    count[0] = 0
    table = start.shape[0] - 1
    ti.loop_config(serialize=kernels.SERIAL)
    for a in range(edges.shape[0]):
        # obstacle edges (vertices from first_obstacle on) never pair among themselves, so
        # they do not search: a shell edge finds them in all 27 cells around its own. Of two
        # shell edges, the one whose cell comes first lexicographically finds the other (in
        # one cell, the lower index): their cell and the 13 after it.
        if edges[a, 0] >= first_obstacle:
            continue
        a0, a1 = x[edges[a, 0]], x[edges[a, 1]]
        lo_a, hi_a = ti.min(a0, a1), ti.max(a0, a1)
        home = cell[a]
        for nb in range(27):
            c = home + ti.Vector([nb // 9 - 1, nb // 3 % 3 - 1, nb % 3 - 1])
            b = _bucket(c, table)
            for j in range(start[b], start[b + 1]):
                e = order[j]
                if (cell[e] == c).all() and (edges[e, 0] >= first_obstacle or nb > 13 or (nb == 13 and a < e)):
                    b0, b1 = x[edges[e, 0]], x[edges[e, 1]]
                    gap2 = _gap2(lo_a, hi_a, ti.min(b0, b1), ti.max(b0, b1))
                    shared, close = False, False
                    for i, k in ti.static(ti.ndrange(2, 2)):
                        if edges[a, i] == edges[e, k]:
                            shared = True
                        if gap2 < _reach2(motion, edges[a, i], edges[e, k], distance, slack, cap):
                            close = True
                    if close and not shared:
                        s, t = kernels.edge_weights(a0, a1, b0, b1)
                        if s > INSIDE and s < 1.0 - INSIDE and t > INSIDE and t < 1.0 - INSIDE:
                            _append(out, count, ti.min(a, e), ti.max(a, e))
    return count[0]


class _Hash:
    """Items (triangles or edges: (n, corners) vertex ids) binned by their centre's cell."""

    def __init__(self, items: np.ndarray) -> None:
        self.n = len(items)
        self.items = ti.ndarray(ti.i32, (max(self.n, 1), items.shape[1]))
        if self.n:
            write(self.items, items.astype(np.int32))
        table = 1 << max(int(np.ceil(np.log2(max(2 * self.n, 64)))), 6)
        self.count, self.start = ti.ndarray(ti.i32, table), ti.ndarray(ti.i32, table + 1)
        self.cell = ti.ndarray(ti.types.vector(3, ti.i32), max(self.n, 1))
        self.slot, self.order = ti.ndarray(ti.i32, max(self.n, 1)), ti.ndarray(ti.i32, max(self.n, 1))

    def build(self, x, distance: float, queries_are_items: bool) -> float:
        """Bin the items at positions x in cells wide enough that every query point within
        ``distance`` of an item lies in the item's cell or a neighbouring one (the items'
        own centres as queries: of the items they stand for). Returns the cell size."""
        size = distance + (2 if queries_are_items else 1) * _extent(x, self.items)
        _bin(x, self.items, size, self.cell, self.slot, self.count, self.start, self.order)
        return size


class _Pairs:
    """A growing output buffer of (a, b) pairs that kernels append to."""

    def __init__(self) -> None:
        self.count = ti.ndarray(ti.i32, 1)
        self.out = ti.ndarray(ti.i32, (256, 2))

    def collect(self, search) -> np.ndarray:
        """Run ``search(out, count) -> n`` until the buffer holds every pair; the pairs sorted."""
        n = search(self.out, self.count)
        if n > self.out.shape[0]:
            self.out = ti.ndarray(ti.i32, (2 * n, 2))
            n = search(self.out, self.count)
        pairs = read(self.out)[:n].astype(np.int64)
        return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


class ProximitySearch:
    """Vertex-triangle and edge-edge pairs of a fixed mesh (all shells stacked, then the
    obstacles' surfaces from vertex ``first_obstacle`` on) that may come within a distance,
    at positions and motions given as Taichi ndarrays of 3-vectors (at least nv rows)."""

    def __init__(self, nv: int, tris: np.ndarray, first_obstacle: int | None = None) -> None:
        self.nv = nv
        self.first_obstacle = nv if first_obstacle is None else first_obstacle
        self.tris = np.asarray(tris, np.int64)
        e = np.concatenate([self.tris[:, [0, 1]], self.tris[:, [1, 2]], self.tris[:, [2, 0]]])
        self.edges = np.unique(np.sort(e, axis=1), axis=0)  # each mesh edge once
        # per vertex: itself and the vertices a mesh edge joins it to (never contact pairs)
        joined = np.unique(np.concatenate([e, e[:, ::-1], np.stack([np.arange(nv)] * 2, axis=1)]), axis=0)
        self._near_start = ti.ndarray(ti.i32, nv + 1)
        write(self._near_start, np.searchsorted(joined[:, 0], np.arange(nv + 1)).astype(np.int32))
        self._near = ti.ndarray(ti.i32, len(joined))
        write(self._near, joined[:, 1].astype(np.int32))
        self._tri_hash, self._edge_hash = _Hash(self.tris), _Hash(self.edges)
        self._vt, self._ee = _Pairs(), _Pairs()

    def pairs(self, x, motion, distance: float, slack: float, largest_motion: float) -> tuple[np.ndarray, np.ndarray]:
        """(vertex (n,), triangle (n,)) of the pairs, sorted, whose gap at positions x (to the
        triangle's bounding box, a bound on the distance to the triangle) is below
        ``distance`` plus ``slack`` times the vertex's motion relative to a corner (at most
        ``slack * largest_motion``, the largest length in ``motion``). An obstacle vertex
        pairs with shell triangles only."""
        h = self._tri_hash
        if not h.n or distance <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        cap = slack * largest_motion
        size = h.build(x, distance + cap, queries_are_items=False)
        found = self._vt.collect(lambda out, count: _vertex_triangle(
            x, motion, self.nv, self.first_obstacle, h.items, size, h.cell, h.start, h.order, self._near_start,
            self._near, distance, slack, cap, out, count))
        return found[:, 0], found[:, 1]

    def edge_pairs(self, x, motion, distance: float, slack: float, largest_motion: float) -> tuple[np.ndarray, np.ndarray]:
        """(edge a (n, 2), edge b (n, 2)) vertex ids of the edge pairs, each once, whose gap
        between their boxes is below the reach of ``pairs`` (the motion relative between
        their ends), that share no vertex, and whose closest points lie inside both edges:
        where one of them is an end, it is a vertex near an edge, which the vertex-triangle
        pairs hold. Two obstacle edges never pair."""
        h = self._edge_hash
        if not h.n or distance <= 0:
            return np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64)
        cap = slack * largest_motion
        size = h.build(x, distance + cap, queries_are_items=True)
        found = self._ee.collect(lambda out, count: _edge_edge(
            x, motion, h.items, self.first_obstacle, size, h.cell, h.start, h.order, distance, slack, cap, out, count))
        return self.edges[found[:, 0]], self.edges[found[:, 1]]
