"""Shell-shell and self-contact: sheets do not pass through each other or themselves, crossing
edges hold each other up, and gradients through sticking and sliding friction between
sheets (faces and crossing edges) match finite differences."""

import dataclasses

import numpy as np

from sim.gradcheck import check_gradients
from sim.spec import ContactSettings
from sim.world import World
from tests.sim.scenes import crossed_strips, folded_strip, stacked_sheets


def _closest_approach(world, upper, lower_z) -> float:
    """The smallest height of the ``upper`` vertices above ``lower_z`` over the whole run."""
    closest = np.inf
    for _ in range(world.spec.settings.steps):
        world.step()
        x = world.get_state()["shells"]["x"]
        closest = min(closest, float(x[upper, 2].min() - lower_z(x)))
    return closest


def test_a_sheet_dropped_on_another_rests_on_it_instead_of_passing_through():
    gaps = {}
    for on in (True, False):
        world = World(stacked_sheets(steps=30, self_contact=on))
        gaps[on] = _closest_approach(world, slice(25, 50), lambda x: x[:25, 2].max())
    thickness = 2.6e-4
    assert gaps[True] > 0.5 * thickness  # held about a thickness above the lower sheet (mid-surface to mid-surface)
    assert gaps[False] < 0.05 * thickness  # the same drop without shell-shell contact falls through to the table


def test_a_folded_sheet_does_not_pass_through_itself():
    gaps = {}
    for on in (True, False):
        world = World(folded_strip(steps=60, self_contact=on))
        u = world.shells.x_init[:, 0]
        top = world.shells.x_init[:, 2] > 0.003  # the half turned back over the other
        gaps[on] = _closest_approach(world, top, lambda x: x[~top & (u < -0.005), 2].max())
    assert gaps[True] > 0.5 * 2.6e-4
    assert gaps[False] < 0.05 * 2.6e-4


def test_gradients_through_friction_between_sheets_match_finite_differences():
    spec = stacked_sheets(steps=3, gap=2.7e-4, ball=True, newton_tol=1e-11, newton_rtol=0.0, newton_ftol=0.0,
                          newton_accept=0.0, cg_tol=1e-8, adjoint_tol=1e-12, newton_max_iter=60)
    spec = dataclasses.replace(spec, contact=ContactSettings(friction_velocity=1e-2))
    world = World(spec)
    world.reset()
    for _ in range(spec.settings.steps):
        world.step()
    assert world.shells.npairs > 0  # the sheets touch
    results = check_gradients(world, ("actions", "youngs_modulus", "friction"))
    # the rollout is strongly curved along the initial pose: a shorter difference step keeps
    # the finite difference's truncation error below the tolerance
    results += check_gradients(world, ("initial_pose",), rel_step=1e-7)
    for r in results:
        assert abs(r.analytic) > 0, r.kind
        assert r.rel_error <= 1e-3, (r.kind, r.analytic, r.numeric)


def test_crossing_edges_hold_a_strip_up_where_no_vertex_is_over_a_face():
    lowest, kinds = {}, set()
    for on in (True, False):
        world = World(crossed_strips(steps=30, self_contact=on))
        world.reset()
        lowest[on] = np.inf
        for _ in range(30):
            world.step()
            lowest[on] = min(lowest[on], float(world.get_state()["shells"]["x"][4:, 2].min()))
            if on:
                kinds |= set(world.shells.skind.to_numpy()[: world.shells.npairs].tolist())
    assert kinds == {1}  # edge-edge pairs only: no vertex is near a face
    assert lowest[True] > 0.8 * 2.6e-4  # resting on the lower strip, a thickness above it
    assert lowest[False] < -0.01  # without shell-shell contact it falls through


def test_gradients_through_friction_between_crossing_edges_match_finite_differences():
    spec = crossed_strips(steps=3, gap=2.7e-4, slide=0.05, newton_tol=1e-11, newton_rtol=0.0, newton_ftol=0.0,
                          newton_accept=0.0, cg_tol=1e-8, adjoint_tol=1e-12, newton_max_iter=60)
    world = World(dataclasses.replace(spec, contact=ContactSettings(friction_velocity=1e-2)))
    world.reset()
    for _ in range(spec.settings.steps):
        world.step()
    assert world.shells.npairs > 0 and set(world.shells.skind.to_numpy()[: world.shells.npairs]) == {1}
    results = check_gradients(world, ("youngs_modulus", "friction")) + check_gradients(world, ("initial_pose",), rel_step=1e-7)
    for r in results:
        assert abs(r.analytic) > 0, r.kind
        assert r.rel_error <= 1e-3, (r.kind, r.analytic, r.numeric)


def test_a_steps_adjoint_reuses_its_forward_pairs_and_a_moved_start_searches_again(monkeypatch):
    world = World(stacked_sheets(steps=4, gap=2.7e-4))
    shells = world.shells
    searches = []
    search = shells._search_pairs
    monkeypatch.setattr(shells, "_search_pairs", lambda moved: searches.append(1) or search(moved))
    for _ in range(3):
        world.step()
    start = shells.get_state()
    world.step()
    assert len(searches) == 4
    found = shells.spair.to_numpy()[: shells.npairs].copy()
    assert len(found) > 0
    shells.set_state(start)  # what the adjoint of the last step does
    assert shells.find_pairs() == len(found) and len(searches) == 4
    np.testing.assert_array_equal(shells.spair.to_numpy()[: shells.npairs], found)
    moved = dict(start, x=start["x"] + 1e-9)
    shells.set_state(moved)
    shells.find_pairs()
    assert len(searches) == 5


def test_the_pair_set_memory_forgets_the_least_recently_used_beyond_its_size():
    from sim.shell.system import _LruBytes

    sets = _LruBytes(capacity=100)
    sets.put("a", 1, 40)
    sets.put("b", 2, 40)
    assert sets.get("a") == 1  # now the most recent
    sets.put("c", 3, 40)  # 120 bytes: "b" goes
    assert sets.get("b") is None and sets.get("a") == 1 and sets.get("c") == 3
    assert sets.size == 80
