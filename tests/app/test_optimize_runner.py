"""The optimization runner on an analytic reaching task: files, stop at success, exact resume,
and steps the simulator rejects."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app.services.optimize import OptimizationRun, RunFolderError
from app.services.optimize_sweep import RunRequest, run_task, saved_result
from sim.errors import SimulationError
from sim.optim.parameterization import Channels, SpeedLimit, SplineKeyframes
from sim.optim.problem import Problem
from sim.tasks.base import BoundTask, TaskDefaults

REACH_SCENE = Path(__file__).resolve().parents[2] / "assets" / "scenes" / "tasks" / "reach.yaml"
TARGET = torch.tensor([0.1, -0.05, 0.2, 0.01], dtype=torch.float64)


def reach_task(threshold=1e-6, kind="reach"):
    channels = Channels(("x", "y", "z", "opening"), (-0.2, -0.2, 0.0, 0.0), (0.2, 0.2, 0.3, 0.08), (SpeedLimit((0, 1, 2), 0.5),))
    p = SplineKeyframes(channels, 20, 0.05, [0.0, 0.0, 0.1, 0.04], keyframes=4)
    problem = Problem.from_parameterization(p, lambda x: ((p.decode(x)[-1] - TARGET) ** 2).sum())
    return BoundTask(kind, p, problem, TaskDefaults(threshold, 100, 60.0, {"hybrid": {"explore": 3}}), tool="gripper")


def test_run_writes_curve_best_trajectory_and_summary(tmp_path):
    run = OptimizationRun(reach_task(threshold=1e-5), tmp_path, "hybrid", seed=0)
    reports = list(run.reports(200))
    assert run.solved and len(reports) < 200  # stopped at success
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["solved"] and summary["iterations"] == len(reports) == summary["iterations_to_success"]
    assert summary["settings"] == {"explore": 3}  # the task's default settings
    curve_csv = (tmp_path / "curve.csv").read_text().splitlines()
    assert curve_csv[0].startswith("optimizer,phase,iteration,loss") and len(curve_csv) == len(reports) + 1
    best = json.loads((tmp_path / "best.json").read_text())
    frames = best["trajectory"]["keyframes"]
    assert best["trajectory"]["interpolation"] == "bspline" and len(frames) == 4
    assert np.allclose(best["motion"][-1], TARGET.numpy(), atol=5e-3)  # the curve ends at the last keyframe
    assert np.allclose(frames[-1]["position"] + [frames[-1]["opening"]], best["motion"][-1])
    assert best["loss"] == pytest.approx(summary["best_loss"])


@pytest.mark.parametrize("optimizer", ["hybrid", "adam", "cmaes"])
def test_interrupted_run_resumes_exactly(tmp_path, optimizer):
    straight = [r.params for r in OptimizationRun(reach_task(0.0), tmp_path / "a", optimizer, 3).reports(8)]
    first = OptimizationRun(reach_task(0.0), tmp_path / "b", optimizer, 3)
    head = []
    for report in first.reports(8):
        head.append(report.params)
        if len(head) == 5:
            break  # as the studio's Stop or a Ctrl-C between iterations
    resumed = OptimizationRun.resume(reach_task(0.0), tmp_path / "b")
    assert resumed.iterations_done == 5
    tail = [r.params for r in resumed.reports(3)]
    assert all(np.array_equal(a, b) for a, b in zip(straight, head + tail))
    assert len(json.loads((tmp_path / "b" / "curve.json").read_text())) == 8


def test_resume_refuses_missing_or_foreign_runs(tmp_path):
    with pytest.raises(RunFolderError, match="state.pt is missing"):
        OptimizationRun.resume(reach_task(), tmp_path)
    list(OptimizationRun(reach_task(), tmp_path, "adam").reports(1))
    with pytest.raises(RunFolderError, match="task 'reach', not 'lift'"):
        OptimizationRun.resume(reach_task(kind="lift"), tmp_path)


def fragile_reach_task(limit: float):
    """reach_task on a 'simulator' that rejects motions ending beyond x = limit."""
    task = reach_task(threshold=0.0)
    p = task.parameterization

    def loss(x):
        end = p.decode(x)[-1]
        if float(end[0].detach()) > limit:
            raise SimulationError(19, "gripper", "position", float(end[0]), f"x beyond {limit} m")
        return ((end - TARGET) ** 2).sum()

    task.problem = Problem.from_parameterization(p, loss)
    return task


def test_failed_steps_are_recorded_and_the_run_goes_on(tmp_path):
    run = OptimizationRun(fragile_reach_task(limit=0.102), tmp_path, "adam", seed=0, settings={"lr": 0.2, "init_noise": 0.0})
    reports = list(run.reports(40))
    assert len(reports) == 40 and any(r.failure for r in reports) and not reports[-1].failure
    rows = list(csv.DictReader((tmp_path / "curve.csv").open()))
    assert [bool(r["failure"]) for r in rows] == [bool(r.failure) for r in reports]
    assert all("x beyond 0.102 m" in r["failure"] for r in rows if r["failure"])
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["failed_iterations"] == sum(bool(r.failure) for r in reports) and summary["error"] is None
    assert json.loads((tmp_path / "best.json").read_text())["loss"] == summary["best_loss"] < 1e-4


def test_a_sweep_run_that_cannot_go_on_is_recorded_not_raised(tmp_path):
    request = RunRequest(str(REACH_SCENE), "adam", 0, str(tmp_path), iterations=5)
    result = run_task(fragile_reach_task(limit=-1.0), request)  # rejects even the start
    assert "nothing to back off to" in result["error"] and result["iterations"] == 0
    assert json.loads((tmp_path / "run.json").read_text())["error"] == result["error"]
    assert saved_result(request)["error"] == result["error"]  # the benchmark counts it as an unsolved seed
    solved = run_task(reach_task(threshold=1e-3), RunRequest("reach.yaml", "adam", 0, str(tmp_path / "next"), iterations=60))
    assert solved["solved"] and solved["error"] is None
