"""The optimization worker process: reports stream back, Stop ends a job within one
iteration, Resume continues the same run, bad input and a dead worker are reported."""

from __future__ import annotations

import time

import pytest

from app.scene.io import load_scene, scene_to_text
from app.scene.paths import assets_root
from app.services.optimization_process import OptimizationProcess

REACH = assets_root() / "scenes" / "tasks" / "reach.yaml"


@pytest.fixture
def worker():
    process = OptimizationProcess()
    yield process
    process.shutdown()


def _reach_text(iterations: int) -> str:
    scene = load_scene(REACH)
    scene.task.success_threshold = 0.0  # never solved: only Stop or the count ends a job
    scene.task.optimizer.iterations = iterations
    return scene_to_text(scene)


def _collect(worker, until, timeout_s: float = 120.0) -> list[tuple]:
    """Poll until ``until(messages)``; generous timeout: a loaded machine is slow, not wrong."""
    messages: list[tuple] = []
    deadline = time.monotonic() + timeout_s
    while not until(messages):
        assert time.monotonic() < deadline, f"timed out; got {[m[0] for m in messages]}"
        messages += worker.poll()
        time.sleep(0.01)
    return messages


def _ended(messages) -> bool:
    return any(m[0] in ("done", "failed", "unavailable") for m in messages)


def test_stop_within_one_iteration_and_resume_continues_the_run(worker, tmp_path):
    worker.start(_reach_text(400), REACH, tmp_path / "run", 400, resume=False)
    assert worker.running
    first = _collect(worker, lambda ms: sum(m[0] == "report" for m in ms) >= 3)
    pressed = time.time()
    worker.stop()
    first += _collect(worker, _ended)
    reports = [m for m in first if m[0] == "report"]
    assert sum(m[4] > pressed for m in reports) <= 1, "more than the iteration in flight finished after Stop"
    row, positions = reports[-1][2], reports[-1][3]
    assert positions.shape == (51, 3)  # horizon 50: the tool path of the reported parameters
    kinds = [m[0] for m in first]
    assert kinds[-2:] == ["preview", "done"] and not worker.running
    outcome = first[-1][2]
    assert outcome.cancelled and outcome.iterations == len(reports) == outcome.iterations_done
    assert outcome.best_loss == min(m[2]["loss"] for m in reports)
    tool, dt, best_path = first[-2][2:]
    assert tool == "gripper" and dt == pytest.approx(0.02) and best_path.shape == (51, 3)

    worker.start(_reach_text(400), REACH, tmp_path / "run", 2, resume=True)
    second = _collect(worker, _ended)
    resumed = [m[2]["iteration"] for m in second if m[0] == "report"]
    assert resumed == [row["iteration"] + 1, row["iteration"] + 2]
    assert second[-1][2].iterations_done == row["iteration"] + 2 and not second[-1][2].cancelled


def test_a_scene_that_cannot_be_optimized_is_reported(worker, tmp_path):
    worker.start("schema_version: 2\nentities: nonsense\n", None, tmp_path / "bad", 3, resume=False)
    messages = _collect(worker, _ended)
    assert [m[0] for m in messages] == ["unavailable"]
    assert "entities" in messages[0][2]
    worker.start(_reach_text(1), REACH, tmp_path / "missing", 1, resume=True)  # no run in that folder
    messages = _collect(worker, _ended)
    assert messages[0][0] == "unavailable" and "state.pt" in messages[0][2]


def test_a_worker_that_dies_mid_job_fails_the_job(worker, tmp_path):
    worker.start(_reach_text(100_000), REACH, tmp_path / "run", 100_000, resume=False)
    _collect(worker, lambda ms: any(m[0] == "report" for m in ms))
    worker._process.kill()
    messages = _collect(worker, lambda ms: any(m[0] == "failed" for m in ms))
    assert "exited" in messages[-1][2] and not worker.running
