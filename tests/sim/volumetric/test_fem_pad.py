"""FEM pads: meshes, stability guard, Hertz contact, gradients against finite differences."""

import math

import numpy as np
import pytest
import torch
import trimesh

from sim.fem.mesh import dome_pad, flat_pad, tet_volumes, voxel_tetrahedralize
from sim.fem.solver import FemSystem, Trajectory, stable_dt
from sim.fem.spec import ContactParams, FemBodySpec, FemMaterial, ShapeSpec
from tests.sim.volumetric.torch_fd import assert_gradients_match


def test_pad_meshes_are_valid_and_sized_like_the_sensors():
    dome = dome_pad()
    assert 1900 <= len(dome.nodes) <= 2100
    assert tet_volumes(dome.nodes, dome.tets).min() > 0
    # the dome's volume is the spherical-cap shell between inner and outer radius
    r1, r0, cap = 0.012, 0.008, math.radians(75)
    shell = 2 * math.pi / 3 * (1 - math.cos(cap)) * (r1**3 - r0**3)
    assert tet_volumes(dome.nodes, dome.tets).sum() == pytest.approx(shell, rel=0.03)
    centre = np.array([0, 0, -r1 * math.cos(cap)])
    tri = dome.nodes[dome.gel_faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(np.einsum("ij,ij->i", normal, tri.mean(1) - centre) > 0)  # gel faces point out
    assert np.allclose(np.linalg.norm(dome.nodes[dome.gel_nodes] - centre, axis=1), r1)

    flat = flat_pad((0.018, 0.024, 0.004), (6, 8, 3), grading=(0.5, 0.5, 0.5))
    assert tet_volumes(flat.nodes, flat.tets).sum() == pytest.approx(0.018 * 0.024 * 0.004)
    assert np.allclose(flat.nodes[flat.gel_nodes, 2], 0.004) and np.allclose(flat.nodes[flat.back, 2], 0.0)
    assert len(flat.gel_faces) == 2 * 6 * 8


def test_voxel_tetrahedralization_of_a_closed_mesh_and_rejection_of_an_open_one():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.01)
    mesh = voxel_tetrahedralize(sphere, 0.0015)
    assert tet_volumes(mesh.nodes, mesh.tets).sum() == pytest.approx(4 / 3 * math.pi * 1e-6, rel=0.12)
    open_mesh = trimesh.Trimesh(sphere.vertices, sphere.faces[1:])
    with pytest.raises(ValueError, match="watertight"):
        voxel_tetrahedralize(open_mesh, 0.002)


def test_too_large_a_substep_is_refused_with_the_limit():
    body = FemBodySpec("pad", flat_pad())
    limit = stable_dt([body], ContactParams())
    with pytest.raises(ValueError, match="stability limit"):
        FemSystem([body], [ShapeSpec("sphere", (0.005, 0, 0))], dt=2 * limit)
    # mass scaling raises the limit by its square root
    scaled = FemBodySpec("pad", flat_pad(), mass_scale=100.0)
    assert stable_dt([scaled], ContactParams()) == pytest.approx(10 * limit)


def _hertz_bonded_layer(E, nu, R, depth, thickness):
    """Hertz force of a rigid sphere, corrected for a layer of finite thickness bonded to a
    rigid base (Dimitriadis et al., Biophys. J. 2002, eq. for bonded samples)."""
    hertz = 4 / 3 * E / (1 - nu**2) * math.sqrt(R) * depth**1.5
    a0 = -(1.2876 - 1.4678 * nu + 1.3442 * nu**2) / (1 - nu)
    b0 = (0.6387 - 1.0277 * nu + 1.5164 * nu**2) / (1 - nu)
    chi = math.sqrt(R * depth) / thickness
    pi = math.pi
    corr = (
        1
        - 2 * a0 / pi * chi
        + 4 * a0**2 / pi**2 * chi**2
        - 8 / pi**3 * (a0**3 + 4 * pi**2 * b0 / 15) * chi**3
        + 16 * a0 / pi**4 * (a0**3 + 3 * pi**2 * b0 / 5) * chi**4
    )
    return hertz, hertz * corr


def test_sphere_pressed_into_flat_pad_follows_hertz():
    E, nu, R, H = 1e5, 0.3, 0.006, 0.008
    mesh = flat_pad((0.024, 0.024, H), (20, 20, 8), grading=(0.6, 0.6, 0.5))
    contact = ContactParams(stiffness=1e11, damping=0.0, friction=0.0)
    # damp the slowest (thickness) mode critically so each depth settles quickly
    wave = math.sqrt(E * (1 - nu) / ((1 + nu) * (1 - 2 * nu)) / 1000.0)
    body = FemBodySpec("pad", mesh, FemMaterial(E, nu, 1000.0, damping=2 * math.pi / (2 * H) * wave))
    sim = FemSystem([body], [ShapeSpec("sphere", (R, 0, 0))], contact, dt=stable_dt([body], contact), substeps=50, gravity=(0, 0, 0))
    depths, press, hold = (1.5e-4, 3e-4), 20, 40
    z = [0.0]
    for d in depths:
        z += list(np.linspace(z[-1], d, press + 1)[1:]) + [d] * hold
    T = len(z) - 1
    sphere = torch.zeros(T + 1, 1, 3, dtype=torch.float64)
    sphere[:, 0, 2] = torch.tensor(H + R - np.array(z), dtype=torch.float64)
    _, forces, _ = sim.forward(Trajectory(torch.zeros(T + 1, 1, 3, dtype=torch.float64), sphere))
    measured = []
    for k, d in enumerate(depths):
        end = (k + 1) * (press + hold)
        force = -forces[end - 1, :, 2].sum()
        settled = -forces[end - 4, :, 2].sum()
        assert force == pytest.approx(settled, rel=0.01), "the pad has not settled"
        hertz, layer = _hertz_bonded_layer(E, nu, R, d, H)
        assert force == pytest.approx(layer, rel=0.15)
        assert hertz < force  # a bonded layer is stiffer than the half-space
        measured.append(force / (layer / hertz))
    exponent = math.log(measured[1] / measured[0]) / math.log(depths[1] / depths[0])
    assert exponent == pytest.approx(1.5, abs=0.1)


@pytest.fixture(scope="module")
def small_press():
    mesh = flat_pad((0.01, 0.01, 0.003), (4, 4, 2))
    body = FemBodySpec("pad", mesh, FemMaterial(1e5, 0.4, 1000, 5.0), mass_scale=100.0)
    contact = ContactParams(stiffness=1e10, damping=5.0, friction=0.4)
    return FemSystem([body], [ShapeSpec("sphere", (0.004, 0, 0))], contact, dt=0.9 * stable_dt([body], contact), substeps=10)


def test_gradients_match_central_differences_with_sliding_contact(small_press):
    sim, T = small_press, 6
    z0 = 0.003 + 0.004 - torch.linspace(0, 2e-4, T + 1, dtype=torch.float64)
    x0 = torch.linspace(0, 2e-4, T + 1, dtype=torch.float64)
    weights = torch.randn(T, sim.n_nodes, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def loss(z, x, E, nu, contact):
        shape = torch.stack([x, torch.zeros_like(x), z], -1)[:, None, :]
        xs, fcs = sim.rollout(Trajectory(torch.zeros(T + 1, 1, 3, dtype=torch.float64), shape), E, nu, contact)
        assert fcs[-1].abs().sum() > 0  # contact is active
        return (fcs * weights).sum() + 1e3 * (xs * weights).sum()

    params = [z0, x0, torch.tensor([1e5]), torch.tensor([0.4]), torch.tensor([1e10, 5.0, 0.4])]
    assert_gradients_match(loss, params, [1e-4, 1e-4] + [p.double().abs() for p in params[2:]])
