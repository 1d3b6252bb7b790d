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


BRICK = RigidBodySpec("brick", "box", (0.01, 0.006, 0.003), density=800.0, position=(0.5, 0.0, 2.0),
                      velocity=(0.1, 0.0, 0.5), angular_velocity=(3.0, 0.2, 1.0))
BLOCK = RigidBodySpec("block", "box", (0.01, 0.01, 0.01), density=1000.0, position=(0.0, 0.0, 0.0101))
# a plate on a horizontal hinge along its edge at (-0.5, 0, 1), half-extents a (away from the
# hinge) and c (thickness), released 3 degrees from hanging (+pi/2 turns its +x down about +y)
A, C = 0.03, 0.004
LID = RigidBodySpec("lid", "box", (A, 0.02, C), density=2000.0, position=(-0.5 + A, 0.0, 1.0),
                    hinge=Hinge((-0.5, 0.0, 1.0), (0.0, 1.0, 0.0), angle=math.pi / 2 + math.radians(3)))
DT, STEPS = 5e-3, 90


@pytest.fixture(scope="module")
def bodies():
    """One world for three bodies that never meet (rigid bodies do not touch each other):
    the state after every step."""
    world = _world(WorldSpec(Settings(dt=DT, steps=STEPS), colliders=(TABLE,), rigid_bodies=(BRICK, BLOCK, LID)))
    states = [world.volumetric.get_state()]
    for _ in range(STEPS):
        world.step()
        states.append(world.volumetric.get_state())
    return world, states


def test_free_flight_follows_gravity_and_a_torque_free_spin_keeps_its_angular_momentum(bodies):
    """Semi-implicit Euler: the velocity is exact, the height off by g dt T / 2 at most; an
    asymmetric box tumbling freely keeps its world-frame angular momentum and its energy."""
    world, states = bodies
    k = 10
    start, state = states[0], states[k]
    T = k * DT
    assert np.allclose(state["rigid_v"][0], [0.1, 0.0, 0.5 - G * T], rtol=0, atol=1e-12)
    expected = np.array([0.5 + 0.1 * T, 0.0, 2.0 + 0.5 * T - 0.5 * G * T * T])
    assert np.abs(state["rigid_x"][0] - expected).max() <= G * world.volumetric.dt * T

    def momentum(s):
        R = quat_to_matrix(s["rigid_q"][0])
        return R @ (BRICK.mass * BRICK.unit_inertia() * (R.T @ s["rigid_w"][0]))

    def spin_energy(s):
        w = quat_to_matrix(s["rigid_q"][0]).T @ s["rigid_w"][0]
        return 0.5 * BRICK.mass * np.sum(BRICK.unit_inertia() * w * w)

    L0, L1 = momentum(start), momentum(state)
    assert np.linalg.norm(L1 - L0) <= 2e-3 * np.linalg.norm(L0)
    assert spin_energy(state) == pytest.approx(spin_energy(start), rel=5e-3)
    assert abs(np.linalg.norm(state["rigid_q"][0]) - 1.0) < 1e-12


def test_a_block_comes_to_rest_on_the_table_carried_by_its_weight(bodies):
    """Dropped from 0.1 mm, the block settles; the penalty forces of its bottom's surface
    points (the smoothed ramp of their depth times their areas) then carry exactly its weight."""
    world, states = bodies
    state = states[-1]
    assert np.abs(state["rigid_v"][1]).max() < 1e-4 and np.abs(state["rigid_w"][1]).max() < 1e-2
    points, area = BLOCK.surface_samples()
    depth = -(points @ quat_to_matrix(state["rigid_q"][1]).T + state["rigid_x"][1])[:, 2]
    params = world.volumetric.contact_params
    delta = params.smoothing
    ramp = np.where(depth < delta, depth**2 / (2 * delta), depth - delta / 2) * (depth > 0)
    assert params.stiffness * np.sum(area * ramp) == pytest.approx(BLOCK.mass * G, rel=0.01)
    assert 0 < depth.max() < 2e-5  # a few micrometres into the table
    assert world.contact_count() == 1  # the block: the brick and the lid touch nothing


def test_a_hinged_lid_swings_with_the_period_of_a_physical_pendulum(bodies):
    """T = 2 pi sqrt(I_pivot / (m g d)) with I_pivot = m (a^2 + c^2) / 3 + m a^2, d = a."""
    world, states = bodies
    theta = np.array([s["rigid_angle"][2, 0] for s in states[1:]]) - math.pi / 2
    t = DT * np.arange(1, STEPS + 1)
    k = np.nonzero(np.diff(np.sign(theta)))[0]
    crossings = t[k] - theta[k] * DT / (theta[k + 1] - theta[k])
    period = 2 * np.diff(crossings).mean()
    expected = 2 * math.pi * math.sqrt(((A * A + C * C) / 3 + A * A) / (G * A))
    assert len(crossings) >= 2
    assert period == pytest.approx(expected, rel=0.02)
    # the pose follows the angle: the plate's centre stays a from the axis
    x = states[-1]["rigid_x"][2]
    assert math.hypot(x[0] + 0.5, x[2] - 1.0) == pytest.approx(A, rel=1e-9)


def _push_spec(steps: int, dt: float, y: float, speed: float) -> WorldSpec:
    """A 5 mm pad (gel facing +x) on a rigid pusher, starting 0.1 mm short of a 1 cm block
    on the table, moving along +x at ``speed``, its centre ``y`` off the block's (the pad
    stays within the block's face: its edges would make the contact normal jump)."""
    s = math.sqrt(0.5)
    pad = FemBodySpec("pad", flat_pad((0.005, 0.005, THICK), (3, 3, 2)), FemMaterial(2e5, 0.4, 1100.0, 50.0),
                      position=(PUSHER[0] - THICK, 0.0, 0.0), rotation=(s, 0.0, s, 0.0), mass_scale=20.0, mount="pusher")
    block = RigidBodySpec("block", "box", (0.005,) * 3, density=500.0, position=(0.0, 0.0, 0.005 + 1e-5), friction=0.4)
    x0 = -0.005 - PUSHER[0] - 1e-4
    tool = ToolSpec("pusher", "rigid", ("pusher",), position=(x0, y, 0.005))
    actions = np.zeros((steps, 1, 8))
    actions[:, 0, :4] = (0.0, y, 0.005, 1.0)
    actions[:, 0, 0] = x0 + speed * dt * np.arange(1, steps + 1)
    return WorldSpec(Settings(dt=dt, steps=steps), colliders=(TABLE, ColliderSpec("pusher", "box", PUSHER)), tools=(tool,),
                     actions=actions, fem_bodies=(pad,), rigid_bodies=(block,))


@pytest.fixture(scope="module")
def push():
    """One world for the push and its gradients: Taichi compiles a system's kernels per instance."""
    return _world(_push_spec(5, 4e-3, 0.002, 0.3))


def test_a_pad_pushing_a_block_off_centre_slides_and_turns_it(push):
    """Pushed 2 mm to the +y side of its centre along +x, the block moves along +x and turns
    clockwise seen from above (negative yaw); it stays on the table."""
    state = _run(push)
    x = state["rigid_x"][0]
    assert 0.002 < x[0] < 0.01
    assert yaw_of(state["rigid_q"][0]) < -math.radians(0.5)
    assert abs(x[2] - 0.005) < 1e-4


@pytest.mark.slow  # ~16 s warm at load 10; its reverse-mode contact kernels compile for minutes on a cold cache
def test_adjoint_of_a_pad_pushing_a_block_matches_central_differences(push):
    """The pad presses the block, which slides on the table (with friction) all along."""
    from sim.volumetric import check_volumetric_gradients

    kinds = ("actions", "rigid_mass", "rigid_friction", "contact_stiffness", "contact_friction", "rigid_initial_pose")
    results = check_volumetric_gradients(push, kinds)
    assert [r.kind for r in results] == list(kinds)
    for r in results:
        assert not r.inactive, f"{r.kind} does not act on this run"
        assert r.rel_error <= 1e-3, f"{r.kind}: adjoint {r.analytic:.6e} vs FD {r.numeric:.6e}"
