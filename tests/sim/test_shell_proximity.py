"""The shell contact broad phase (sim.shell.proximity)."""

import numpy as np
import pytest
import taichi as ti

from sim import geometry
from sim.runtime import ensure_runtime
from sim.shell.proximity import ProximitySearch


@pytest.fixture(autouse=True, scope="module")
def _runtime():
    ensure_runtime()


def _on_device(v: np.ndarray):
    x = ti.ndarray(ti.types.vector(3, ti.f64), len(v))
    x.from_numpy(v)
    return x


def _crumpled_sheet(n: int = 12):
    """A sheet folded in half (the layers 1.5 mm apart) and crumpled a little."""
    v, t = geometry.sheet(n, n, 0.02, 0.02)
    rng = np.random.default_rng(0)
    top = v[:, 0] > 0
    v[top, 0] *= -1
    v[top, 2] = 0.0015
    v += 0.0002 * rng.standard_normal(v.shape)
    return v, t


def test_pairs_exclude_mesh_neighbours_and_far_triangles():
    v, t = _crumpled_sheet()
    pv, pt = ProximitySearch(len(v), t).pairs(_on_device(v), _on_device(np.zeros_like(v)), 0.0025, 2.0, 0.0)
    assert not np.any(t[pt] == pv[:, None])  # never a triangle the vertex belongs to
    lo, hi = v[t[pt]].min(axis=1), v[t[pt]].max(axis=1)
    gap = np.maximum(lo - v[pv], 0) + np.maximum(v[pv] - hi, 0)
    assert np.all(np.linalg.norm(gap, axis=1) < 0.0025)


def _brute_force_pairs(v, t, reach):
    """Vertex-triangle pairs, not mesh neighbours, with a box gap below reach (V, T)."""
    lo, hi = v[t].min(axis=1), v[t].max(axis=1)  # (T, 3)
    gap = np.maximum(lo[None] - v[:, None], 0) + np.maximum(v[:, None] - hi[None], 0)  # (V, T, 3)
    near = np.sum(gap * gap, axis=2) < reach**2
    edges = {tuple(sorted(e)) for tri in t for e in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0]))}
    return {(i, j) for i, j in zip(*np.nonzero(near))
            if i not in t[j] and not any(tuple(sorted((i, c))) in edges for c in t[j])}


def test_pairs_are_every_pair_a_brute_force_search_finds():
    v, t = _crumpled_sheet()
    pv, pt = ProximitySearch(len(v), t).pairs(_on_device(v), _on_device(np.zeros_like(v)), 0.0025, 2.0, 0.0)
    expected = _brute_force_pairs(v, t, np.full((len(v), len(t)), 0.0025))
    assert len(expected) > 10
    assert set(zip(pv.tolist(), pt.tolist())) == expected


def test_pairs_reach_further_only_by_motion_relative_to_each_other():
    """Moved as a whole, the sheet keeps the pairs it has at rest; moving apart, the pairs
    reach the distance plus twice the largest motion of the vertex relative to a corner."""
    v, t = _crumpled_sheet()
    search = ProximitySearch(len(v), t)
    found = lambda m: set(zip(*(a.tolist() for a in search.pairs(  # noqa: E731
        _on_device(v), _on_device(m), 0.001, 2.0, float(np.linalg.norm(m, axis=1).max())))))
    at_rest = found(np.zeros_like(v))
    assert found(np.tile([0.003, -0.001, 0.002], (len(v), 1))) == at_rest
    motion = 0.0004 * np.random.default_rng(1).standard_normal(v.shape)
    relative = np.linalg.norm(motion[:, None, None] - motion[t][None], axis=3).max(axis=2)  # (V, T)
    largest = np.linalg.norm(motion, axis=1).max()
    expected = _brute_force_pairs(v, t, 0.001 + np.minimum(2.0 * relative, 2.0 * largest))
    assert len(expected) > len(at_rest) + 10
    assert found(motion) == expected


def _crossing_pairs(v, e, distance):
    """Brute force: the edge pairs within the distance (between their boxes), sharing no
    vertex, whose closest points lie inside both edges. The distance between points of two
    lines is convex in their parameters, so the closest points of the segments are inside
    both exactly when the lines' own closest points are (solved as a 2 x 2 system per pair)."""
    lo, hi = v[e].min(axis=1), v[e].max(axis=1)
    gap = np.maximum(lo[:, None] - hi[None], 0) + np.maximum(lo[None] - hi[:, None], 0)
    i, j = np.nonzero(np.sum(gap * gap, axis=2) < distance**2)
    keep = (i < j) & ~np.any(e[i][:, :, None] == e[j][:, None, :], axis=(1, 2))
    i, j = i[keep], j[keep]
    da, db = v[e[i, 1]] - v[e[i, 0]], v[e[j, 1]] - v[e[j, 0]]
    r = v[e[j, 0]] - v[e[i, 0]]
    # minimise |r0 + s da - t db|^2 with r0 = -r: [da.da, -da.db; da.db, -db.db] (s, t) = (da.r, db.r)
    m = np.stack([np.stack([np.einsum("nd,nd->n", da, da), -np.einsum("nd,nd->n", da, db)], -1),
                  np.stack([np.einsum("nd,nd->n", da, db), -np.einsum("nd,nd->n", db, db)], -1)], -2)
    st = np.linalg.solve(m, np.stack([np.einsum("nd,nd->n", da, r), np.einsum("nd,nd->n", db, r)], -1)[..., None])[..., 0]
    inside = np.all((st > 1e-3) & (st < 1 - 1e-3), axis=1)
    return {(tuple(e[a]), tuple(e[b])) for a, b in zip(i[inside], j[inside])}


def test_edge_pairs_are_every_crossing_pair_a_brute_force_search_finds():
    v, t = _crumpled_sheet()
    search = ProximitySearch(len(v), t)
    ea, eb = search.edge_pairs(_on_device(v), _on_device(np.zeros_like(v)), 0.0025, 2.0, 0.0)
    expected = _crossing_pairs(v, search.edges, 0.0025)
    found = {(tuple(a), tuple(b)) for a, b in zip(ea.tolist(), eb.tolist())}
    assert len(expected) > 10
    assert found == expected


def test_obstacles_pair_with_shells_only():
    """An obstacle's surface stacked after the shell (a finer crumpled sheet just under it,
    vertices from first_obstacle on): the pairs are the brute-force ones with a shell side;
    an obstacle vertex or edge never pairs with an obstacle triangle or edge."""
    v, t = _crumpled_sheet()
    w, u = _crumpled_sheet(17)
    w = w * 0.9 + np.array([0.001, 0.0005, -0.001])
    x, tris = np.concatenate([v, w]), np.concatenate([t, u + len(v)])
    search = ProximitySearch(len(x), tris, first_obstacle=len(v))
    ea, eb = search.edge_pairs(_on_device(x), _on_device(np.zeros_like(x)), 0.0025, 2.0, 0.0)
    every = _crossing_pairs(x, search.edges, 0.0025)
    expected = {(a, b) for a, b in every if min(a[0], b[0]) < len(v)}
    found = {(tuple(a), tuple(b)) for a, b in zip(ea.tolist(), eb.tolist())}
    assert len(expected) > 10 and len(every) > len(expected)  # shell-obstacle and obstacle-obstacle pairs exist
    assert found == expected
    pv, pt = search.pairs(_on_device(x), _on_device(np.zeros_like(x)), 0.0025, 2.0, 0.0)
    every = _brute_force_pairs(x, tris, np.full((len(x), len(tris)), 0.0025))
    expected = {(i, j) for i, j in every if i < len(v) or j < len(t)}
    assert len(expected) > 10 and len(every) > len(expected)
    assert set(zip(pv.tolist(), pt.tolist())) == expected
