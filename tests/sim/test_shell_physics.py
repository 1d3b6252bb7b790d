"""Thin-shell physics against analytic cases: free fall, pinned drape, friction on a slope,
energy, determinism, blow-up reports."""

import dataclasses

import numpy as np
import pytest

from sim import geometry
from sim.errors import SimulationError
from sim.runtime import RuntimeConfig
from sim.spec import ColliderSpec, Settings, ShellMaterial, ShellSpec, WorldSpec
from sim.world import World
from tests.sim.scenes import gathered_fold, pinched_edge, pushed_sheet, sheet_spec


def test_free_fall_matches_the_analytic_parabola():
    # BDF2 integrates constant acceleration exactly (it is exact on quadratics), and the
    # first step's history comes from gravity alone, so the only error is round-off.
    v0 = (0.3, -0.2, 1.5)
    shell = dataclasses.replace(sheet_spec(4, 0.05, 1.0), velocity=v0)
    steps, dt = 200, 5e-3
    # solved to round-off (the default tolerance, 1e-6 of each step's displacement, would
    # leave the same order of error as the check)
    tight = Settings(dt=dt, steps=steps, newton_tol=1e-12, newton_rtol=0.0, newton_ftol=0.0)
    world = World(WorldSpec(settings=tight, shells=(shell,)))
    x0 = shell.vertices
    g = np.array(world.spec.settings.gravity)
    for k in range(1, steps + 1):
        world.step()
        if k % 50 == 0:
            t = k * dt
            exact = x0 + np.array(v0) * t + 0.5 * g * t * t
            state = world.get_state()["shells"]
            moved = np.linalg.norm(exact - x0)
            assert np.abs(state["x"] - exact).max() <= 1e-6 * moved
            assert np.abs(state["v"] - (np.array(v0) + g * t)).max() <= 1e-6 * np.linalg.norm(g * t)


def test_sheet_pinned_at_two_corners_settles_symmetric_and_at_rest():
    n = 7
    mat = ShellMaterial(youngs_modulus=5e4, bending_stiffness=1e-6, damping=15.0)
    shell = sheet_spec(n, 0.1, 0.0, pinned=(n * (n - 1), n * n - 1), material=mat)  # the two corners at +y
    world = World(WorldSpec(settings=Settings(dt=4e-2, steps=40), shells=(shell,)))
    for _ in range(40):
        world.step()
    state = world.get_state()["shells"]
    x = state["x"].reshape(n, n, 3)  # [j, i]: i along x
    mirrored = x[:, ::-1] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(x - mirrored).max() < 1e-6
    assert np.linalg.norm(state["v"], axis=1).max() < 2e-3
    assert x[0, :, 2].max() < -0.05  # the free edge hangs well below the pins


def _slope_world(angle_deg: float, friction: float) -> World:
    tilt = np.radians(angle_deg)
    rot = (np.cos(tilt / 2), np.sin(tilt / 2), 0.0, 0.0)  # about x: the slope descends towards -y
    mat = ShellMaterial(youngs_modulus=1e5, bending_stiffness=1e-5, thickness=5e-4)
    v, t = geometry.sheet(4, 4, 0.03, 0.03)
    v[:, 2] += mat.thickness / 2
    v = geometry.transform_points(v, (0, 0, 0), rot)
    table_center = geometry.transform_points(np.array([[0.0, 0.0, -0.01]]), (0, 0, 0), rot)[0]
    table = ColliderSpec("table", "box", (0.3, 0.3, 0.01), position=tuple(table_center), rotation=rot,
                         friction=friction, contact_stiffness=1e3)
    spec = WorldSpec(settings=Settings(dt=5e-3, steps=40), shells=(ShellSpec("sheet", v, t, material=mat),),
                     colliders=(table,))
    return World(spec)


@pytest.mark.parametrize("angle, slides", [(15.0, False), (40.0, True)])
def test_sheet_on_a_slope_sticks_below_the_friction_angle_and_slides_above(angle, slides):
    mu = 0.5  # friction angle 26.6 degrees
    world = _slope_world(angle, mu)
    x0 = world.get_state()["shells"]["x"].mean(0)
    for _ in range(40):
        world.step()
    t = 40 * world.spec.settings.dt
    moved = np.linalg.norm(world.get_state()["shells"]["x"].mean(0) - x0)
    tilt = np.radians(angle)
    if slides:  # Coulomb sliding: a = g (sin - mu cos)
        expected = 0.5 * 9.81 * (np.sin(tilt) - mu * np.cos(tilt)) * t * t
        assert moved == pytest.approx(expected, rel=0.1)
    else:  # sticking: at most the creep the smoothed friction allows (below friction_velocity)
        assert moved < world.spec.contact.friction_velocity * t


def test_energy_does_not_grow_without_input():
    n = 6
    shell = sheet_spec(n, 0.06, 0.0, pinned=tuple(range(n)), material=ShellMaterial(youngs_modulus=1e5, bending_stiffness=1e-5))
    world = World(WorldSpec(settings=Settings(dt=5e-3, steps=60), shells=(shell,)))
    total = lambda e: e["kinetic"] + e["elastic"] + e["gravity"]  # noqa: E731
    start = total(world.energies())
    history = []
    for _ in range(60):
        world.step()
        history.append(total(world.energies()))
    # The first step's gravity-only history may add at most the kinetic energy of one step
    # of free fall (pinned neighbours never had it); after that nothing may be added.
    mass = world.shells.mass_np.sum()
    startup = 0.5 * mass * (9.81 * world.spec.settings.dt) ** 2
    assert max(history) <= start + startup
    assert max(history[1:]) <= history[0] + 1e-9 * startup
    assert history[-1] < start - 1e-3 * mass * 9.81 * 0.06  # BDF2 dissipates part of the swing


def test_runs_are_deterministic_and_state_round_trips():
    world = World(pushed_sheet(steps=6))
    for _ in range(3):
        world.step()
    saved = world.get_state()
    for _ in range(3):
        world.step()
    first = world.get_state()["shells"]["x"]
    world.set_state(saved)
    for _ in range(3):
        world.step()
    np.testing.assert_array_equal(world.get_state()["shells"]["x"], first)


def test_blow_up_names_step_entity_and_quantity_and_the_world_recovers():
    spec = pushed_sheet(steps=8)
    acts = spec.resolved_actions()
    acts[:, 0, 2] -= 0.02 * np.linspace(0, 1, 9)[1:]  # ram the ball through the sheet into the table
    tight = dataclasses.replace(spec.contact, max_penetration=1e-4)
    world = World(dataclasses.replace(spec, actions=acts, contact=tight))
    with pytest.raises(SimulationError) as err:
        for _ in range(8):
            world.step()
    assert err.value.entity == "sheet"
    assert err.value.quantity == "penetration"
    assert f"step {err.value.step}" in str(err.value)
    world.set_actions(spec.resolved_actions())
    world.reset()
    for _ in range(8):
        world.step()
    assert np.all(np.isfinite(world.get_state()["shells"]["x"]))


@pytest.mark.parametrize(
    "finger_friction, precision", [(1.0, "f64"), (0.0, "f64"), pytest.param(1.0, "f32", marks=pytest.mark.slow)]
)
def test_a_sheet_pinched_at_one_edge_is_lifted_by_friction_alone(finger_friction, precision):
    lift = 0.008
    spec = pinched_edge(finger_friction=finger_friction, lift=lift)
    spec = dataclasses.replace(spec, settings=dataclasses.replace(spec.settings, precision=precision))
    world = World(spec, RuntimeConfig(precision=precision))
    x0 = world.shells.x_init
    pinched = np.isclose(x0[:, 0], 0.02) & (np.abs(x0[:, 1]) < 0.005)  # the edge vertex between the fingers
    for _ in range(world.spec.settings.steps):
        world.step()
    x = world.get_state()["shells"]["x"]
    if finger_friction:  # sticking: the pinched edge rises with the fingers (less the creep of the smoothed law)
        assert x[pinched, 2].min() > 0.00026 + 0.9 * lift
        assert x[:, 2].mean() > 0.2 * lift  # and carries the sheet off the table
    else:  # the same pinch without friction holds nothing up
        assert x[:, 2].max() < 0.001


def test_fingers_pressing_cloth_into_the_table_gather_a_fold_and_lift_it():
    """The fingers land on cloth lying on the table (their undersides squeeze it against the
    table, the cloth drapes over their edges), close on it and rise: every step converges and
    the gathered cloth comes up with them."""
    lift = 0.02
    world = World(gathered_fold(n=7, steps=40, lift=lift))
    x0 = world.shells.x_init
    between = (np.abs(x0[:, 0]) < 0.015) & (np.abs(x0[:, 1]) < 0.0025)
    assert between.any()
    for _ in range(world.spec.settings.steps):
        world.step()
    x = world.get_state()["shells"]["x"]
    assert x[between, 2].min() > 0.9 * lift
    assert x[:, 2].mean() > 0.4 * lift


def test_penetration_checks_skip_the_fingers_that_carry_a_pad():
    """A finger carrying a pad holds its gel, and whatever the gel grips, inside its box
    (sim.pad_shell): a shell vertex there is neither a penetration nor a contact, while the
    same overlap with any other collider is both."""
    from sim.colliders import Colliders
    from sim.runtime import ensure_runtime
    from sim.shell.system import ShellSystem

    shell = sheet_spec(5, 0.04, 0.0)
    spec = WorldSpec(Settings(dt=1e-3, steps=1), shells=(shell,),
                     colliders=(ColliderSpec("gripper.left", "box", (0.003, 0.003, 0.01)),
                                ColliderSpec("block", "box", (0.003, 0.003, 0.01))))
    real = ensure_runtime(RuntimeConfig(backend="cpu", precision="f64")).real
    x = shell.vertices
    # each box swallows one corner vertex 3 mm deep: the finger the first, the block the last
    corners = [int(np.argmin(x[:, 0] + x[:, 1])), int(np.argmax(x[:, 0] + x[:, 1]))]
    poses = np.concatenate([x[corners] + (0.0, 0.0, 0.005), np.tile([1.0, 0.0, 0.0, 0.0], (2, 1))], axis=1)
    for untouched, inside in ((("gripper.left",), [corners[1]]), ((), corners), (("gripper.left", "block"), [])):
        colliders = Colliders(spec, real, untouched=untouched)
        shells = ShellSystem(spec, colliders, real)
        shells.reset()
        colliders.set_poses(poses, poses)
        assert shells.contact_count() == len(inside)
        if inside:
            with pytest.raises(SimulationError, match="inside a collider") as err:
                shells.check(0, max_penetration=1e-3, max_speed=10.0)
            assert f"vertex {inside[0]} " in str(err.value)
        else:
            shells.check(0, max_penetration=1e-3, max_speed=10.0)
