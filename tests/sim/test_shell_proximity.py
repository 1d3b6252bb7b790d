"""The shell contact broad phase: the kept (Verlet) pairs equal a fresh search's."""

import numpy as np

from sim import geometry
from sim.shell.proximity import ProximitySearch


def _crumpled_sheet(n: int = 12):
    v, t = geometry.sheet(n, n, 0.02, 0.02)
    rng = np.random.default_rng(0)
    v[:, 2] = 0.002 * np.sin(300 * v[:, 0]) + 0.0005 * rng.standard_normal(len(v))
    return v, t


def test_kept_pairs_equal_a_fresh_search_while_the_sheet_moves():
    v, t = _crumpled_sheet()
    kept = ProximitySearch(len(v), t)
    rng = np.random.default_rng(1)
    x = v.copy()
    distance = 0.0025
    searches = 0
    for step in range(25):
        x = x + 1e-4 * rng.standard_normal(x.shape)  # each step moves vertices ~0.2 mm
        before = kept._cache
        got = kept.pairs(x, distance)
        searches += kept._cache is not before
        fresh = ProximitySearch(len(v), t).pairs(x, distance)
        assert len(fresh[0]) > 0
        np.testing.assert_array_equal(got[0], fresh[0])
        np.testing.assert_array_equal(got[1], fresh[1])
    assert 1 < searches < 25  # the kept pairs served some steps, and were renewed when vertices had moved


def test_pairs_exclude_mesh_neighbours_and_far_triangles():
    v, t = _crumpled_sheet()
    pv, pt = ProximitySearch(len(v), t).pairs(v, 0.0025)
    assert not np.any(t[pt] == pv[:, None])  # never a triangle the vertex belongs to
    lo, hi = v[t[pt]].min(axis=1), v[t[pt]].max(axis=1)
    gap = np.maximum(lo - v[pv], 0) + np.maximum(v[pv] - hi, 0)
    assert np.all(np.linalg.norm(gap, axis=1) < 0.0025)
