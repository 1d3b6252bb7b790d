"""Simulate from the window: the run comes back frame by frame from the simulation thread,
the cloth falls under gravity on the timeline, and scrubbing shows it without re-simulating."""

from __future__ import annotations

import numpy as np

from app.commands import SetField
from app.scene.paths import assets_root
from studio_helpers import image_difference, save_screenshot, settle, wait_until

CLOTH_ONLY = assets_root() / "scenes" / "cloth_only.yaml"


def test_simulate_then_scrub_the_falling_cloth(open_window, qtbot, monkeypatch):
    window = open_window(CLOTH_ONLY)
    window.push(SetField(("simulation", "horizon"), 30))
    rest = window.viewport.screenshot()
    window.actions_by_name["simulate"].trigger()
    wait_until(qtbot, lambda: window.run is not None, 500, "the simulation (kernels compile on a cold cache)")
    run = window.run
    assert run.kind == "simulation" and len(run) == 31
    dt = window.scene.simulation.dt
    np.testing.assert_allclose(run.times, np.arange(31) * dt)

    # free fall before the cloth meets the ground: every vertex drops g t^2 / 2
    first, last = run[0].entities["cloth"].points, run[len(run) - 1].entities["cloth"].points
    t = run.times[-1]
    np.testing.assert_allclose(first[:, 2] - last[:, 2], 9.81 * t**2 / 2, rtol=0.05)
    np.testing.assert_allclose(last[:, :2], first[:, :2], atol=1e-6)  # no sideways drift (frames are float32)
    # the run keeps frames compactly: single-precision vertices, nothing else of their size
    assert first.dtype == np.float32
    assert run.nbytes < 1.1 * len(run) * first.nbytes

    # scrubbing looks frames up: the simulator is not called again
    monkeypatch.setattr("app.services.simulation.simulate_scene", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    window.timeline.seek(len(run) - 1)
    settle(qtbot)
    cloth_mesh = window.viewport._parts["cloth"][0].mesh
    np.testing.assert_allclose(cloth_mesh.points, last)
    save_screenshot(window, "simulated_cloth_fallen")
    window.viewport.camera_preset("front")
    fallen = window.viewport.screenshot()
    window.timeline.seek(0)
    settle(qtbot)
    np.testing.assert_allclose(cloth_mesh.points, first)
    assert image_difference(window.viewport.screenshot(), fallen) > 1e-4
    assert image_difference(rest, fallen) > 1e-4
