"""The point-triangle contact search of sim.coupling keeps its candidates while nothing has
moved more than the skin: every pair the force kernel can switch on after such moves (point
over the widened footprint, within depth below to radius above) is still a candidate,
including when the moves tilt the triangles; moves past the skin search again."""

import numpy as np
import taichi as ti

from sim.coupling import EDGE, SurfaceContact

SPACING = 1e-3  # m: the patch's vertex spacing
RADIUS, DEPTH = 4e-4, 1e-3


def _patch(n: int = 6):
    """A flat n x n-vertex triangulated square in z = 0 (body 0)."""
    g = np.arange(n) * SPACING
    nodes = np.array([(x, y, 0.0) for y in g for x in g])
    tris = []
    for j in range(n - 1):
        for i in range(n - 1):
            a, b, c, d = j * n + i, j * n + i + 1, (j + 1) * n + i, (j + 1) * n + i + 1
            tris += [(a, b, d), (a, d, c)]
    return nodes, np.array(tris, np.int32)


def _active(points, nodes, tris):
    """The pairs the force kernel switches on, from its conditions (numpy)."""
    out = set()
    for t, (i, j, k) in enumerate(tris):
        a, b, c = nodes[i], nodes[j], nodes[k]
        nrm = np.cross(b - a, c - a)
        area2 = np.linalg.norm(nrm)
        n = nrm / area2
        d = (points - a) @ n
        q = points - d[:, None] * n
        wb = np.cross(q - a, c - a) @ n / area2
        wc = np.cross(b - a, q - a) @ n / area2
        wmin = np.minimum(np.minimum(1 - wb - wc, wb), wc)
        for p in np.flatnonzero((wmin > -EDGE) & (RADIUS - d > 0) & (d > -DEPTH)):
            out.add((int(p), t))
    return out


def _candidates(contact, row):
    n = int(contact.n_pairs[row])
    return set(zip(contact.pair_point.to_numpy()[row, :n].tolist(), contact.pair_tri.to_numpy()[row, :n].tolist()))


def test_candidates_cover_every_pair_that_moves_within_the_skin_can_switch_on():
    rng = np.random.default_rng(0)
    nodes, tris = _patch()
    lo, hi = np.array([-1e-3, -1e-3, -1.5e-3]), np.array([6e-3, 6e-3, 1.5e-3])
    points = lo + rng.random((400, 3)) * (hi - lo)
    contact = SurfaceContact(tris, np.zeros(len(tris), np.int32), np.ones(len(points), np.int32),
                             np.full(len(points), 1e-6), np.full(len(points), RADIUS), slots=2, real=ti.f64,
                             cell=SPACING * np.sqrt(2) + 2 * RADIUS, depth=DEPTH, smoothing=1e-5, slip_velocity=1e-3)
    x = ti.Vector.field(3, ti.f64, (2, len(nodes)))
    px, xs = contact.px.to_numpy(), x.to_numpy()
    px[0], xs[0] = points, nodes
    contact.px.from_numpy(px)
    x.from_numpy(xs)
    contact.find_pairs(0, x)
    searched = _candidates(contact, 0)
    skin = contact.skin
    reused = 0
    for trial in range(20):
        # every point and node moves just inside the skin; half the trials tilt the patch
        # (one edge up, the other down) on top of random moves
        def move(count):
            v = rng.normal(size=(count, 3))
            return 0.98 * skin * v / np.linalg.norm(v, axis=1, keepdims=True)

        moved_nodes = nodes + move(len(nodes))
        if trial % 2:
            tilt = (nodes[:, 0] / nodes[:, 0].max() - 0.5) * 2  # -1 .. 1 across the patch
            moved_nodes = nodes + np.stack([np.zeros(len(nodes)), np.zeros(len(nodes)), 0.98 * skin * tilt], 1)
        moved_points = points + move(len(points))
        px[1], xs[1] = moved_points, moved_nodes
        contact.px.from_numpy(px)
        x.from_numpy(xs)
        contact.pairs_row = 0  # as after the search in row 0
        contact.find_pairs(1, x)
        assert contact.pairs_row == 1 and _candidates(contact, 1) == searched, "moves within the skin searched again"
        reused += 1
        active = _active(moved_points, moved_nodes, tris)
        assert len(active) > 50  # the test bites: many pairs are on
        missing = active - searched
        assert not missing, f"trial {trial}: {len(missing)} active pairs are not candidates"
    assert reused == 20

    # past the skin: a new search, whose candidates cover the new positions
    far = points + np.array([0.0, 0.0, 3 * skin])
    px[1] = far
    contact.px.from_numpy(px)
    contact.pairs_row = 0
    contact.find_pairs(1, x)
    assert contact.pairs_row == 1 and not _active(far, xs[1], tris) - _candidates(contact, 1)
    # a restart from stored state searches afresh even without moves
    contact.invalidate()
    assert contact.pairs_row is None
