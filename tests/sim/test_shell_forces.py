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
