"""Shells touching FEM pads (sim.pad_shell): a cloth hanging between two tactile pads is
lifted by the pads' friction alone once they close on it (and falls when they stay open),
stays between the deformed gels, and the pads feel it; gradients through the coupling
match central differences; the pads' contact points on a coarse shell are sampled finely
enough not to shorten the volumetric substep; the shells meet a pad where its finger
carries it over a step; a pinch between two pads runs the same every time."""

import dataclasses

import numpy as np
import pytest
from test_world_volumetric import FINGER, _pad

from sim import geometry
from sim.fem.solver import stable_dt
from sim.fem.spec import DEFAULT_CONTACT
from sim.pad_shell import sampling_level, shell_points
from sim.spec import ColliderSpec, Settings, ShellMaterial, ShellSpec, ToolSpec, WorldSpec

LIFT = 0.003
STEPS = 20


def hanging_cloth(close: bool) -> WorldSpec:
    """A 1.6 x 2.4 cm cloth hanging in the y-z plane with its top 4 mm inside the pads'
    1 cm square; the gripper closes on it over the first quarter (or stays open, 0.35 mm
    from each face), then rises by LIFT, under gravity."""
    v, t = geometry.sheet(7, 9, 0.016, 0.024)
    x = np.stack([np.zeros(len(v)), v[:, 0], v[:, 1]], 1)
    x[:, 2] += 0.004 - x[:, 2].max()
    cloth = ShellSpec("cloth", x, t, material=ShellMaterial(youngs_modulus=1e5, bending_stiffness=1e-6, damping=1.0,
                                                            friction=0.8))
    fingers = (ColliderSpec("gripper.left", "box", FINGER), ColliderSpec("gripper.right", "box", FINGER))
    tool = ToolSpec("gripper", "parallel_jaw", ("gripper.left", "gripper.right"), opening=0.0012, finger_half=FINGER)
    s = np.arange(1, STEPS + 1) / STEPS
    actions = np.zeros((STEPS, 1, 8))
    actions[:, 0, 3] = 1.0
    actions[:, 0, 7] = 0.0012 + (0.0003 - 0.0012) * np.clip(s / 0.25, 0, 1) * close
    actions[:, 0, 2] = LIFT * np.clip((s - 0.25) / 0.75, 0, 1)
    return WorldSpec(Settings(dt=1e-3, steps=STEPS), shells=(cloth,), colliders=fingers, tools=(tool,), actions=actions,
                     fem_bodies=(_pad("pad_left", 1.0), _pad("pad_right", -1.0)))


@pytest.mark.slow  # ~40 s: compiling the shell and volumetric kernels, then 2 x 20 coupled steps
def test_pads_lift_a_pinched_cloth_by_friction_alone_and_feel_it():
    from sim.world import World

    def run(close: bool):
        world = World(hanging_cloth(close))
        z0 = world.shells.get_state()["x"][:, 2].mean()
        felt = 0.0
        for _ in range(STEPS):
            world.step()
            felt = max(felt, np.abs(world.volumetric.node_forces()).sum())
        return world, world.shells.get_state()["x"][:, 2].mean() - z0, felt

    world, rise, felt = run(close=True)
    assert rise > 0.8 * LIFT, f"the pinched cloth rose {rise:.2e} m of the gripper's {LIFT} m"
    assert felt > 1e-3  # N: the pads' nodes carried the cloth's contact forces
    # the cloth stays between the two gels: at each cloth vertex's (y, z), the nearest gel
    # node of each pad lies on its own side (to within the contact radius)
    system, cloth = world.volumetric, world.shells.get_state()["x"]
    fx = system.state["fem_x"]
    inside = np.abs(cloth[:, 1:]).max(axis=1) < 0.004  # under the pads' faces
    for b, side in ((0, 1.0), (1, -1.0)):
        gel = fx[system.fem.offsets[b]:system.fem.offsets[b + 1]][system.fem_bodies[b].mesh.gel_nodes]
        near = np.argmin(((cloth[inside, None, 1:] - gel[None, :, 1:]) ** 2).sum(-1), axis=1)
        beyond = side * (cloth[inside, 0] - gel[near, 0])  # > 0: the cloth vertex is inside pad b
        assert beyond.max() < 2.5e-4, f"a cloth vertex is {beyond.max():.2e} m inside pad {b}"

    _, fall, _ = run(close=False)
    free_fall = 0.5 * 9.81 * (STEPS * 1e-3) ** 2
    assert fall < -0.8 * free_fall, f"with the pads open the cloth moved {fall:.2e} m (free fall {free_fall:.2e} m)"


def test_gradients_through_the_pads_match_central_differences():
    """The cloth's final positions differentiated through both halves of the coupling: the
    gripper's moves and the pads' modulus reach the cloth only through the gels (pad
    rotations are not differentiated in the volumetric system, so the moves are
    translations and the opening)."""
    import dataclasses

    from sim.gradcheck import check_gradients, directional_check, random_linear_loss
    from sim.rollout import rollout
    from sim.world import World

    spec = hanging_cloth(close=True)
    steps = 3
    actions = spec.actions[:steps].copy()
    actions[:, 0, 7] = 0.0004  # closed on the cloth from the start (0.05 mm into it a side)
    actions[:, 0, 2] = np.linspace(0, 3e-4, steps + 1)[1:]
    settings = dataclasses.replace(spec.settings, steps=steps, newton_tol=1e-12, newton_rtol=0.0, newton_ftol=0.0,
                                   newton_accept=0.0, cg_tol=1e-10, adjoint_tol=1e-12, newton_max_iter=80)
    tool = dataclasses.replace(spec.tools[0], opening=0.0004)
    world = World(dataclasses.replace(spec, settings=settings, actions=actions, tools=(tool,)))
    loss = random_linear_loss((1, world.shells.nv, 3), 0)

    def evaluate(acts):
        run = rollout(world, acts, None, [steps])
        return run, loss(run.observed)

    run, (value, dobs) = evaluate(actions)
    grads = run.backward(dobs)
    d = np.zeros_like(actions)
    d[:, 0, [0, 1, 2, 7]] = np.random.default_rng(0).normal(size=(steps, 4))
    # central differences need steps well inside friction's regularisation: moves of 1e-8 m
    # (1e-6 m, as much as the shells' 1e-3 m/s x 1 ms, gave 2%)
    moves = directional_check("actions", grads.actions, d, 1e-8, lambda o: evaluate(actions + o)[1][0], value)
    results = [moves, *check_gradients(world, ("youngs_modulus", "fem_youngs_modulus"))]
    for r in results:
        assert abs(r.analytic) > 0, r
        assert r.rel_error <= 1e-3, r


def _two_sheets():
    v, t = geometry.sheet(4, 3, 0.03, 0.02)
    v = v + np.random.default_rng(1).normal(scale=1e-3, size=v.shape)  # uneven triangles
    return (ShellSpec("a", v, t, ShellMaterial(density=300.0, thickness=5e-4)),
            ShellSpec("b", v + (0, 0, 0.01), t[:, ::-1], ShellMaterial(density=800.0, thickness=1e-4)))


@pytest.mark.parametrize("level", [1, 2, 3, 5])
def test_shell_contact_points_cover_each_triangle_evenly_and_follow_its_vertices(level):
    sheets = _two_sheets()
    pts = shell_points(sheets, level)
    w = pts["weights"].toarray()
    verts = np.concatenate([s.vertices for s in sheets])
    nv = len(sheets[0].vertices)
    assert np.all(w >= 0) and np.allclose(w.sum(1), 1.0)
    np.testing.assert_allclose(pts["x"], w @ verts)
    for i, s in enumerate(sheets):  # each sheet's points: its own vertices, area, mass and radius
        mine = pts["shell"] == i
        cols = slice(i * nv, (i + 1) * nv)
        assert np.all(w[mine][:, cols].sum(1) == pytest.approx(1.0))
        assert pts["area"][mine].sum() == pytest.approx(geometry.triangle_areas(s.vertices, s.triangles).sum())
        np.testing.assert_allclose(pts["mass"][mine], pts["area"][mine] * s.material.density * s.material.thickness)
        np.testing.assert_allclose(pts["radius"][mine], s.material.thickness / 2)
    if level == 1:  # the vertices themselves
        np.testing.assert_array_equal(w, np.eye(len(verts)))
        return
    # level^2 points per triangle, inside it, with the triangle's centroid as their mean
    tris = sheets[0].triangles
    per = pts["x"][: len(tris) * level**2].reshape(len(tris), level**2, 3)
    np.testing.assert_allclose(per.mean(1), sheets[0].vertices[tris].mean(1), atol=1e-12)
    bary = w[: level**2][:, tris[0]]
    assert np.all(bary > 0) and len(np.unique(bary.round(12), axis=0)) == level**2


def test_a_coarse_cloth_on_a_pad_is_sampled_finely_enough_not_to_shorten_the_substep():
    """A cloth whose vertices each cover ~1 cm^2 would load single gel nodes with that
    whole area's contact spring and cut the pad's explicit substep several times; its
    points are split until the substep is within 10% of the pad's own."""
    v, t = geometry.sheet(5, 5, 0.04, 0.04)
    cloth = (ShellSpec("cloth", v, t, ShellMaterial()),)
    pads = [_pad("pad_left", 1.0)]
    limit = lambda area: stable_dt(pads, DEFAULT_CONTACT, area)  # noqa: E731
    assert limit(shell_points(cloth, 1)["area"].max()) < 0.3 * limit(0.0)
    level = sampling_level(cloth, limit)
    assert limit(shell_points(cloth, level)["area"].max()) >= 0.9 * limit(0.0)
    assert limit(shell_points(cloth, level - 1)["area"].max()) < 0.9 * limit(0.0)


def test_a_pads_surface_is_carried_over_a_step_by_its_mean_velocity_and_a_free_bodys_by_its_own():
    """The shells meet the FEM surfaces where they are predicted to end a step: a pad glued
    to its finger by the mean of its nodes' velocities (its mass-scaled gel rings far faster
    than the finger moves), a free soft body node by node; the adjoint is that map's transpose."""
    from types import SimpleNamespace

    from sim.pad_shell import PadShellCoupling, surfaces

    pad = _pad("pad_left", 1.0)
    block = dataclasses.replace(_pad("block", -1.0), mount=None)
    nodes, _ = surfaces((pad, block))
    coupling = PadShellCoupling(SimpleNamespace(dt=1e-3), SimpleNamespace(fem_bodies=(pad, block)), nodes)
    rng = np.random.default_rng(0)
    n_pad, n = len(pad.mesh.nodes), len(pad.mesh.nodes) + len(block.mesh.nodes)
    state = {"fem_x": rng.normal(size=(n, 3)), "fem_v": rng.normal(scale=5.0, size=(n, 3))}  # ringing nodes
    state["fem_v"][:n_pad] += (0.0, 0.0, -1.0)  # the finger moves down at 1 m/s
    start, end = coupling.obstacles(state)
    on_pad = nodes < n_pad
    np.testing.assert_array_equal(start, state["fem_x"][nodes])
    np.testing.assert_allclose(end[on_pad] - start[on_pad], 1e-3 * state["fem_v"][:n_pad].mean(axis=0)[None].repeat(on_pad.sum(), 0))
    np.testing.assert_allclose(end[~on_pad] - start[~on_pad], 1e-3 * state["fem_v"][nodes[~on_pad]])

    zero = {"fem_x": np.zeros((n, 3)), "fem_v": np.zeros((n, 3))}
    g_start, g_end = rng.normal(size=start.shape), rng.normal(size=end.shape)
    adj = coupling.obstacle_adjoint(zero, g_start, g_end)
    dx, dv = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    moved = coupling.obstacles({"fem_x": state["fem_x"] + dx, "fem_v": state["fem_v"] + dv})
    change = sum(float(np.vdot(g, m - b)) for g, m, b in zip((g_start, g_end), moved, (start, end)))
    assert change == pytest.approx(float(np.vdot(adj["fem_x"], dx) + np.vdot(adj["fem_v"], dv)), rel=1e-12)


def test_a_cloth_pinched_between_two_pads_runs_the_same_every_time():
    """Deterministic on the CPU with the coupling's contact pairs in play (their forces once
    summed in thread order: two runs drifted apart from the fourth step)."""
    from sim.world import World

    world = World(hanging_cloth(close=True))
    runs = []
    for _ in range(2):
        world.reset()
        for _ in range(10):
            world.step()
        state = world.get_state()
        runs.append((state["shells"]["x"], state["volumetric"]["fem_x"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
