"""MLS-MPM: exact mass and momentum in free flight, a settling fluid keeps its volume,
plastic keeps a dent where elastic springs back, gradients match central differences."""

import numpy as np
import pytest
import torch

from sim.fem.spec import ShapeSpec
from sim.mpm.sampling import sample_box, sample_cylinder, sample_sphere
from sim.errors import SimulationError
from sim.mpm.solver import MpmSystem, MpmTrajectory
from sim.mpm.spec import MpmBodySpec, MpmGrid, MpmMaterial
from tests.sim.volumetric.torch_fd import assert_gradients_match

G = 9.81


def test_elastic_block_in_free_flight_conserves_mass_and_momentum():
    grid = MpmGrid((0, 0, 0), 0.1, 24)
    pts, vol = sample_box((0.05, 0.05, 0.06), (0.01, 0.012, 0.008), grid.dx / 2)
    spin = np.cross([0.0, 0.0, 3.0], pts - pts.mean(0))  # spinning, so stresses are not trivial
    body = MpmBodySpec("block", pts, vol, MpmMaterial("elastic", youngs_modulus=2e4), velocity=(0.2, -0.1, 0.3))
    sim = MpmSystem([body], grid, dt=2e-4, substeps=10, requires_grad=False)
    steps = 5
    x, v, _, _ = sim.run(steps, state=(sim.x0, sim.v0 + spin, np.zeros((sim.n, 3, 3)), np.broadcast_to(np.eye(3), (sim.n, 3, 3)).copy()))[0]
    m = sim.mass_np[:, None]
    # P2G of the final state puts exactly the particles' mass on the grid
    sim.p2g(sim.slot(sim.substeps))
    assert sim.grid_m.to_numpy().sum() == pytest.approx(m.sum(), rel=1e-12)
    t = steps * sim.substeps * sim.dt
    momentum0 = (m * (sim.v0 + spin)).sum(0)
    expected = momentum0 + m.sum() * np.array([0, 0, -G]) * t
    assert np.allclose((m * v).sum(0), expected, rtol=0, atol=1e-12 * np.abs(momentum0).max())
    # and the block moved as a body in free fall
    drop = (x - sim.x0).mean(0)
    assert np.allclose(drop, np.array([0.2, -0.1, 0.3]) * t + 0.5 * np.array([0, 0, -G]) * t**2, atol=1e-4)


def test_fluid_column_keeps_its_volume_after_settling():
    grid = MpmGrid((0, 0, 0), 0.04, 24)
    pts, vol = sample_box((0.02, 0.02, 0.016), (0.006, 0.006, 0.01), grid.dx / 2)
    water = MpmMaterial("fluid", density=1000.0, bulk_modulus=2e4, viscosity=0.01)
    sim = MpmSystem([MpmBodySpec("water", pts, vol, water)], grid, dt=1e-4, substeps=50, requires_grad=False)
    (x, _, _, b), _ = sim.run(40)  # 0.2 s
    volume = (np.sqrt(np.linalg.det(b)) * vol).sum()
    assert volume == pytest.approx(len(pts) * vol, rel=0.05)
    assert x[:, 2].max() < 0.016  # the column collapsed (it stood 26 mm high)
    assert x[:, 2].min() > 0  # and stayed inside the container


def _pressed_and_released(kind):
    grid = MpmGrid((0, 0, 0), 0.04, 20)
    pts, vol = sample_box((0.02, 0.02, 0.013), (0.008, 0.008, 0.006), grid.dx / 2)
    mat = MpmMaterial(kind, density=1000.0, youngs_modulus=3e4, poisson_ratio=0.3, yield_stress=1.5e3)
    press = ShapeSpec("box", (0.004, 0.004, 0.004))
    sim = MpmSystem([MpmBodySpec(kind, pts, vol, mat)], grid, [press], friction=0.5, dt=1e-4, substeps=20, requires_grad=False)
    top = pts[:, 2].max()
    z = np.concatenate([np.linspace(0, 0.004, 21), np.linspace(0.004, -0.01, 8), np.full(30, -0.01)])
    pos = np.tile([0.02, 0.02, 0.0], (len(z), 1))
    pos[:, 2] = top + 0.004 + 5e-4 - z
    traj = MpmTrajectory(torch.from_numpy(pos[:, None, :]))
    (x, _, _, _), _ = sim.run(len(z) - 1, traj)
    centre = np.hypot(x[:, 0] - 0.02, x[:, 1] - 0.02) < 0.003
    return top - x[centre, 2].max()


def test_plastic_keeps_a_dent_where_elastic_springs_back():
    dent_elastic = _pressed_and_released("elastic")
    dent_plastic = _pressed_and_released("plastic")
    assert dent_plastic > 1e-3  # pressed 3.5 mm, keeps more than 1 mm
    assert dent_elastic < 0.3 * dent_plastic


def test_samplers_fill_their_shapes():
    pts, vol = sample_sphere((0, 0, 0), 0.01, 0.001)
    assert len(pts) * vol == pytest.approx(4 / 3 * np.pi * 1e-6, rel=0.05)
    pts, vol = sample_cylinder((0, 0, 0), 0.01, 0.005, 0.001)
    assert len(pts) * vol == pytest.approx(np.pi * 1e-4 * 0.01, rel=0.05)


def test_particles_outside_the_grid_are_refused():
    grid = MpmGrid((0, 0, 0), 0.04, 16)
    with pytest.raises(ValueError, match="'lost'.*outside"):
        MpmSystem([MpmBodySpec("lost", np.array([[0.039, 0.02, 0.02]]), 1e-9)], grid)


def test_a_blow_up_names_the_body_and_step():
    grid = MpmGrid((0, 0, 0), 0.04, 16)
    pts, vol = sample_box((0.02, 0.02, 0.02), (0.004, 0.004, 0.004), grid.dx / 2)
    stiff = MpmMaterial("elastic", youngs_modulus=1e9)
    sim = MpmSystem([MpmBodySpec("jelly", pts, vol, stiff, velocity=(0, 0, 1.0))], grid, dt=1e-3, substeps=10, requires_grad=False)
    with pytest.raises(SimulationError, match="step .*: jelly: position"):
        sim.run(20)


@pytest.mark.slow
def test_gradients_of_all_three_materials_match_central_differences():
    grid = MpmGrid((0, 0, 0), 0.06, 24)
    bodies = []
    for k, kind in enumerate(("elastic", "plastic", "fluid")):
        pts, vol = sample_box((0.015 + 0.015 * k, 0.03, 0.012), (0.004, 0.004, 0.004), grid.dx / 2)
        mat = MpmMaterial(kind, youngs_modulus=2e4, yield_stress=300.0, bulk_modulus=2e4, viscosity=0.5)
        bodies.append(MpmBodySpec(kind, pts, vol, mat))
    # one bar pressing and sliding over all three; its faces never sit exactly on grid nodes
    # at a substep (a node crossing a face is a discrete event finite differences would see)
    bar = ShapeSpec("box", (0.0213, 0.004, 0.003))
    sim = MpmSystem(bodies, grid, [bar], dt=2e-4, substeps=5, checkpoint_every=2)
    T = 6
    path = torch.zeros(T + 1, 1, 3, dtype=torch.float64)
    path[:, 0, 0] = 0.03 + torch.linspace(0, 1e-3, T + 1, dtype=torch.float64)
    path[:, 0, 1] = 0.03
    path[:, 0, 2] = 0.016 + 0.003 + 3.7e-4 - torch.linspace(0, 2e-3, T + 1, dtype=torch.float64)
    weights = torch.randn(sim.n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def loss(path, E, nu, ys, visc, fr):
        x, v = sim.rollout(T, MpmTrajectory(path), youngs=E, poisson=nu, yield_stress=ys, viscosity=visc, friction=fr)
        return 100 * (x * weights).sum() + (v * weights).sum()

    params = [path, torch.full((3,), 2e4), torch.full((3,), 0.3), torch.full((3,), 300.0), torch.full((3,), 0.5), torch.tensor(0.5)]
    params = assert_gradients_match(loss, params, [1e-4] + [p.double().abs() for p in params[1:]])
    assert params[3].grad[1] != 0 and params[4].grad[2] != 0  # yield and viscosity matter


def test_a_contact_band_lets_a_tool_act_before_it_touches():
    """A plate stopping just short of a block's grid nodes leaves the block alone with hard
    contact (band 0: no node is inside it) and nudges it, with a gradient matching central
    differences, with a band."""
    grid = MpmGrid((0, 0, 0), 0.04, 16)
    pts, vol = sample_box((0.02, 0.02, 0.0125), (0.005, 0.005, 0.005), grid.dx / 2)
    mat = MpmMaterial("elastic", youngs_modulus=2e4)
    plate = ShapeSpec("box", (0.008, 0.008, 0.002))
    reach = grid.dx * (np.floor(pts[:, 2].max() / grid.dx - 0.5) + 2)  # highest node the particles' stencils touch
    T = 4
    path = torch.zeros(T + 1, 1, 3, dtype=torch.float64)
    path[:, 0, :2] = 0.02
    path[:, 0, 2] = reach + 0.002 + 3e-4 - torch.linspace(0, 2e-4, T + 1, dtype=torch.float64)  # approaching, never reaching it

    def settle(band, requires_grad):
        return MpmSystem([MpmBodySpec("block", pts, vol, mat)], grid, [plate], dt=1e-4, substeps=5,
                         requires_grad=requires_grad, contact_band=band)

    hard = settle(0.0, False)
    free = MpmSystem([MpmBodySpec("block", pts, vol, mat)], grid, dt=1e-4, substeps=5, requires_grad=False)
    assert np.array_equal(hard.run(T, MpmTrajectory(path))[0][0], free.run(T)[0][0])

    soft = settle(0.5 * grid.dx, True)
    nudged = soft.rollout(T, MpmTrajectory(path))[0].detach().numpy()
    assert (nudged[:, 2] - free.run(T)[0][0][:, 2]).min() < -1e-7  # pushed down, not only noise

    def loss(path):
        x, v = soft.rollout(T, MpmTrajectory(path))
        return 1e3 * x[:, 2].mean() + v[:, 2].mean()

    (p,) = assert_gradients_match(loss, [path], [1e-4])
    assert p.grad[:, 0, 2].abs().sum() > 0
    with pytest.raises(ValueError, match="contact_band"):
        settle(-1e-3, False)


def test_a_tape_gives_the_checkpointed_gradients_without_recomputing():
    """With every substep's state kept on a tape the backward recomputes nothing and gives
    the gradients of the checkpointed backward, which it falls back to when another run
    has overwritten the tape (equal to rounding: the adjoints' atomic adds may sum in
    another order)."""
    grid = MpmGrid((0, 0, 0), 0.04, 16)
    pts, vol = sample_box((0.02, 0.02, 0.0125), (0.005, 0.005, 0.005), grid.dx / 2)
    mat = MpmMaterial("fluid", bulk_modulus=2e4, viscosity=0.1)
    plate = ShapeSpec("box", (0.008, 0.008, 0.002))
    T = 3
    path = torch.zeros(T + 1, 1, 3, dtype=torch.float64)
    path[:, 0, :2] = 0.021
    path[:, 0, 2] = 0.0205 - torch.linspace(0, 3e-3, T + 1, dtype=torch.float64)  # into the water
    sim = MpmSystem([MpmBodySpec("water", pts, vol, mat)], grid, [plate], dt=1e-4, substeps=4, tape_steps=T)
    assert sim.tape_steps == T and sim.slots == T * 4 + 1
    weights = torch.randn(len(pts), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    substep = sim.substep

    def gradients(meddle: bool):
        p = path.clone().requires_grad_(True)
        visc = torch.tensor([0.1], dtype=torch.float64, requires_grad=True)
        x, v = sim.rollout(T, MpmTrajectory(p), viscosity=visc)
        if meddle:
            with torch.no_grad():
                sim.run(1, MpmTrajectory(path[:2]))
        recomputed = []
        sim.substep = lambda s: (recomputed.append(s), substep(s))
        ((x * weights).sum() + (v * v).sum()).backward()
        del sim.substep
        return p.grad.numpy(), visc.grad.numpy(), len(recomputed)

    taped, fallback = gradients(meddle=False), gradients(meddle=True)
    assert taped[2] == 0 and fallback[2] == T * 4
    assert np.abs(taped[0]).max() > 0 and taped[1][0] != 0
    np.testing.assert_allclose(taped[0], fallback[0], rtol=1e-10, atol=1e-12 * np.abs(fallback[0]).max())
    np.testing.assert_allclose(taped[1], fallback[1], rtol=1e-10)
    too_long = MpmSystem([MpmBodySpec("water", pts, vol, mat)], grid, [plate], dt=1e-4, substeps=4, tape_steps=10**6)
    assert too_long.tape_steps == 0 and too_long.slots == 5  # a tape only where it fits the ring budget


def test_the_grid_tape_gives_the_gradients_of_a_recomputed_grid(monkeypatch):
    """A reverse substep puts back the grid its forward's P2G made instead of scattering
    again, where that grid's box fitted the tape; the gradients are those of scattering
    every grid again (the same serial sums: bit for bit but for the plate's, which threads
    add up in any order). Here the tape has room for the box at the start only, which the
    spreading water outgrows."""
    import sim.mpm.solver as solver

    grid = MpmGrid((0, 0, 0), 0.04, 16)
    pts, vol = sample_box((0.02, 0.02, 0.015), (0.005, 0.005, 0.005), grid.dx / 2)
    mat = MpmMaterial("fluid", bulk_modulus=2e4, viscosity=0.1)
    plate = ShapeSpec("box", (0.008, 0.008, 0.002))
    T, S = 3, 4
    path = torch.zeros(T + 1, 1, 3, dtype=torch.float64)
    path[:, 0, :2] = 0.021
    path[:, 0, 2] = 0.0225 - torch.linspace(0, 3e-3, T + 1, dtype=torch.float64)
    weights = torch.randn(len(pts), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    bodies = [MpmBodySpec("water", pts, vol, mat)]
    room = solver.grid_tape_cells(bodies, grid) // 8
    monkeypatch.setattr(solver, "grid_tape_cells", lambda bodies, grid: room)
    sim = MpmSystem(bodies, grid, [plate], dt=2e-4, substeps=S, tape_steps=T)
    monkeypatch.undo()
    burst = 6.0 * (pts - pts.mean(0)) / 0.005  # m/s, outward: the box grows a cell every few substeps
    scattered, p2g = [], sim.p2g
    sim.p2g = lambda r: (scattered.append(r), p2g(r))

    def gradients(taped: bool):
        p = path.clone().requires_grad_(True)
        visc = torch.tensor([0.1], dtype=torch.float64, requires_grad=True)
        x, v = sim.rollout(T, MpmTrajectory(p), viscosity=visc, velocity=torch.from_numpy(burst))
        if not taped:  # as if no box had fitted
            box = sim.grid_box.to_numpy()
            box[:, 6] = 0
            sim.grid_box.from_numpy(box)
        scattered.clear()
        ((x * weights).sum() + (v * v).sum()).backward()
        return p.grad.numpy(), visc.grad.numpy(), len(scattered)

    taped, recomputed = gradients(True), gradients(False)
    assert recomputed[2] == T * S and 0 < taped[2] < T * S
    assert np.abs(taped[0]).max() > 0 and taped[1][0] != 0
    np.testing.assert_allclose(taped[0], recomputed[0], rtol=1e-13, atol=1e-13 * np.abs(recomputed[0]).max())
    np.testing.assert_array_equal(taped[1], recomputed[1])
