"""Dynamic rigid bodies in the volumetric world (sim.rigid): free flight and torque-free
spin, a block resting on the table, a hinged lid swinging with the pendulum's period, a
tactile pad pushing a block, and the adjoint of a pad pushing a block over the table
against float64 central differences."""

import math

import numpy as np
import pytest

from sim.fem.mesh import flat_pad
from sim.fem.spec import FemBodySpec, FemMaterial, quat_to_matrix
from sim.rigid.spec import Hinge, RigidBodySpec, yaw_of
from sim.spec import ColliderSpec, Settings, ToolSpec, WorldSpec

G = 9.81
TABLE = ColliderSpec("table", "box", (0.05, 0.05, 0.005), position=(0.0, 0.0, -0.005))
PUSHER = (0.004, 0.006, 0.006)  # half-extents of the box carrying the pad
THICK = 0.003


def _world(spec):
    from sim.world import World

    return World(spec)


def _run(world, steps=None):
    for _ in range(steps or world.spec.settings.steps):
        world.step()
    return world.volumetric.state


def test_free_flight_follows_gravity_and_a_torque_free_spin_keeps_its_angular_momentum():
    """Semi-implicit Euler: the velocity is exact, the height off by g dt T / 2 at most; an
    asymmetric box tumbling freely keeps its world-frame angular momentum and its energy."""
    body = RigidBodySpec("brick", "box", (0.01, 0.006, 0.003), density=800.0, position=(0.0, 0.0, 0.2),
                         velocity=(0.1, 0.0, 0.5), angular_velocity=(3.0, 0.2, 1.0))
    steps, dt = 20, 2e-3
    world = _world(WorldSpec(Settings(dt=dt, steps=steps), rigid_bodies=(body,)))
    start = world.volumetric.get_state()
    energy0 = world.energies()["kinetic"]
    state = _run(world)
    T = steps * dt
    assert np.allclose(state["rigid_v"][0], [0.1, 0.0, 0.5 - G * T], rtol=0, atol=1e-12)
    expected = np.array([0.1 * T, 0.0, 0.2 + 0.5 * T - 0.5 * G * T * T])
    assert np.abs(state["rigid_x"][0] - expected).max() <= G * world.volumetric.dt * T

    def momentum(s):
        R = quat_to_matrix(s["rigid_q"][0])
        return R @ (body.mass * body.unit_inertia() * (R.T @ s["rigid_w"][0]))

    L0, L1 = momentum(start), momentum(state)
    assert np.linalg.norm(L1 - L0) <= 2e-3 * np.linalg.norm(L0)
    spin0 = energy0 - 0.5 * body.mass * np.sum(start["rigid_v"][0] ** 2)
    spin1 = world.energies()["kinetic"] - 0.5 * body.mass * np.sum(state["rigid_v"][0] ** 2)
    assert spin1 == pytest.approx(spin0, rel=5e-3)
    assert abs(np.linalg.norm(state["rigid_q"][0]) - 1.0) < 1e-12


def test_a_block_comes_to_rest_on_the_table_carried_by_its_weight():
    """Dropped from 0.1 mm, the block settles; the penalty forces of its bottom's surface
    points (the smoothed ramp of their depth times their areas) then carry exactly its weight."""
    body = RigidBodySpec("block", "box", (0.01, 0.01, 0.01), density=1000.0, position=(0.0, 0.0, 0.0101))
    world = _world(WorldSpec(Settings(dt=1e-2, steps=25), colliders=(TABLE,), rigid_bodies=(body,)))
    state = _run(world)
    assert np.abs(state["rigid_v"][0]).max() < 1e-4 and np.abs(state["rigid_w"][0]).max() < 1e-2
    system = world.volumetric
    points, area = body.surface_samples()
    depth = -(points @ quat_to_matrix(state["rigid_q"][0]).T + state["rigid_x"][0])[:, 2]
    delta, kn = system.contact_params.smoothing, system.contact_params.stiffness
    ramp = np.where(depth < delta, depth**2 / (2 * delta), depth - delta / 2) * (depth > 0)
    assert kn * np.sum(area * ramp) == pytest.approx(body.mass * G, rel=0.01)
    assert 0 < depth.max() < 2e-5  # a few micrometres into the table
    assert world.contact_count() == 1


def test_a_hinged_lid_swings_with_the_period_of_a_physical_pendulum():
    """A thin plate on a horizontal hinge along one edge, released 3 degrees from hanging:
    T = 2 pi sqrt(I_pivot / (m g d)), I_pivot = m (a^2 + c^2) / 3 + m a^2 for half-extents
    a (away from the hinge) and c (thickness), d = a."""
    a, c = 0.03, 0.002
    start = math.pi / 2 + math.radians(3)  # +pi/2 turns the plate's +x down about +y
    lid = RigidBodySpec("lid", "box", (a, 0.02, c), density=500.0, position=(a, 0.0, 0.5),
                        hinge=Hinge((0.0, 0.0, 0.5), (0.0, 1.0, 0.0), angle=start))
    dt, steps = 5e-3, 90
    world = _world(WorldSpec(Settings(dt=dt, steps=steps), rigid_bodies=(lid,)))
    theta = []
    for _ in range(steps):
        world.step()
        theta.append(world.volumetric.state["rigid_angle"][0, 0] - math.pi / 2)
    theta = np.array(theta)
    t = dt * np.arange(1, steps + 1)
    k = np.nonzero(np.diff(np.sign(theta)))[0]
    crossings = t[k] - theta[k] * dt / (theta[k + 1] - theta[k])
    period = 2 * np.diff(crossings).mean()
    expected = 2 * math.pi * math.sqrt(((a * a + c * c) / 3 + a * a) / (G * a))
    assert len(crossings) >= 2
    assert period == pytest.approx(expected, rel=0.02)
    # the pose follows the angle: the plate's centre stays a from the axis
    x = world.volumetric.state["rigid_x"][0]
    assert math.hypot(x[0], x[2] - 0.5) == pytest.approx(a, rel=1e-9)


def _push_spec(steps: int, dt: float, y: float, speed: float, pad_size: float, block_half: float) -> WorldSpec:
    """A pad (gel facing +x) on a rigid pusher, starting 0.1 mm short of a block on the
    table, moving along +x at ``speed``, its centre ``y`` off the block's."""
    s = math.sqrt(0.5)
    pad = FemBodySpec("pad", flat_pad((pad_size, pad_size, THICK), (3, 3, 2)), FemMaterial(2e5, 0.4, 1100.0, 50.0),
                      position=(PUSHER[0] - THICK, 0.0, 0.0), rotation=(s, 0.0, s, 0.0), mass_scale=20.0, mount="pusher")
    block = RigidBodySpec("block", "box", (block_half,) * 3, density=500.0, position=(0.0, 0.0, block_half + 1e-5),
                          friction=0.4)
    x0 = -block_half - PUSHER[0] - 1e-4
    tool = ToolSpec("pusher", "rigid", ("pusher",), position=(x0, y, block_half))
    actions = np.zeros((steps, 1, 8))
    actions[:, 0, :4] = (0.0, y, block_half, 1.0)
    actions[:, 0, 0] = x0 + speed * dt * np.arange(1, steps + 1)
    return WorldSpec(Settings(dt=dt, steps=steps), colliders=(TABLE, ColliderSpec("pusher", "box", PUSHER)), tools=(tool,),
                     actions=actions, fem_bodies=(pad,), rigid_bodies=(block,))


def test_a_pad_pushing_a_block_off_centre_slides_and_turns_it():
    """Pushed 1 cm along +x, 3 mm to the +y side of its centre, the block moves along +x
    behind the pad and turns clockwise seen from above (negative yaw); it stays on the table."""
    world = _world(_push_spec(12, 1e-2, 0.003, 0.1, 0.006, 0.005))
    state = _run(world)
    x = state["rigid_x"][0]
    assert 0.005 < x[0] < 0.012
    assert yaw_of(state["rigid_q"][0]) < -math.radians(2)
    assert abs(x[2] - 0.005) < 1e-4


def test_adjoint_of_a_pad_pushing_a_block_matches_central_differences():
    """Active contact all along: the pad presses the block, which slides on the table."""
    from sim.volumetric import check_volumetric_gradients

    world = _world(_push_spec(4, 2e-3, 0.0005, 0.1, 0.006, 0.005))
    kinds = ("actions", "rigid_mass", "rigid_friction", "contact_stiffness", "contact_friction", "rigid_initial_pose")
    results = check_volumetric_gradients(world, kinds)
    assert [r.kind for r in results] == list(kinds)
    assert world.volumetric.state["rigid_x"][0, 0] > 5e-4  # the pad pushed the block (it slides on after the pad's kick)
    for r in results:
        assert not r.inactive, f"{r.kind} does not act on this run"
        assert r.rel_error <= 1e-3, f"{r.kind}: adjoint {r.analytic:.6e} vs FD {r.numeric:.6e}"
