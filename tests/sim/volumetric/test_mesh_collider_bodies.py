"""FEM pads and MPM bodies see mesh colliders (sim.sdf's MESH branch) as they see the
matching primitives: a pad pressed by a mesh sphere feels the primitive sphere's force, and
an MPM block flattened by a mesh slab deforms as under the primitive slab."""

import numpy as np
import torch
import trimesh

from sim.fem.mesh import flat_pad
from sim.fem.solver import FemSystem, Trajectory, stable_dt
from sim.fem.spec import ContactParams, FemBodySpec, FemMaterial, ShapeSpec
from sim.mesh_sdf import bake
from sim.mpm.sampling import sample_box
from sim.mpm.solver import MpmSystem, MpmTrajectory
from sim.mpm.spec import MpmBodySpec, MpmGrid, MpmMaterial


def test_a_pad_pressed_by_a_mesh_sphere_feels_the_primitive_spheres_force():
    ball = trimesh.creation.icosphere(subdivisions=4, radius=0.004)
    shapes = [ShapeSpec("sphere", (0.004, 0, 0)), ShapeSpec("mesh", (0, 0, 0), bake(ball.vertices, ball.faces, 3e-4))]
    # two pads 5 cm apart in one system (one compile), each pressed by one of the spheres
    pads = [FemBodySpec(f"pad{i}", flat_pad((0.01, 0.01, 0.003), (4, 4, 2)), FemMaterial(1e5, 0.4, 1000, 2000.0),
                        position=(0.05 * i, 0, 0), mass_scale=100.0) for i in range(2)]
    contact = ContactParams(stiffness=1e10, damping=5.0, friction=0.4)
    sim = FemSystem(pads, shapes, contact, dt=0.9 * stable_dt(pads, contact), substeps=10)
    z = torch.cat([torch.linspace(0.007, 0.0066, 11, dtype=torch.float64), torch.full((30,), 0.0066, dtype=torch.float64)])
    centre = torch.stack([torch.full_like(z, 5e-4), torch.zeros_like(z), z], -1)
    spheres = torch.stack([centre, centre + torch.tensor([0.05, 0.0, 0.0], dtype=torch.float64)], 1)
    pad_pos = torch.tensor([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0]], dtype=torch.float64).expand(len(z), 2, 3)
    _, fc, _ = sim.forward(Trajectory(pad_pos, spheres))  # pressed 0.4 mm deep, then held until the pads settle
    forces = [fc[-5:, sim.offsets[i]:sim.offsets[i + 1]].sum(1).mean(0) for i in range(2)]
    assert forces[0][2] < -0.05  # pressed (towards -z, into the pad)
    # the mesh's facets lie inside the sphere and the grid's spline rounds it a little more
    # (together about 10 um of the 0.4 mm): a few percent less force
    np.testing.assert_allclose(forces[1], forces[0], rtol=0.06, atol=0.06 * abs(forces[0][2]))


def test_an_mpm_block_flattened_by_a_mesh_slab_flattens_as_under_the_primitive_slab():
    grid = MpmGrid((0, 0, 0), 0.04, 20)
    pts, vol = sample_box((0.02, 0.02, 0.013), (0.006, 0.006, 0.006), grid.dx / 2)
    mat = MpmMaterial("plastic", density=1000.0, youngs_modulus=3e4, poisson_ratio=0.3, yield_stress=1.5e3)
    half = (0.011, 0.011, 0.006)  # wider than the block: only its flat underside touches
    slab = trimesh.creation.box(extents=2 * np.asarray(half))
    presses = (ShapeSpec("box", half), ShapeSpec("mesh", (0, 0, 0), bake(slab.vertices, slab.faces, 5e-4)))
    top = pts[:, 2].max()
    z = np.concatenate([np.linspace(0, 0.003, 11), np.full(5, 0.003)])
    pos = np.tile([0.0203, 0.0197, 0.0], (len(z), 1))
    pos[:, 2] = top + half[2] + 5e-4 - z
    finals = []
    for press in presses:
        sim = MpmSystem([MpmBodySpec("clay", pts, vol, mat)], grid, [press], friction=0.5, dt=1e-4, substeps=20,
                        requires_grad=False)
        (x, _, _, _), _ = sim.run(len(z) - 1, MpmTrajectory(torch.from_numpy(pos[:, None, :])))
        finals.append(x)
    assert top - finals[0][:, 2].max() > 1e-3  # flattened by more than a millimetre
    assert np.abs(finals[1] - finals[0]).max() < 0.05 * grid.dx
