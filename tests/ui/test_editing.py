"""Editing through the window: inspector fields of every kind, refusals with their reason,
the palette, duplicate and delete, keyframes on the timeline; every step undoable."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from app.scene.io import scene_to_text
from studio_helpers import image_difference, save_screenshot, settle
from test_main_flow import drag_gizmo_arrow, type_into

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture
def window(open_window):
    return open_window()


def index_of(window, name: str) -> int:
    return [e.name for e in window.scene.entities].index(name)


def test_inspector_edits_tuples_choices_and_refuses_with_reasons(window, qtbot):
    original = scene_to_text(window.scene)
    gripper = index_of(window, "gripper")
    window.select_entity("gripper")
    settle(qtbot)
    rows = window.inspector.rows

    type_into(qtbot, rows[("entities", gripper, "transform", "position")].editor, "0.1, 0.2, 0.3")
    assert window.scene.entities[gripper].transform.position == (0.1, 0.2, 0.3)

    opening = window.scene.entities[gripper].opening
    type_into(qtbot, window.inspector.rows[("entities", gripper, "opening")].editor, "0.5")
    row = window.inspector.rows[("entities", gripper, "opening")]
    assert window.scene.entities[gripper].opening == opening
    assert "outside opening_range" in row.error.text() and not row.error.isHidden()

    type_into(qtbot, window.inspector.rows[("entities", gripper, "name")].editor, "cloth")
    assert window.scene.entities[gripper].name == "gripper"
    assert "duplicate" in window.inspector.rows[("entities", gripper, "name")].error.text()

    type_into(qtbot, window.inspector.rows[("entities", gripper, "finger_size")].editor, "0.02, abc")
    assert "finger_size" in window.inspector.rows[("entities", gripper, "finger_size")].error.text()
    save_screenshot(window.inspector, "inspector_refused_value")

    sensor = ("entities", gripper, "sensors", 0, "pad")
    combo = window.inspector.rows[sensor].editor
    combo.setCurrentText("dome")
    settle(qtbot)
    assert window.scene.entities[gripper].sensors[0].pad == "dome"

    assert window.stack.texts() == ["set entities.%d.transform.position" % gripper, f"set {'.'.join(map(str, sensor))}"]
    while window.stack.can_undo:
        window.undo()
    assert scene_to_text(window.scene) == original


def test_material_kind_switch_keeps_shared_settings(window, qtbot):
    block = index_of(window, "soft_block")
    window.select_entity("soft_block")
    settle(qtbot)
    kind = window.inspector.rows[("entities", block, "material", "kind")].editor
    kind.setCurrentText("mpm_elastic")
    settle(qtbot)
    material = window.scene.entities[block].material
    assert material.kind == "mpm_elastic" and material.youngs_modulus == 5e4 and material.density == 1100.0
    assert window.viewport._parts["soft_block"][0].role == "particles"
    window.undo()
    assert window.scene.entities[block].material.kind == "fem_elastic"


def test_palette_duplicate_delete_and_undo(window, qtbot):
    count = len(window.scene.entities)
    before = window.viewport.screenshot()
    window.docks["palette"].raise_()
    qtbot.mouseClick(window.palette.buttons["Fluid volume (MPM)"], LEFT)
    settle(qtbot)
    assert window.scene.entities[-1].name == "fluid" and window.scene.entities[-1].material.kind == "mpm_fluid"
    assert window.viewport.selected == "fluid"
    save_screenshot(window.palette, "palette")

    window.actions_by_name["duplicate"].trigger()
    settle(qtbot)
    assert [e.name for e in window.scene.entities][-2:] == ["fluid", "fluid_copy"]
    window.actions_by_name["delete"].trigger()
    settle(qtbot)
    assert [e.name for e in window.scene.entities][-1] == "fluid"
    assert image_difference(before, window.viewport.screenshot()) > 0.0005

    for _ in range(3):
        window.undo()
    assert len(window.scene.entities) == count
    window.actions_by_name["redo"].trigger()
    assert window.scene.entities[-1].name == "fluid"
    assert window.history.count() == 4 and window.history.currentRow() == 1
    window.history.jump_requested.emit(3)  # click in the history: redo up to there
    assert [e.name for e in window.scene.entities][-1] == "fluid"
    assert window.stack.index == 3
    save_screenshot(window.history, "undo_history")


def test_keyframes_on_the_timeline(window, qtbot):
    strip = window.timeline.keys
    times = [k.time for k in window.scene.trajectory.keyframes]
    window.docks["timeline"].raise_()
    settle(qtbot)

    # drag the third keyframe later in time with the mouse: one undo step
    x = int(strip.x_of(times[2]))
    y = strip.height() // 2
    drag = int((strip.x_of(times[3]) - x) / 2)  # halfway to the next keyframe
    assert drag >= 10
    qtbot.mousePress(strip, LEFT, pos=QtCore.QPoint(x, y))
    for dx in [*range(2, drag, 2), drag]:
        qtbot.mouseMove(strip, QtCore.QPoint(x + dx, y))
    qtbot.mouseRelease(strip, LEFT, pos=QtCore.QPoint(x + drag, y))
    settle(qtbot)
    moved = window.scene.trajectory.keyframes[2].time
    assert times[2] < moved < times[3]
    np.testing.assert_allclose(moved, strip.time_of(x + drag), atol=strip.time_of(x + 1) - strip.time_of(x))  # a pixel

    # past its neighbour is refused (times must increase), the reason is shown
    window.move_keyframe(2, times[3] + 0.05)
    assert window.scene.trajectory.keyframes[2].time == moved
    assert "not applied" in window.statusBar().currentMessage()

    # add one at a time between two keys (its pose interpolated between them), then delete it
    before = window.scene.trajectory.keyframes
    i = len(before) - 1
    t = 0.5 * (before[i - 1].time + before[i].time)
    window.add_keyframe_at(t)
    keys = window.scene.trajectory.keyframes
    assert keys[i].time == t and len(keys) == len(before) + 1
    np.testing.assert_allclose(keys[i].position, 0.5 * (np.array(before[i - 1].position) + before[i].position), atol=1e-9)
    strip.selected = i
    qtbot.mouseClick(window.timeline.delete_key_button, LEFT)
    assert len(window.scene.trajectory.keyframes) == len(before)
    save_screenshot(window.timeline, "timeline_keyframes")
    window.undo()
    window.undo()
    window.undo()
    assert [k.time for k in window.scene.trajectory.keyframes] == times


def test_drag_a_keyframe_tool_target_in_the_viewport(window, qtbot):
    viewport = window.viewport
    key = window.scene.trajectory.keyframes[0]
    x, y = viewport.world_to_display(key.position)
    qtbot.mouseClick(viewport._plotter.interactor, LEFT, pos=QtCore.QPoint(x, y))
    settle(qtbot)
    assert window.outliner.current_path() == ("trajectory", "keyframes", 0)
    assert ("trajectory", "keyframes", 0, "position") in window.inspector.rows

    drag_gizmo_arrow(qtbot, window, axis=2, dx=0, dy=-150)  # the z arrow, upwards on screen
    moved = window.scene.trajectory.keyframes[0]
    assert moved.position[2] > key.position[2] + 0.005
    np.testing.assert_allclose(moved.position[:2], key.position[:2], atol=1e-9)
    assert moved.time == key.time and moved.opening == key.opening
    assert window.stack.texts() == ["edit keyframe 0"]
    save_screenshot(window, "keyframe_dragged")
    window.undo()
    assert window.scene.trajectory.keyframes[0].position == key.position
