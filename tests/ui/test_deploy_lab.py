"""The deploy panel against `deft lab-sim` in another process (private ROS 2 domain on
loopback, tests/conftest.py): connect, pre-flight, arm, execute at a safe speed, watch the
measured joints plotted, and stop mid-motion with Escape; the arm stays where it stopped."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore

from app.scene.paths import default_scene_path
from studio_helpers import REPO, save_screenshot, settle, show_panel, wait_until

sys.path.insert(0, str(REPO))  # tests.robot.ros_fixtures: how every test starts the lab-sim
from tests.robot.ros_fixtures import lab_sim_process  # noqa: E402

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.mark.ros
def test_connect_preflight_arm_execute_and_escape_stops_the_arm(open_window, qtbot):
    pytest.importorskip("control_msgs.action")
    deft = Path(sys.executable).with_name("deft")
    window = open_window()
    show_panel(qtbot, window, "deploy")
    panel = window.deploy_panel
    with lab_sim_process(command=[str(deft), "lab-sim", str(default_scene_path()), "--object-width", "0.02"]):
        qtbot.mouseClick(panel.connect_button, LEFT)
        light = panel.lights["arm controller"]
        wait_until(qtbot, lambda: "answering" in light.text() or "#f85149" in light.text(), 60, "the controller")
        assert "answering" in light.text(), light.text()

        qtbot.mouseClick(panel.dry_run_button, LEFT)
        wait_until(qtbot, lambda: "dry-run done" in panel.message.text() or "not available" in panel.message.text(),
                   120, "the dry-run")
        assert panel.verdict.text() == "pre-flight: every limit holds", panel.message.text()

        assert not panel.execute_button.isEnabled()  # not before arming
        qtbot.mouseClick(panel.arm_button, LEFT)
        assert panel.execute_button.isEnabled() and panel.arm_button.text() == "Armed"
        panel.speed.setValue(0.05)  # the slowest: a loaded machine still presses Escape mid-motion
        link = window.deploy.link
        start = link.joint_state(5.0)
        qtbot.mouseClick(panel.execute_button, LEFT)

        def moved() -> float:
            return float(np.abs(link.joint_state(1.0) - start).max())

        def plotted() -> int:
            t = panel.measured_curves[0].getData()[0]
            return 0 if t is None else len(t)

        wait_until(qtbot, lambda: moved() > 0.02, 60, "the arm to move")
        wait_until(qtbot, lambda: plotted() >= 5, 30, "measured joints plotted")
        def plotted_motion() -> float:  # the largest change along any plotted joint's curve
            qs = [c.getData()[1] for c in panel.measured_curves]
            return max(float(np.abs(q - q[0]).max()) for q in qs if q is not None and len(q))

        wait_until(qtbot, lambda: plotted_motion() > 0.01, 30, "the plotted joints to move")
        assert all(np.isfinite(c.getData()[1]).all() for c in panel.measured_curves if c.getData()[1] is not None)
        # the plot shows the plan being executed (re-planned at the slow speed), not the dry-run's
        assert "at speed 0.05" in panel.message.text()
        duration = float(panel.message.text().split("executing ")[1].split(" s")[0])
        assert panel.planned_curves[0].getData()[0][-1] == pytest.approx(duration, abs=0.01)
        assert duration > 10  # 0.05 of the scene's speed
        t = panel.measured_curves[0].getData()[0]
        assert -1.0 < t[0] and t[-1] < duration  # stamped on the plan's clock, mid-way through it

        # Escape, with focus anywhere in the window, stops the motion mid-way
        window.viewport.setFocus()
        qtbot.keyClick(window, QtCore.Qt.Key.Key_Escape)
        assert "STOPPED" in panel.message.text(), panel.message.text()
        wait_until(qtbot, lambda: "execution" in panel.message.text() or "not executed" in panel.message.text(), 60,
                   "the execution to end")
        assert "cancel" in panel.message.text(), panel.message.text()
        save_screenshot(window.docks["deploy"], "deploy_stopped_mid_motion")

        # stopped means still: the measured joints no longer change, short of the planned end
        settled = link.joint_state(2.0)
        qtbot.wait(500)
        np.testing.assert_allclose(link.joint_state(2.0), settled, atol=1e-3)
        planned_end = np.array([c.getData()[1][-1] for c in panel.planned_curves])
        assert np.abs(settled - planned_end).max() > 0.01, "the arm finished the motion: Escape did not stop it"
        assert not panel.execute_button.isEnabled()  # a new motion needs a new arm step
    settle(qtbot)
