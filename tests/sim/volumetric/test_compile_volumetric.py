"""Scene document -> volumetric specs (no Taichi)."""

import numpy as np
import pytest

from app.compile.volumetric import fem_body_spec, mpm_body_spec, pad_specs
from app.scene.model import Body, BoxShape, FemElastic, MpmElastoplastic, MpmFluid, SphereShape, TactileSensor, Transform
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
