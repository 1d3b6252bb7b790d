"""The window around the viewport: menus and shortcuts, remembered layout, the unsaved
marker and the prompt on close, recent files, crash recovery."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pyvista as pv
from PySide6 import QtCore, QtGui

from app.commands import SetField
from app.scene.paths import default_scene_path
from app.services.user_files import Autosave
from studio_helpers import copy_scene, save_screenshot, settle
from ui.viewport import CAMERA_PRESETS

FREQUENT = ("open", "save", "save_as", "undo", "redo", "duplicate", "delete", "fit", "simulate", "play",
            "step", "add_key", "optimize", "stop_optimize", "stop_motion", "screenshot")


def menu_actions(window) -> set:
    found = set()
    pending = [a.menu() for a in window.menuBar().actions()]
    while pending:
        menu = pending.pop()
        for action in menu.actions():
            if action.menu() is not None:
                pending.append(action.menu())
            found.add(action)
    return found


def test_every_action_is_in_a_menu_with_its_shortcut(open_window):
    window = open_window()
    in_menus = menu_actions(window)
    for name, action in window.actions_by_name.items():
        assert action in in_menus, f"{name} has no menu entry"
    for name in FREQUENT:
        assert not window.actions_by_name[name].shortcut().isEmpty(), f"{name} has no shortcut"
    assert window.actions_by_name["stop_motion"].shortcut() == QtGui.QKeySequence(QtCore.Qt.Key.Key_Escape)
    # the palette is in the Edit > Add menu too
    labels = {a.text() for a in in_menus}
    assert {"Cloth sheet", "Fluid volume (MPM)", "Robot from URDF…"} <= labels


def test_layout_and_view_options_are_remembered(open_window, qtbot):
    window = open_window()
    window.docks["tactile"].hide()
    window.docks["history"].setFloating(True)
    window.actions_by_name["grid"].trigger()  # grid off
    assert not window.actions_by_name["grid"].isChecked()
    window.close()

    again = open_window()
    assert not again.docks["tactile"].isVisible()
    assert again.docks["history"].isFloating()
    assert not again.actions_by_name["grid"].isChecked()


def test_unsaved_marker_prompt_on_close_and_recent_files(open_window, prompts, tmp_path, qtbot):
    scene = copy_scene(default_scene_path(), tmp_path / "lab")
    window = open_window(scene)
    assert not window.isWindowModified()
    window.push(SetField(("simulation", "dt"), 2e-3))
    settle(qtbot)
    assert window.isWindowModified() and "[*]" in window.windowTitle()

    prompts.save_answers.append("cancel")
    assert not window.close()
    assert window.isVisible() and prompts.asked[-1] == "save changes to default.yaml"

    prompts.save_answers.append("save")
    assert window.close()
    assert "dt: 0.002" in scene.read_text()
    assert window.recent.list()[0] == scene

    again = open_window()  # the default scene; the saved file is in File > Open recent
    recent = [a.text() for a in again.recent_menu.actions()]
    assert recent[0] == str(scene)
    again.recent_menu.actions()[0].trigger()
    settle(qtbot)
    assert again.path == scene and again.scene.simulation.dt == 2e-3
    save_screenshot(again, "window_recent_reopened")


def test_after_a_crash_the_next_start_offers_the_autosave(open_window, prompts, tmp_path, qtbot):
    scene = copy_scene(default_scene_path(), tmp_path / "lab")
    window = open_window(scene)
    # this session's process "dies" before closing: give it the id of a process that has exited
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    window.autosave = Autosave(pid=gone)
    window.push(SetField(("simulation", "horizon"), 321))
    window.write_autosave()  # what the one-minute timer does
    window.stack.set_clean()  # (so this window's own teardown asks nothing)

    prompts.restore_answers.append(True)
    restored = open_window()
    assert prompts.asked[-1] == f"restore {scene}"
    assert restored.scene.simulation.horizon == 321
    assert restored.path == scene
    assert restored.isWindowModified(), "a restored autosave is not saved anywhere yet"
    assert Autosave().orphans() == []  # offered once

    prompts.restore_answers.append(True)
    clean_start = open_window()
    assert clean_start.scene.simulation.horizon != 321


def test_camera_presets_fit_axes_and_two_sided_shells(open_window):
    window = open_window()
    viewport = window.viewport
    looking = {}
    for preset in CAMERA_PRESETS:
        window.actions_by_name[f"camera_{preset}"].trigger()
        position, focus, _ = viewport.camera
        looking[preset] = np.abs(np.subtract(position, focus)) / np.linalg.norm(np.subtract(position, focus))
    np.testing.assert_allclose(looking["top"], [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(looking["front"], [0, 1, 0], atol=1e-9)
    np.testing.assert_allclose(looking["side"], [1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(looking["iso"], np.full(3, 3 ** -0.5), atol=1e-9)

    viewport.camera = ((3.0, 3.0, 3.0), (4.0, 4.0, 4.0), (0.0, 0.0, 1.0))  # looking away from the scene
    window.actions_by_name["fit"].trigger()
    width, height = viewport.width(), viewport.height()
    for name, parts in viewport._parts.items():  # every corner of every entity's box is in the picture
        bounds = np.array(pv.merge([p.mesh for p in parts]).bounds).reshape(3, 2)
        for corner in itertools.product(*bounds):
            x, y = viewport.world_to_display(corner)
            assert 0 <= x <= width and 0 <= y <= height, f"{name} is outside the fitted view"

    axes = viewport._plotter.renderer.axes_widget
    window.actions_by_name["axes"].trigger()
    assert not axes.GetEnabled()
    window.actions_by_name["axes"].trigger()
    assert axes.GetEnabled()

    cloth = viewport._actors["cloth"][0]  # a shell: its back shaded too, darker than its front
    back = cloth.GetBackfaceProperty()
    assert back is not None and sum(back.GetColor()) < sum(cloth.prop.GetColor())
