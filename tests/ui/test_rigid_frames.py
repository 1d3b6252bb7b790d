"""A simulated dynamic rigid body in the viewport: after Simulate on the shipped rigid_drop
scene, scrubbing the timeline draws the box as its primitive at each frame's simulated pose,
and clearing the run puts it back where the document has it."""

from __future__ import annotations

import numpy as np

from app.commands import SetField
from app.scene.paths import assets_root
from studio_helpers import settle, wait_until

RIGID_DROP = assets_root() / "scenes" / "rigid_drop.yaml"
STEPS = 8  # 40 ms of free fall: the box drops 7.8 mm, still above the table


def test_scrubbing_moves_the_rigid_box_with_its_simulated_pose(open_window, qtbot):
    window = open_window(RIGID_DROP)
    window.push(SetField(("simulation", "horizon"), STEPS))
    viewport = window.viewport
    (part,), (actor,) = viewport._parts["crate"], viewport._actors["crate"]
    assert part.role == "solid"
    rest_points, rest_bounds = part.mesh.points.copy(), np.array(actor.GetBounds())

    window.actions_by_name["simulate"].trigger()
    wait_until(qtbot, lambda: window.run is not None, 300, "the simulation (kernels compile on a cold cache)")
    run = window.run
    assert len(run) == STEPS + 1
    drop = run[0].entities["crate"].pose[2, 3] - run[STEPS].entities["crate"].pose[2, 3]
    assert drop > 5e-3, "the box did not fall: nothing to check"
    for index in (STEPS, 3, 0):
        window.timeline.seek(index)
        settle(qtbot)
        pose = run[index].entities["crate"].pose
        # the document's box (its points unchanged), moved rigidly to the simulated pose
        np.testing.assert_array_equal(part.mesh.points, rest_points)
        bounds = np.array(actor.GetBounds())
        centre = 0.5 * (bounds[::2] + bounds[1::2])
        np.testing.assert_allclose(centre, pose[:3, 3], atol=1e-6)
        np.testing.assert_allclose(bounds[1::2] - bounds[::2], rest_bounds[1::2] - rest_bounds[::2], atol=1e-6)

    window.set_run(None)
    settle(qtbot)
    np.testing.assert_allclose(actor.GetBounds(), rest_bounds, atol=1e-9)
