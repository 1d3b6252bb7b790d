"""Simulated volumetric bodies in the viewport: after Simulate, scrubbing the timeline draws
the FEM pads, the FEM soft block and the MPM particles at their simulated points, frame by
frame, coloured by their fields, and the tactile panel shows the pads' simulated readings;
clearing the run puts the document's geometry back."""

from __future__ import annotations

import numpy as np
import pytest

from app.commands import SetField
from app.scene.paths import assets_root
from studio_helpers import image_difference, save_screenshot, settle, show_panel, wait_until
from ui.palette import ITEMS

TACTILE_PRESS = assets_root() / "scenes" / "tactile_press.yaml"
STEPS = 2  # a couple of steps: the gripper closes and the dough falls, enough to move every body


def part_and_actor(viewport, entity, sensor=None):
    pairs = zip(viewport._parts[entity], viewport._actors[entity])
    return next((p, a) for p, a in pairs if p.sensor == sensor)


def test_scrubbing_draws_simulated_pads_soft_body_and_particles(open_window, qtbot):
    window = open_window(TACTILE_PRESS)
    window.push(SetField(("simulation", "horizon"), STEPS))
    window.add_from_palette(next(item for item in ITEMS if item.base_name == "dough"))
    dough = window.scene.entities[-1].name
    window.set_field(("entities", len(window.scene.entities) - 1, "transform", "position"), (0.12, 0.0, 0.06))
    window.viewport.camera_preset("front")
    settle(qtbot)
    viewport = window.viewport
    rest_dough = viewport._parts[dough][0].mesh.points.copy()
    rest_block_points = viewport._parts["block"][0].mesh.n_points
    rest_picture = viewport.screenshot()

    window.actions_by_name["simulate"].trigger()
    wait_until(qtbot, lambda: window.run is not None, 500, "the simulation (kernels compile on a cold cache)")
    run = window.run
    assert len(run) == STEPS + 1
    first, last = run[0].entities, run[len(run) - 1].entities
    for name in ("block", "pad_flat", "pad_dome", dough):
        assert not np.allclose(first[name].points, last[name].points), f"{name} did not move: nothing to check"
    # the dough falls freely: its particles drop g t^2 / 2
    drop = first[dough].points[:, 2].mean() - last[dough].points[:, 2].mean()
    assert abs(drop - 9.81 * run.times[-1] ** 2 / 2) < 0.1 * 9.81 * run.times[-1] ** 2 / 2

    block, block_actor = part_and_actor(viewport, "block")
    pad, pad_actor = part_and_actor(viewport, "gripper", "pad_flat")
    particles, particles_actor = part_and_actor(viewport, dough)
    finger, finger_actor = next((p, a) for p, a in zip(viewport._parts["gripper"], viewport._actors["gripper"])
                                if p.role == "solid" and p.slide == 1)
    rest_opening = window.scene.entity("gripper").opening
    pictures = []
    for index in (len(run) - 1, 1, 0):
        window.timeline.seek(index)
        settle(qtbot)
        frame = run[index].entities
        # the FEM block: its simulated surface, every triangle of it
        np.testing.assert_array_equal(block.mesh.points, frame["block"].points)
        assert block.mesh.n_cells == len(frame["block"].faces)
        # the pad: simulated nodes in world coordinates (not moved again with the finger), its field drawn
        np.testing.assert_array_equal(pad.mesh.points, frame["pad_flat"].points)
        np.testing.assert_array_equal(pad.mesh.point_data["displacement"], frame["pad_flat"].fields["displacement"])
        np.testing.assert_array_equal(pad_actor.user_matrix, np.eye(4))
        # the fingers close with the run's opening; the left pad's gel stays on the left finger's inner face
        opening = run[index].entities["gripper"].opening
        assert finger_actor.user_matrix[0, 3] == pytest.approx((opening - rest_opening) / 2)
        assert pad.mesh.points[:, 0].min() == pytest.approx(opening / 2, abs=2e-4)
        # the particles, coloured by speed on the run's scale
        np.testing.assert_array_equal(particles.mesh.points, frame[dough].points)
        speed = np.linalg.norm(frame[dough].fields["velocity"], axis=1)
        np.testing.assert_allclose(particles.mesh.point_data["speed"], speed)
        assert particles_actor.mapper.GetScalarVisibility() and particles_actor.mapper.GetArrayName() == "speed"
        assert sorted(viewport.colour_scales) == ["pad displacement [m]", "particle speed [m/s]"]
        pictures.append(viewport.screenshot())
    top_speed = max(np.linalg.norm(run[i].entities[dough].fields["velocity"], axis=1).max() for i in range(len(run)))
    assert particles_actor.mapper.GetScalarRange() == (0.0, top_speed)
    window.select_entity("")
    viewport.camera = ((0.12, -0.2, 0.13), (0.05, 0.0, 0.04), (0.0, 0.0, 1.0))  # close up on pads, block and dough
    save_screenshot(window, "simulated_pads_block_particles")
    assert image_difference(rest_picture, pictures[-1]) > 1e-3  # particles coloured by speed, not the body colour

    # the tactile panel reads the simulated pads too, following the timeline
    tactile = window.tactile_panel
    show_panel(qtbot, window, "tactile")
    tactile.pad_box.setCurrentText("pad_flat")
    window.timeline.seek(len(run) - 1)
    settle(qtbot)
    reading = run[len(run) - 1].tactile["pad_flat"]
    np.testing.assert_array_equal(tactile.image_item.image, np.swapaxes(reading.image, 0, 1))
    np.testing.assert_array_equal(tactile.normal_curve.getData()[1], [f.tactile["pad_flat"].normal_force for f in run])
    save_screenshot(window.docks["tactile"], "simulated_tactile_pad_flat")

    # the pads coloured by another field: the frame's own values, at once
    window.actions_by_name["pad_pressure"].trigger()
    np.testing.assert_array_equal(pad.mesh.point_data["pressure"], last["pad_flat"].fields["pressure"])
    assert pad_actor.mapper.GetArrayName() == "pressure"
    assert sorted(viewport.colour_scales) == ["pad pressure [Pa]", "particle speed [m/s]"]

    # no run: the document's own geometry and colours again
    window.set_run(None)
    settle(qtbot)
    np.testing.assert_array_equal(particles.mesh.points, rest_dough)
    assert block.mesh.n_points == rest_block_points
    assert not particles_actor.mapper.GetScalarVisibility()
    assert viewport.colour_scales == []
