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
