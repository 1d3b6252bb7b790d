"""Runs in the window: an optimization stopped within one iteration and resumed, the event
loop kept responsive meanwhile, playback and looping, screenshot and video of a run."""

from __future__ import annotations

import multiprocessing.spawn
import os
import time

import imageio_ffmpeg
import numpy as np
from PySide6 import QtCore

from app.scene.paths import assets_root
from studio_helpers import SCREENSHOTS, save_screenshot, settle, wait_until
from test_main_flow import type_into
from ui.stall_probe import StallProbe

LEFT = QtCore.Qt.MouseButton.LeftButton
REACH = assets_root() / "scenes" / "tasks" / "reach.yaml"


def test_stop_within_one_iteration_then_resume(open_window, qtbot, monkeypatch):
    window = open_window(REACH)
    panel = window.optimize_panel
    type_into(qtbot, panel.settings.rows[("task", "success_threshold")].editor, "0")
    type_into(qtbot, panel.settings.rows[("task", "optimizer", "iterations")].editor, "400")
    wait_until(qtbot, panel.start_button.isEnabled, 60, "the reach task to be available")

    probe = StallProbe()
    probe.start()
    qtbot.mouseClick(panel.start_button, LEFT)
    wait_until(qtbot, lambda: len(panel.rows) >= 3, 60, "three iterations")
    assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    assert window.viewport.draft, "previews while optimizing are drawn without anti-aliasing"
    services = window.services
    sent = []  # when the stop reached the worker's event (a loaded machine may take a while to get there)
    forward = services.optimizer.stop
    monkeypatch.setattr(services.optimizer, "stop", lambda: (sent.append(time.time()), forward()))
    qtbot.mouseClick(panel.stop_button, LEFT)
    wait_until(qtbot, lambda: "stopped" in panel.status.text(), 30, "the optimization to stop")
    assert not window.viewport.draft
    longest = probe.stop()
    # the worker checks the stop after every iteration: at most the one in flight finishes
    # (it stamps each report with the same clock)
    assert len(sent) == 1 and sum(t > sent[0] for t in services.report_times) <= 1
    assert len(panel.rows) == services.delivered
    assert panel.resume_button.isEnabled()
    print(f"longest event-loop stall while optimizing: {longest * 1000:.0f} ms over {probe.ticks} ticks")

    done = len(panel.rows)
    qtbot.mouseClick(panel.resume_button, LEFT)
    wait_until(qtbot, lambda: len(panel.rows) >= done + 2, 60, "resumed iterations")
    window.actions_by_name["stop_optimize"].trigger()
    wait_until(qtbot, lambda: "stopped" in panel.status.text(), 30, "the second stop")
    iterations = [r["iteration"] for r in panel.rows]
    assert iterations == list(range(1, len(iterations) + 1)), "resume must continue the same run"
    wait_until(qtbot, lambda: window.run is not None, 30, "the preview of the best so far")
    save_screenshot(window, "optimization_stopped_and_resumed")

    # an edit of the document makes the stopped run stale: no resume of another scene's run
    type_into(qtbot, panel.settings.rows[("task", "success_threshold")].editor, "1e-9")
    assert not panel.resume_button.isEnabled()

    # a task the suite lacks: the worker process's check disables Optimize and says why
    type_into(qtbot, panel.settings.rows[("task", "kind")].editor, "juggle")
    wait_until(qtbot, lambda: not panel.start_button.isEnabled(), 60, "the worker's availability check")
    assert "no task of kind 'juggle'" in panel.status.text()
    window.undo()
    wait_until(qtbot, panel.start_button.isEnabled, 60, "the reach task available again")


def test_a_worker_that_cannot_start_is_reported_once_and_the_next_start_retries(open_window, qtbot, monkeypatch):
    monkeypatch.setattr(multiprocessing.spawn, "_python_exe", os.fsencode("/nonexistent/python"))  # every spawn fails
    window = open_window(REACH)
    panel = window.optimize_panel
    shown: list[str] = []
    window.statusBar().messageChanged.connect(lambda text: shown.append(text))
    # the worker is started ahead of the first job, after the first frame: that start fails
    # (the spawn raises, or the new process exits at once: the exec failed after the fork)
    failure = ("failed: could not start the optimization process", "failed: the optimization process exited")
    wait_until(qtbot, lambda: panel.status.text().startswith(failure), 60, "the failure shown")
    shown.clear()
    bridge_timer = window.services._poll_timer
    wait_until(qtbot, lambda: not bridge_timer.isActive(), 10, "polling to end")
    settle(qtbot, 300)
    assert not any("optimization process" in text for text in shown), "the failure was reported again"
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()

    type_into(qtbot, panel.settings.rows[("task", "optimizer", "iterations")].editor, "2")
    qtbot.mouseClick(panel.start_button, LEFT)  # a start tries again, and fails the same way, once
    wait_until(qtbot, lambda: not bridge_timer.isActive(), 30, "the failed start reported")
    assert sum("optimization process" in text for text in shown) == 1 and not window.viewport.draft
    assert panel.status.text().startswith(failure)
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()

    monkeypatch.undo()  # the machine is fixed: the next start runs
    qtbot.mouseClick(panel.start_button, LEFT)
    wait_until(qtbot, lambda: "finished" in panel.status.text(), 120, "the optimization to finish")
    assert [r["iteration"] for r in panel.rows] == [1, 2]


def test_playback_loop_screenshot_and_video(open_window, qtbot, prompts, tmp_path):
    window = open_window(REACH)
    panel = window.optimize_panel
    type_into(qtbot, panel.settings.rows[("task", "optimizer", "iterations")].editor, "2")
    wait_until(qtbot, panel.start_button.isEnabled, 60, "the reach task to be available")
    window.actions_by_name["optimize"].trigger()
    wait_until(qtbot, lambda: window.run is not None, 60, "the optimization preview")
    run = window.run
    assert len(run) == window.scene.simulation.horizon + 1

    timeline = window.timeline
    timeline.loop_box.setChecked(True)
    timeline.seek(len(run) - 3)
    window.actions_by_name["play"].trigger()
    assert timeline.playing
    wait_until(qtbot, lambda: timeline.index < len(run) - 3, 10, "playback to wrap around")
    window.actions_by_name["play"].trigger()
    assert not timeline.playing
    timeline.seek(5)
    window.actions_by_name["step"].trigger()
    assert timeline.index == 6
    window.actions_by_name["step_back"].trigger()
    assert timeline.index == 5

    picture = tmp_path / "shot.png"
    prompts.paths.append(str(picture))
    window.actions_by_name["screenshot"].trigger()
    assert picture.stat().st_size > 10_000

    video = SCREENSHOTS / "reach_preview.mp4"
    prompts.paths.append(str(video))
    window.actions_by_name["record"].trigger()
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = reader.__next__()
    frames = [np.frombuffer(f, np.uint8) for f in reader]
    duration = run.times[-1] - run.times[0]
    assert len(frames) == int(np.floor(duration * 30 + 1e-9)) + 1
    width, height = meta["size"]
    first, last = (f.reshape(height, width, 3) for f in (frames[0], frames[-1]))
    assert np.mean(np.abs(first.astype(int) - last.astype(int)).max(axis=-1) > 24) > 1e-4, "the tool did not move"
