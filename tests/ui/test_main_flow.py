"""A new user's first session, driven through the real window in the virtual X server:
open the default scene, click the cloth, change its bending stiffness, undo and redo, move
an object with the gizmo, optimize briefly, scrub the timeline, save, reopen, and check the
document and the picture at each step. Screenshots of every panel go to artifacts/."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.scene.io import load_scene, scene_to_text
from studio_helpers import image_difference, save_screenshot, settle, show_panel, wait_until

LEFT = QtCore.Qt.MouseButton.LeftButton
NONE = QtCore.Qt.MouseButton.NoButton
E = QtCore.QEvent.Type


def send_mouse(widget, kind, x, y, button=NONE, buttons=NONE):
    """A real Qt mouse event at widget pixel (x, y) (QTest.mouseMove does not reach VTK)."""
    pos = QtCore.QPointF(x, y)
    event = QtGui.QMouseEvent(kind, pos, QtCore.QPointF(widget.mapToGlobal(pos)), button, buttons,
                              QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(widget, event)


def click_entity(qtbot, window, name, offset=(0.0, 0.0, 0.0)):
    """Click the entity at its centre moved by ``offset`` (m), e.g. to avoid a handle in front."""
    viewport = window.viewport
    x, y = viewport.world_to_display(np.asarray(viewport.entity_center(name)) + offset)
    qtbot.mouseClick(viewport._plotter.interactor, LEFT, pos=QtCore.QPoint(x, y))
    settle(qtbot)


def type_into(qtbot, editor: QtWidgets.QLineEdit, text: str) -> None:
    editor.setFocus()
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, QtCore.Qt.Key.Key_Return)
    settle(qtbot)


def inspector_editor(window, path) -> QtWidgets.QWidget:
    return window.inspector.rows[path].editor


def _on_actor(viewport, pixel, actor) -> tuple[int, int]:
    """The pixel nearest ``pixel`` where ``actor`` is drawn, as a user aims at what they see:
    the arrow's shaft is a pixel or two wide, and the projected point can land beside it."""
    iren = viewport._plotter.iren.interactor
    picker, height = iren.GetPicker(), viewport._plotter.interactor.height()
    ratio = viewport._plotter.interactor.devicePixelRatioF()
    x, y = pixel
    for dx, dy in sorted(((i, j) for i in range(-4, 5) for j in range(-4, 5)), key=lambda d: d[0] ** 2 + d[1] ** 2):
        # VTK counts device pixels, rows from the bottom
        picker.Pick(round((x + dx) * ratio), round((height - 1 - (y + dy)) * ratio), 0, viewport._plotter.renderer)
        if picker.GetActor() is actor:
            return x + dx, y + dy
    raise AssertionError(f"nothing of the gizmo's arrow is drawn within 4 px of {pixel}")


def drag_gizmo_arrow(qtbot, window, axis: int, dx: int, dy: int) -> None:
    viewport = window.viewport
    widget = viewport._plotter.interactor
    x, y = _on_actor(viewport, viewport.world_to_display(viewport.gizmo_handle(axis)), viewport._gizmo._arrows[axis])
    send_mouse(widget, E.MouseMove, x, y)  # hover highlights the arrow
    send_mouse(widget, E.MouseButtonPress, x, y, LEFT, LEFT)
    for k in range(1, 11):
        send_mouse(widget, E.MouseMove, x + dx * k // 10, y + dy * k // 10, NONE, LEFT)
    send_mouse(widget, E.MouseButtonRelease, x + dx, y + dy, LEFT, NONE)
    settle(qtbot)


def screenshot_panels(qtbot, window, prefix: str) -> None:
    save_screenshot(window, f"{prefix}window")
    for key, dock in window.docks.items():
        dock.show()
        show_panel(qtbot, window, key)
        save_screenshot(dock, f"{prefix}{key}")


def test_new_user_main_flow(qtbot, open_window, prompts, tmp_path):
    window = open_window()
    scene = window.scene
    assert scene.name == "default" and window.path.name == "default.yaml"
    first = window.viewport.screenshot()
    assert first.std() > 10 and len(np.unique(first.reshape(-1, 3), axis=0)) > 200, "viewport looks blank"

    # click the cloth in the viewport: selected there, in the outliner and the inspector
    cloth = [e.name for e in scene.entities].index("cloth")
    # a point in the cloth's near quarter: the lift keyframe's handle hides its centre
    click_entity(qtbot, window, "cloth", offset=(-0.1, -0.12, 0.0))
    assert window.viewport.selected == "cloth"
    assert window.outliner.current_path() == ("entities", cloth)
    stiffness = ("entities", cloth, "material", "bending_stiffness")
    wait_until(qtbot, lambda: stiffness in window.inspector.rows, 5, "the inspector to show the cloth")
    selected = window.viewport.screenshot()
    assert image_difference(first, selected) > 0.001, "selection highlight not visible"

    # change its bending stiffness; a refused value shows why and changes nothing
    type_into(qtbot, inspector_editor(window, stiffness), "-1")
    assert window.scene.entities[cloth].material.bending_stiffness == 1e-4
    assert "greater than or equal to 0" in window.inspector.rows[stiffness].error.text()
    assert window.stack.texts() == []
    type_into(qtbot, inspector_editor(window, stiffness), "5e-4")
    assert window.scene.entities[cloth].material.bending_stiffness == 5e-4
    assert window.isWindowModified()
    assert window.history.count() == 2  # "(opened)" and the edit

    # undo and redo with the keyboard
    window.viewport.setFocus()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    settle(qtbot)
    assert window.scene.entities[cloth].material.bending_stiffness == 1e-4
    assert not window.isWindowModified()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Z,
                   QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier)
    settle(qtbot)
    assert window.scene.entities[cloth].material.bending_stiffness == 5e-4

    # move the mug with the gizmo: one undo step, the picture changes
    mug = [e.name for e in scene.entities].index("mug")
    window.outliner.select_path(("entities", mug))
    settle(qtbot)
    assert window.viewport.selected == "mug"
    before_move = window.viewport.screenshot()
    start = np.array(window.scene.entities[mug].transform.position)
    drag_gizmo_arrow(qtbot, window, axis=0, dx=80, dy=40)
    moved = np.array(window.scene.entities[mug].transform.position)
    assert abs(moved[0] - start[0]) > 0.005, f"the gizmo did not move the mug ({start} -> {moved})"
    np.testing.assert_allclose(moved[1:], start[1:], atol=1e-9)  # the x arrow moves along x only
    assert window.stack.texts()[-1] == "move mug"
    assert image_difference(before_move, window.viewport.screenshot()) > 0.001

    # a short optimization to its end: the reach task with no early stop, 5 iterations
    show_panel(qtbot, window, "optimize")
    task_form = window.optimize_panel.settings
    type_into(qtbot, task_form.rows[("task", "kind")].editor, "reach")
    type_into(qtbot, task_form.rows[("task", "success_threshold")].editor, "0")
    type_into(qtbot, task_form.rows[("task", "optimizer", "iterations")].editor, "5")
    assert window.scene.task.kind == "reach" and window.scene.task.optimizer.iterations == 5
    # the task registry is asked on the simulation thread: wait for its answer
    wait_until(qtbot, window.optimize_panel.start_button.isEnabled, 60, "the reach task to be available")
    qtbot.mouseClick(window.optimize_panel.start_button, LEFT)
    wait_until(qtbot, lambda: window.run is not None, 120, "the optimization preview")
    rows = window.optimize_panel.rows
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[-1]["best_loss"] <= rows[0]["loss"]
    assert "finished" in window.optimize_panel.status.text()
    assert window.optimize_panel.loss_curve.getData()[0].tolist() == [1, 2, 3, 4, 5]
    screenshot_panels(qtbot, window, "flow_")

    # scrub the cached run: the tool moves in the picture, no re-simulation
    run = window.run
    assert run.kind == "optimization preview" and len(run) == window.scene.simulation.horizon + 1
    window.docks["timeline"].raise_()
    window.timeline.seek(0)
    settle(qtbot)
    at_start = window.viewport.screenshot()
    window.timeline.slider.setValue(len(run) - 1)
    settle(qtbot)
    assert "frame" in window.timeline.time_label.text()
    np.testing.assert_allclose(window.timeline.current_time(), run[len(run) - 1].time)
    travel = np.linalg.norm(run[len(run) - 1].tool_position - run[0].tool_position)
    assert travel > 0.005
    assert image_difference(at_start, window.viewport.screenshot()) > 1e-4, "scrubbing did not move the tool"
    save_screenshot(window, "flow_scrubbed")

    # save (the built-in default is never overwritten: Save asks for a new file), then reopen
    target = tmp_path / "my_scene.yaml"
    prompts.paths.append(str(target))
    qtbot.keyClick(window, QtCore.Qt.Key.Key_S, QtCore.Qt.KeyboardModifier.ControlModifier)
    settle(qtbot)
    assert target.is_file() and window.path == target and not window.isWindowModified()
    saved = load_scene(target)
    assert saved.entities[cloth].material.bending_stiffness == 5e-4
    np.testing.assert_allclose(saved.entities[mug].transform.position, moved)
    window.set_run(None)
    window.select_path(())
    settle(qtbot)
    edited_picture = window.viewport.screenshot()

    reopened = open_window(target)
    assert scene_to_text(reopened.scene) == scene_to_text(window.scene)
    assert reopened.recent.list()[0] == target
    reopened.viewport.camera = window.viewport.camera  # fit-to-view differs a little: the mug moved
    again = reopened.viewport.screenshot()
    save_screenshot(window.viewport, "flow_edited_viewport")
    save_screenshot(reopened.viewport, "flow_reopened_viewport")
    assert again.shape == edited_picture.shape
    assert image_difference(again, edited_picture) < 0.01, "the reopened scene does not look the same"
    assert image_difference(again, first) > 0.001, "the saved edits are not visible"
