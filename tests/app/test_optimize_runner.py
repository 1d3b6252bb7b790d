"""The optimization runner on an analytic reaching task: files, stop at success, exact resume."""

import json

import numpy as np
import pytest
import torch

from app.services.optimize import OptimizationRun, RunFolderError
from sim.optim.parameterization import Channels, SpeedLimit, SplineKeyframes
from sim.optim.problem import Problem
from sim.tasks.base import BoundTask, TaskDefaults

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
