"""Every hand-written force is minus the gradient of its energy (float64 central differences)."""

import numpy as np
import pytest

from sim.world import World
from tests.sim.scenes import pushed_sheet


def _total_energy(shells):
    return shells._energy(with_body=True)  # elastic, gravity, damping, contact, friction


@pytest.fixture(scope="module")
def deformed_world():
    world = World(pushed_sheet())
    for _ in range(6):  # drags the sheet: contact, friction, stretch and bending all active
        world.step()
    shells = world.shells
    world.colliders.set_poses(world.poses[6], world.poses[7])
    rng = np.random.default_rng(1)
    x = shells.get_state()["x"] + rng.normal(scale=2e-4, size=(shells.nv, 3))
    shells.rest.from_numpy(rng.normal(scale=0.1, size=shells.nh))  # non-zero rest folds
    return world, x


def test_forces_are_minus_energy_gradient(deformed_world):
    world, x = deformed_world
    shells = world.shells
    shells.x.from_numpy(x)
    shells.forces()
    force = shells.f.to_numpy()
    assert shells.contact_count() > 0
    rng = np.random.default_rng(2)
    for _ in range(3):
        d = rng.normal(size=x.shape)
        h = 1e-7
        shells.x.from_numpy(x + h * d)
        plus = _total_energy(shells)
        shells.x.from_numpy(x - h * d)
        minus = _total_energy(shells)
        numeric = -(plus - minus) / (2 * h)
        analytic = float(np.sum(force * d))
        assert analytic == pytest.approx(numeric, rel=1e-6)


@pytest.fixture(scope="module")
def pinched_world():
    from sim.bench.shells import pinched_sheet

    world = World(pinched_sheet(13, 16))
    for _ in range(12):  # closed on the sheet and lifting: finger contact, sticking friction, table
        world.step()
    return world


def test_difference_products_match_the_exact_hessian_products(pinched_world):
    """The forward Newton solve's Jacobian-free products agree with the reverse-mode ones."""
    shells = pinched_world.shells
    assert shells.contact_count() > 0
    beta = 2.0 * shells.dt / 3.0
    rng = np.random.default_rng(4)
    for scale in (1e-3, 1.0):
        p = rng.normal(scale=scale, size=(shells.nx, 3))
        shells.forces()
        exact = shells._hvp(p, beta)
        difference = shells._hvp_difference(p, beta, shells.x.to_numpy(), shells.f.to_numpy())
        assert np.linalg.norm(difference - exact) <= 1e-5 * np.linalg.norm(exact)


def test_a_forward_step_never_runs_the_reverse_force_kernel(pinched_world, monkeypatch):
    """So a cold start to the first step does not wait for the reverse kernel's compilation."""
    def refuse():
        raise AssertionError("the forward step ran the reverse force kernel")

    monkeypatch.setattr(pinched_world.shells, "_force_adjoint", refuse)
    stats = pinched_world.step()
    assert stats["shells"]["cg"] > 0  # the step did use CG products


def _hinge_energy_and_forces():
    """bending() of one hinge as a function of its four vertices (float64 kernel)."""
    import taichi as ti

    from sim.runtime import RuntimeConfig, ensure_runtime
    from sim.shell.energies import bending

    ensure_runtime(RuntimeConfig(backend="cpu", precision="f64"))

    @ti.kernel
    def hinge(x: ti.types.ndarray(dtype=ti.math.vec3, ndim=1), out: ti.types.ndarray(dtype=ti.math.vec3, ndim=1)):
        e, f0, f1, f2, f3 = bending(x[0], x[1], x[2], x[3], 0.3, 2.0, 1e-3)
        out[0] = ti.Vector([e, 0.0, 0.0])
        out[1], out[2], out[3], out[4] = f0, f1, f2, f3

    def evaluate(points):
        out = np.zeros((5, 3))
        hinge(np.ascontiguousarray(points, np.float64), out)
        return out[0, 0], out[1:]

    return evaluate


def test_a_hinge_whose_wing_is_crushed_flat_fades_out_smoothly():
    """A wing flattened towards its edge: the hinge's energy and forces go to zero with it
    (they grew without bound: the angle's gradient divides by the wing's area), and where the
    fade acts the forces are still minus the energy's gradient."""
    evaluate = _hinge_energy_and_forces()
    edge = np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0]])
    other = np.array([0.004, -0.006, 0.003])

    def hinge(height):  # the first wing's apex over the edge at this height (its area: 0.005 height)
        return np.vstack([edge, [0.006, height, 0.002 * height / 0.01], other])

    unfaded, _ = evaluate(hinge(1e-2))
    force_at = {h: np.abs(evaluate(hinge(h))[1]).max() for h in (1e-3, 1e-5, 1e-7, 1e-9)}
    # unfaded they would grow as 1 / height: 100x from 1 mm to 10 um, 1e6x to 1 nm
    assert force_at[1e-5] < force_at[1e-3] and force_at[1e-9] < 1e-4 * force_at[1e-3]
    assert force_at[1e-9] < 2e-2 * force_at[1e-7]  # to zero with the wing
    assert abs(evaluate(hinge(1e-9))[0]) < 1e-10 * unfaded
    rng = np.random.default_rng(5)
    x = hinge(4e-4)  # shape quality 0.04: inside the fade
    _, forces = evaluate(x)
    for _ in range(3):
        d = rng.normal(size=x.shape)
        h = 1e-9
        numeric = -(evaluate(x + h * d)[0] - evaluate(x - h * d)[0]) / (2 * h)
        assert float(np.sum(forces * d)) == pytest.approx(numeric, rel=1e-6)
