"""The deploy and tactile panels in the window: dry-run with its pre-flight report, Stop on
Escape from anywhere; tactile image, marker arrows, pressure and forces following the
timeline (fed a run whose tactile frames the test builds, to check what the views draw)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from app.commands import SetField
from app.services.frames import EntityFrame, Frame, Run, TactileFrame, frozen
from studio_helpers import image_difference, save_screenshot, settle, show_panel, wait_until
from ui.scene_drawing import CONTACT_ARROW_M

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture
def window(open_window):
    return open_window()


def test_dry_run_reports_every_violation_and_escape_stops(window, qtbot):
    show_panel(qtbot, window, "deploy")
    panel = window.deploy_panel
    qtbot.mouseClick(panel.dry_run_button, LEFT)
    wait_until(qtbot, lambda: "dry-run done" in panel.message.text() or "not available" in panel.message.text(), 120,
               "the dry-run")
    assert "dry-run done" in panel.message.text(), panel.message.text()
    assert panel.verdict.text() == "pre-flight: every limit holds" and panel.report.rowCount() == 0
    assert len(panel.planned_curves) == 7

    # a keyframe out of the arm's reach: each unreachable pose is listed with its time
    window.push(SetField(("trajectory", "keyframes", 1, "position"), (1.5, 1.5, 0.01)))
    qtbot.mouseClick(panel.dry_run_button, LEFT)
    wait_until(qtbot, lambda: panel.report.rowCount() > 0, 120, "the violations")
    assert "violation" in panel.verdict.text()
    kinds = {panel.report.item(r, 0).text() for r in range(panel.report.rowCount())}
    times = [float(panel.report.item(r, 1).text()) for r in range(panel.report.rowCount())]
    assert "unreachable" in kinds and max(times) > 0
    assert not panel.execute_button.isEnabled()
    save_screenshot(window.docks["deploy"], "deploy_preflight_violations")

    # Escape stops from anywhere, even while typing in the inspector
    window.select_entity("cloth")
    settle(qtbot)
    editor = next(iter(window.inspector.rows.values())).editor
    editor.setFocus()
    qtbot.keyClick(editor, QtCore.Qt.Key.Key_Escape)
    assert panel.message.text() == "stop: nothing is moving"


def test_tactile_views_follow_the_timeline(window, qtbot):
    pads = [s.name for _, s in window.scene.sensors()]
    assert window.tactile_panel.pad_box.count() == len(pads) == 2
    rng = np.random.default_rng(0)
    rest = np.stack(np.meshgrid(np.arange(40.0, 320, 40), np.arange(30.0, 240, 40)), -1).reshape(-1, 2)
    pad_part = next(p for p in window.viewport._parts["gripper"] if p.sensor == pads[0])
    rows, cols = np.mgrid[0:24, 0:32]
    bump = np.exp(-((rows - 12.0) ** 2 + (cols - 16.0) ** 2) / 40.0)  # a press in the pad's middle
    frames = []
    for i in range(10):
        press = i / 9
        tactile = {pads[0]: TactileFrame(
            image=frozen(np.clip(rng.random((240, 320)) * 0.2 + press * 0.5, 0, 1)),
            markers=frozen(rest), marker_displacement=frozen(np.full_like(rest, 2.0 * press)),
            pressure=frozen(1e3 * press * bump), normal_force=2.0 * press, shear_force=0.3 * press)}
        fields = {"pressure": frozen(np.full(pad_part.mesh.n_points, 1e3 * press))}
        entities = {pads[0]: EntityFrame(points=frozen(np.zeros((0, 3))), fields=fields)}
        frames.append(Frame(index=i, time=0.01 * i, tactile=tactile, entities=entities))
    window.set_run(Run("simulation", frames))
    show_panel(qtbot, window, "tactile")
    panel = window.tactile_panel
    panel.pad_box.setCurrentText(pads[0])

    window.timeline.seek(9)
    settle(qtbot)
    t, normal = panel.normal_curve.getData()
    np.testing.assert_allclose(normal, 2.0 * np.arange(10) / 9)
    assert panel.cursor.value() == pytest.approx(0.09)
    x, y = panel.arrows.getData()
    assert len(x) == 2 * len(rest)
    np.testing.assert_allclose(x[1::2] - x[0::2], 5.0 * 2.0)  # drawn 5x the displacement
    assert panel.image_item.image is not None and panel.image_item.image.shape == (320, 240)
    assert panel.pressure_item.image.shape == (32, 24)
    assert panel.pressure_bar.levels() == pytest.approx((0.0, 1e3))  # the scale reads the peak in pascals
    save_screenshot(window.docks["tactile"], "tactile_pressed")
    window.actions_by_name["pad_pressure"].trigger()  # the 3D pad coloured by its pressure field
    np.testing.assert_allclose(pad_part.mesh.point_data["pressure"], 1e3)

    window.timeline.seek(0)
    settle(qtbot)
    assert panel.cursor.value() == pytest.approx(0.0)
    np.testing.assert_allclose(panel.arrows.getData()[0][1::2] - panel.arrows.getData()[0][0::2], 0.0)

    panel.pad_box.setCurrentText(pads[1])
    assert "recorded no tactile output" in panel.message.text()
    assert panel.image_item.image is None


def test_contact_forces_drawn_as_arrows(window, qtbot):
    """A simulated pad's per-node contact force is drawn as arrows at the touching nodes,
    pointing along the force, the largest CONTACT_ARROW_M long; no contact, no arrows."""
    pad = [s.name for _, s in window.scene.sensors()][0]
    part = next(p for p in window.viewport._parts["gripper"] if p.sensor == pad)
    nodes = np.asarray(part.mesh.points)
    force = np.zeros_like(nodes)
    touching = [0, len(nodes) // 2, len(nodes) - 1]
    force[touching] = [[2.0, 0, 0], [1.0, 0, 0], [0.5, 0, 0]]  # newtons, along +x
    frames = [Frame(index=i, time=0.01 * i, entities={pad: EntityFrame(points=frozen(nodes), fields={"contact_force": frozen(f)})})
              for i, f in enumerate((np.zeros_like(nodes), force))]
    window.set_run(Run("simulation", frames))
    viewport = window.viewport
    centre = nodes.mean(axis=0)
    viewport.camera = (tuple(centre + [0.03, -0.12, 0.06]), tuple(centre), (0.0, 0.0, 1.0))  # close on the pad
    window.timeline.seek(1)
    settle(qtbot)
    arrows = viewport._overlay["contacts"].mapper.dataset
    reach = nodes[touching, 0] + CONTACT_ARROW_M * np.array([1.0, 0.5, 0.25])
    assert arrows.bounds[1] == pytest.approx(reach.max(), abs=1e-4)  # the 2 N arrow is the longest, along +x
    assert arrows.bounds[0] == pytest.approx(nodes[touching, 0].min(), abs=2e-3)
    with_arrows = viewport.screenshot()
    save_screenshot(viewport, "contact_force_arrows")
    window.timeline.seek(0)
    settle(qtbot)
    assert "contacts" not in viewport._overlay
    assert image_difference(with_arrows, viewport.screenshot()) > 1e-4
