"""Scene document -> volumetric specs (no Taichi)."""

import numpy as np
import pytest

from app.compile.volumetric import fem_body_spec, mpm_body_spec, pad_specs
from app.scene.model import (Body, BoxShape, FemElastic, MeshShape, MpmElastoplastic, MpmFluid, SphereShape, TactileSensor,
                             Transform)
from sim.fem.mesh import tet_volumes
from sim.mpm.spec import MpmGrid


def test_flat_and_dome_sensors_become_pads_with_their_readings():
    flat, cfg = pad_specs(TactileSensor(name="left_pad", finger="left"))
    assert flat.material.youngs_modulus == 3e5 and flat.material.poisson_ratio == 0.45
    assert np.ptp(flat.mesh.nodes, axis=0) == pytest.approx([0.02, 0.025, 0.004])
    assert cfg.image_size == (240, 320) and cfg.markers == (9, 7)
    dome, cfg = pad_specs(TactileSensor(name="dome", finger="right", pad="dome", dome_radius=0.015, size=(0.02, 0.02)))
    assert cfg.markers == 63 and len(dome.mesh.back) > 0


def test_soft_body_and_mpm_bodies_follow_shape_material_and_pose():
    block = Body(name="block", shape=BoxShape(size=(0.02, 0.02, 0.01)), material=FemElastic(youngs_modulus=5e4),
                 transform=Transform(position=(0.1, 0, 0.05)))
    spec = fem_body_spec(block, element_size=2.5e-3)
    assert tet_volumes(spec.mesh.nodes, spec.mesh.tets).sum() == pytest.approx(4e-6)
    assert spec.position == (0.1, 0, 0.05) and spec.material.youngs_modulus == 5e4
    grid = MpmGrid((0, 0, 0), 0.2, 64)
    clay = Body(name="clay", shape=SphereShape(radius=0.02), material=MpmElastoplastic(yield_stress=500.0),
                transform=Transform(position=(0.1, 0.1, 0.05)))
    m = mpm_body_spec(clay, grid)
    assert m.material.kind == "plastic" and m.material.yield_stress == 500.0
    assert np.allclose(m.positions.mean(0), (0.1, 0.1, 0.05), atol=1e-3)
    assert len(m.positions) * m.particle_volume == pytest.approx(4 / 3 * np.pi * 0.02**3, rel=0.05)
    water = Body(name="water", shape=BoxShape(size=(0.02, 0.02, 0.02)), material=MpmFluid(viscosity=0.01))
    assert mpm_body_spec(water, grid).material.viscosity == 0.01
    with pytest.raises(ValueError, match="not an MPM material"):
        mpm_body_spec(block, grid)


def test_tactile_press_scene_mounts_each_pad_in_its_finger_gel_facing_the_other():
    from app.compile import compile_scene
    from app.scene.io import load_scene
    from sim.fem.spec import quat_to_matrix
    from sim.tools import collider_poses_np

    compiled = compile_scene(load_scene("assets/scenes/tactile_press.yaml"), "assets/scenes/tactile_press.yaml", 5)
    spec = compiled.spec
    assert compiled.skipped == ()
    assert [b.name for b in spec.fem_bodies] == ["block", "pad_flat", "pad_dome"]
    poses = collider_poses_np(spec, spec.resolved_actions())[0]
    names = [c.name for c in spec.colliders]
    opening = spec.tools[0].opening
    for pad, side in ((spec.fem_bodies[1], 1.0), (spec.fem_bodies[2], -1.0)):
        assert pad.tactile is not None and pad.mass_scale >= 1
        finger = poses[names.index(pad.mount)]
        R = quat_to_matrix(finger[3:]) @ quat_to_matrix(pad.rotation)
        world = pad.mesh.nodes @ R.T + quat_to_matrix(finger[3:]) @ np.asarray(pad.position) + finger[:3]
        gel_top = world[pad.mesh.gel_nodes][:, 0]
        # the gel's outermost point lies on the finger's inner face, the gel normal points inwards
        assert (side * gel_top).min() == pytest.approx(opening / 2, abs=1e-9)
        assert np.allclose(R @ [0, 0, 1], [-side, 0, 0], atol=1e-12)
    # the soft block sits on the ground and is meshed coarsely enough for a quick run
    block = spec.fem_bodies[0]
    assert len(block.mesh.nodes) < 1000 and block.position == (0, 0, 0.02)


def test_a_pad_is_centred_along_its_finger_or_tip_distance_from_its_tip():
    from app.compile.volumetric import _pad_mount
    from app.scene.model import Gripper
    from sim.fem.spec import quat_to_matrix

    gripper = Gripper(name="g", finger_size=(0.02, 0.01, 0.05), sensors=[
        {"name": "centred", "finger": "left"},
        {"name": "tip", "finger": "right", "tip_distance": 0.0},
        {"name": "dome", "finger": "left", "pad": "dome", "tip_distance": 0.004}])
    along = {}
    for sensor in gripper.sensors:
        pad = _pad_mount(gripper, sensor, pad_specs(sensor)[0])
        z = (pad.mesh.nodes @ quat_to_matrix(pad.rotation).T + pad.position)[:, 2]  # finger frame: tip at z = -0.025
        along[sensor.name] = (z.min(), z.max())
    assert along["centred"] == pytest.approx((-0.01, 0.01), abs=1e-9)  # a 0.02 m wide pad, centred
    assert along["tip"] == pytest.approx((-0.025, -0.005), abs=1e-9)  # its lower edge at the fingertip
    lo, hi = along["dome"]  # a dome's round footprint (radius 0.01 m, its rings polygons): centred 0.004 + 0.01 m up
    assert (lo + hi) / 2 == pytest.approx(-0.011, abs=1e-9) and -0.021 - 1e-9 <= lo < -0.0205


def test_mpm_scene_gets_one_grid_around_its_bodies():
    from app.compile import compile_scene
    from app.scene.io import load_scene

    spec = compile_scene(load_scene("assets/scenes/pour.yaml"), "assets/scenes/pour.yaml", 5).spec
    (water,) = spec.mpm_bodies
    grid = water.grid
    assert grid.resolution == 64 and water.material.kind == "fluid"
    lo, hi = np.asarray(grid.origin), np.asarray(grid.origin) + grid.size
    assert np.all(water.positions > lo + 3 * grid.dx) and np.all(water.positions < hi - 3 * grid.dx)
    assert len(water.positions) * water.particle_volume == pytest.approx(np.pi * 0.03**2 * 0.05, rel=0.05)


def test_a_soft_body_has_eight_elements_across_its_smallest_extent_whatever_its_shape():
    """The default scene's 5 cm soft block, a mesh file, took its element size from a 2 cm
    placeholder: 20 elements across it, 48,000 tetrahedra (86% of the scene's elastic work,
    though nothing touches it), where a 5 cm box gets 8."""
    import trimesh

    block = trimesh.creation.box(extents=(0.05, 0.05, 0.05))
    for shape in (BoxShape(size=(0.05, 0.05, 0.05)), MeshShape(path="meshes/block.obj")):
        body = Body(name="block", shape=shape, material=FemElastic(youngs_modulus=5e4))
        mesh = fem_body_spec(body, mesh_loader=lambda _: block).mesh
        assert len(mesh.nodes) == 9**3 and len(mesh.tets) == 6 * 8**3, shape.kind
    ball = Body(name="ball", shape=SphereShape(radius=0.02), material=FemElastic(youngs_modulus=5e4))
    mesh = fem_body_spec(ball).mesh
    edges = np.linalg.norm(np.diff(mesh.nodes[mesh.tets[:, :2]], axis=1), axis=-1)
    assert np.median(edges) == pytest.approx(0.04 / 8, rel=0.5)
