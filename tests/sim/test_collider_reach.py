"""sim.sdf.collider_reach bounds every primitive: no point farther than reach + r from a
collider's origin is within r of its surface, so contact loops may skip it. Checked against
collider_sdf itself on points around each shape, including its corners and rims."""

import numpy as np
import pytest
import taichi as ti

from sim.runtime import RuntimeConfig, ensure_runtime
from sim.sdf import collider_reach, collider_sdf, shape_kinds
from sim.spec import COLLIDER_SHAPES


@pytest.fixture(scope="module", autouse=True)
def runtime():
    return ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))


@ti.kernel
def _measure(kind: ti.i32, size: ti.types.ndarray(), p: ti.types.ndarray(), d: ti.types.ndarray(),
             reach: ti.types.ndarray()):
    s = ti.Vector([size[0], size[1], size[2]])
    reach[0] = collider_reach(kind, s)
    for i in range(p.shape[0]):
        d[i], _ = collider_sdf(kind, s, ti.Vector([p[i, 0], p[i, 1], p[i, 2]]), PRIMITIVES)


PRIMITIVES = shape_kinds(("box", "sphere", "capsule", "cylinder", "plane"))
SHAPES = {"box": (0.03, 0.01, 0.02), "sphere": (0.02, 0.0, 0.0), "capsule": (0.01, 0.03, 0.0),
          "cylinder": (0.015, 0.025, 0.0)}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_no_point_beyond_reach_touches_the_shape(shape):
    rng = np.random.default_rng(3)
    size = np.array(SHAPES[shape])
    directions = rng.normal(size=(20000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    points = directions * rng.uniform(0.0, 0.08, (len(directions), 1))
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * size  # a box's corners
    points = np.concatenate([points, corners, corners * 1.001])
    d, reach = np.zeros(len(points)), np.zeros(1)
    _measure(COLLIDER_SHAPES.index(shape), size, points, d, reach)
    distance = np.linalg.norm(points, axis=1)
    assert np.all(d >= distance - reach[0] - 1e-12), "a point beyond the reach is closer to the shape than it allows"
    # and the bound is tight: some surface point lies at the reach (corners, poles, rims)
    assert np.min(np.abs(d)[np.abs(distance - reach[0]) < 2e-3]) < 2e-3


def test_planes_and_meshes_are_never_skipped():
    d, reach = np.zeros(1), np.zeros(1)
    for shape in ("plane", "mesh"):
        _measure(COLLIDER_SHAPES.index(shape), np.zeros(3), np.zeros((1, 3)), d, reach)
        assert reach[0] == np.inf
