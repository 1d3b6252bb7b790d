"""Mesh colliders: signed distance grids baked from closed triangle meshes (sim.mesh_sdf)
and read by every system through the MESH branch of sim.sdf.collider_sdf. The baked grid
of a mesh box or sphere matches the analytic primitive within a fraction of a cell; open or
inconsistently wound meshes are refused with what is wrong; a sheet dropped on a mesh box
rests as on the primitive box; the gradient of a loss through a mesh tool's pose matches
float64 central differences."""

import dataclasses

import numpy as np
import pytest
import trimesh

from sim.mesh_sdf import bake, check_closed
from sim.spec import ColliderSpec, ContactSettings, Settings, ShellMaterial, WorldSpec
from tests.sim.scenes import pushed_sheet, sheet_spec

HALF = np.array([0.02, 0.015, 0.01])


def box_distance(p, half=HALF):
    q = np.abs(p) - half
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)


def near_surface(distance, cell, rng, lo, hi, n=40000):
    p = rng.uniform(lo, hi, (n, 3))
    return p[np.abs(distance(p)) < 2 * cell]


def test_baked_box_and_sphere_match_the_analytic_distances_within_a_fraction_of_a_cell():
    rng = np.random.default_rng(0)
    box = trimesh.creation.box(extents=2 * HALF)
    grid = bake(box.vertices, box.faces, 2e-3)
    axes = [grid.origin[a] + grid.cell * np.arange(grid.shape[a]) for a in range(3)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    np.testing.assert_allclose(grid.values.ravel(), box_distance(nodes), atol=1e-12)  # exact at the nodes
    p = near_surface(box_distance, grid.cell, rng, -HALF - 0.004, HALF + 0.004)
    # between nodes, trilinear interpolation rounds the box's edges and corners off
    assert np.abs(grid.interpolate(p) - box_distance(p)).max() < 0.4 * grid.cell
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.02)
    grid = bake(sphere.vertices, sphere.faces, 2.5e-3)
    exact = lambda q: np.linalg.norm(q, axis=1) - 0.02  # noqa: E731
    p = near_surface(exact, grid.cell, rng, -0.025, 0.025)
    # the icosphere's flat facets lie up to 0.1 mm inside the true sphere
    assert np.abs(grid.interpolate(p) - exact(p)).max() < 0.15 * grid.cell
    # a mesh wound inwards gives the same grid
    inward = bake(box.vertices, box.faces[:, ::-1], 2e-3)
    np.testing.assert_allclose(inward.values, bake(box.vertices, box.faces, 2e-3).values)


def test_open_or_inconsistently_wound_meshes_are_refused_with_the_reason():
    box = trimesh.creation.box(extents=(0.02, 0.02, 0.02))
    with pytest.raises(ValueError, match="not watertight: 3 edges border a hole"):
        check_closed(box.vertices, box.faces[1:], "lid")
    flipped = box.faces.copy()
    flipped[0] = flipped[0, ::-1]
    with pytest.raises(ValueError, match="wound inconsistently"):
        bake(box.vertices, flipped, 1e-3, name="lid")
    with pytest.raises(ValueError, match="beyond its 8 vertices"):
        check_closed(box.vertices, box.faces + 1, "lid")


def test_collider_sdf_reads_the_mesh_grid_with_its_gradient_as_normal():
    import taichi as ti

    from sim.runtime import ensure_runtime
    from sim.sdf import BOX, MESH, collider_sdf, collider_size, shape_kinds

    ensure_runtime()
    box = trimesh.creation.box(extents=2 * HALF)
    grid = bake(box.vertices, box.faces, 2e-3)
    size = collider_size("mesh", None, grid)
    assert collider_size("mesh", None, bake(box.vertices, box.faces, 2e-3)) == size  # one upload per grid

    @ti.kernel
    def evaluate(kind: ti.i32, size: ti.types.vector(3, float), p: ti.types.ndarray(), out: ti.types.ndarray()):
        for i in range(p.shape[0]):
            d, n = collider_sdf(kind, size, ti.Vector([p[i, 0], p[i, 1], p[i, 2]]), shape_kinds(("mesh", "box")))
            out[i, 0] = d
            for k in ti.static(range(3)):
                out[i, k + 1] = n[k]

    rng = np.random.default_rng(1)
    p = np.concatenate([near_surface(box_distance, grid.cell, rng, -HALF - 0.004, HALF + 0.004, 4000),
                        rng.uniform(-0.1, 0.1, (50, 3))])  # and far outside the grid
    mesh, prim = np.zeros((len(p), 4)), np.zeros((len(p), 4))
    evaluate(MESH, size, p, mesh)
    evaluate(BOX, tuple(HALF), p, prim)
    inside = np.all(np.abs(p) < HALF + 0.0025, axis=1)  # the grid pads the box by 2 cells (4 mm)
    np.testing.assert_allclose(mesh[inside, 0], grid.interpolate(p[inside]), atol=1e-12)
    assert np.abs(mesh[inside, 0] - prim[inside, 0]).max() < 0.4 * grid.cell
    # beyond the grid: the distance to the grid's border added to the border's own, never
    # shorter than the true distance, longer by about a cell at most
    outside = mesh[~inside, 0] - prim[~inside, 0]
    assert outside.min() >= -1e-12 and outside.max() < 1.5 * grid.cell
    np.testing.assert_allclose(np.linalg.norm(mesh[:, 1:], axis=1), 1.0, atol=1e-9)
    # wherever one face is nearer than any other by 3 cells (away from edges, corners and the
    # box's medial planes, which the spline rounds) the normal is that face's
    gap = np.diff(np.sort(np.abs(p) - HALF, axis=1)[:, 1:], axis=1)[:, 0]
    faces = inside & (gap > 3 * grid.cell)
    assert faces.sum() > 500
    assert np.einsum("ij,ij->i", mesh[faces, 1:], prim[faces, 1:]).min() > 1 - 1e-9


def _dropped_sheet(table: ColliderSpec, steps=25) -> WorldSpec:
    shell = sheet_spec(5, 0.03, 0.004, material=ShellMaterial(youngs_modulus=1e5, bending_stiffness=1e-5, damping=1.0))
    return WorldSpec(settings=Settings(dt=4e-3, steps=steps), shells=(shell,), colliders=(table,))


def test_a_sheet_dropped_on_a_mesh_box_rests_on_it_as_on_the_primitive_box():
    from sim.world import World

    half = (0.03, 0.03, 0.01)
    box = trimesh.creation.box(extents=2 * np.asarray(half))
    common = dict(position=(0.0, 0.0, -0.01), friction=0.4, contact_stiffness=2e3)
    tables = (ColliderSpec("table", "box", half, **common),
              ColliderSpec("table", "mesh", (0, 0, 0), sdf=bake(box.vertices, box.faces, 2.5e-3), **common))
    rest = []
    for table in tables:
        world = World(_dropped_sheet(table))
        world.reset()
        for _ in range(world.spec.settings.steps):
            world.step()
        rest.append(world.get_state()["shells"]["x"])
    start = _dropped_sheet(tables[0]).shells[0].vertices
    for x in rest:
        assert x[:, 2].max() < start[:, 2].min() - 0.003  # it fell 4 mm ...
        assert x[:, 2].min() > 0.0  # ... onto the table, not through it
    np.testing.assert_allclose(rest[1], rest[0], atol=1e-6)  # flat faces: the same signed distance


def test_gradients_through_a_mesh_tools_pose_match_finite_differences():
    from sim.gradcheck import check_gradients
    from sim.world import World

    spec = pushed_sheet(newton_tol=1e-11, newton_rtol=0.0, newton_ftol=0.0, newton_accept=0.0, cg_tol=1e-8,
                        adjoint_tol=1e-12, newton_max_iter=60, steps=6)
    ball = trimesh.creation.icosphere(subdivisions=2, radius=0.01)
    table, sphere = spec.colliders
    mesh_ball = dataclasses.replace(sphere, shape="mesh", size=(0.0, 0.0, 0.0), sdf=bake(ball.vertices, ball.faces, 1e-3))
    world = World(dataclasses.replace(spec, colliders=(table, mesh_ball), contact=ContactSettings(friction_velocity=1e-2)))
    world.reset()
    for _ in range(spec.settings.steps):
        world.step()
    assert world.contact_count() > 0
    (result,) = check_gradients(world, ("actions",))
    assert abs(result.analytic) > 0
    assert result.rel_error <= 1e-3, (result.analytic, result.numeric)
