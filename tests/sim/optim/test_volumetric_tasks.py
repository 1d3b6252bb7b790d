"""Volumetric tasks (MPM under the tool's fingers): each shipped scene binds, its success
criterion rejects the untouched start, its score's gradient matches central differences,
and one task's whole loss (through the MPM rollout) does too.

MPM kernels compile once per particle count and substep count, so every task costs a
compile; the rollout gradient check cuts its horizon to a few steps."""

from pathlib import Path

import numpy as np
import pytest
import torch

from app.scene.io import load_scene
from app.services.optimize_tasks import bind_scene_task
from sim.tasks.registry import all_tasks
from sim.tasks.volumetric import Domain, wave_speed, with_tail

TASK_SCENES = Path(__file__).resolve().parents[3] / "assets" / "scenes" / "tasks"
VOLUMETRIC = sorted(t.kind for t in all_tasks() if t.family == "volumetric")


def _bound(kind: str, horizon: int | None = None):
    scene = load_scene(TASK_SCENES / f"{kind}.yaml")
    scene.simulation.horizon = horizon or scene.simulation.horizon
    return bind_scene_task(scene)


def _captured(task) -> dict:
    """What the task's loss closes over (its rig and score)."""
    loss = task.problem.loss
    return dict(zip(loss.__code__.co_freevars, (c.cell_contents for c in loss.__closure__)))


def test_the_suite_has_volumetric_tasks():
    assert {"shape_plastic", "gather_fluid", "grasp_elastic", "grasp_plastic"} <= set(VOLUMETRIC)


@pytest.mark.parametrize("kind", VOLUMETRIC)
def test_success_rejects_the_start_and_scores_are_differentiable(kind):
    """The optimizers' start (the tool holding still, or a grasp's naive script) does not do
    the task over the shipped horizon; the score of the final state (what the optimizer
    differentiates after the rollout) matches central differences in float64."""
    task = _bound(kind)
    start = task.problem.x0
    assert not task.success(task.problem.value(start))

    rig, score = _captured(task)["rig"], _captured(task)["score"]
    rng = np.random.default_rng(1)
    x = torch.as_tensor(rig.system.x0 + rng.normal(0, 0.004, rig.system.x0.shape))
    v = torch.as_tensor(rng.normal(0, 0.05, x.shape))
    motion = with_tail(task.parameterization.decode(torch.as_tensor(start)), 5)
    xs = x.clone().requires_grad_(True)
    vs = v.clone().requires_grad_(True)
    score(rig, (xs, vs), motion).backward()
    dx, dv = torch.as_tensor(rng.standard_normal(x.shape)), torch.as_tensor(rng.standard_normal(x.shape))
    eps = 1e-7
    with torch.no_grad():
        fd = (score(rig, (x + eps * dx, v + eps * dv), motion) - score(rig, (x - eps * dx, v - eps * dv), motion)) / (2 * eps)
    grads = [torch.zeros_like(x) if g is None else g for g in (xs.grad, vs.grad)]  # gather ignores velocities
    analytic = float((grads[0] * dx).sum() + (grads[1] * dv).sum())
    assert abs(float(fd)) > 0
    assert analytic == pytest.approx(float(fd), rel=1e-5)


@pytest.mark.slow  # compiles the MPM adjoint kernels for this particle count (~1-3 min cold)
def test_gather_fluid_loss_gradient_through_the_rollout_matches_central_differences():
    task = _bound("gather_fluid", horizon=4)
    p = task.parameterization
    rng = np.random.default_rng(0)
    # the paddle pushes the water, never holding exactly still: water resting against a still
    # paddle meets it at exactly zero normal speed, where friction's switch puts a kink
    x = p.project(p.hold() + np.tile([0.01, 0.0, 0.0, 0.0], p.keyframes - 1) + rng.normal(0, 0.002, p.hold().shape))
    direction = rng.standard_normal(x.shape)
    direction /= np.linalg.norm(direction)
    xt = torch.tensor(x, requires_grad=True)
    _, grad = task.problem.value_and_grad(xt)
    eps = 1e-6
    fd = (task.problem.value(x + eps * direction) - task.problem.value(x - eps * direction)) / (2 * eps)
    assert abs(fd) > 1e-6
    assert float(grad @ torch.as_tensor(direction)) == pytest.approx(fd, rel=1e-3)


def test_substeps_follow_the_fastest_wave():
    from sim.mpm.spec import MpmMaterial

    water = MpmMaterial("fluid", density=1000.0, bulk_modulus=2e4)
    assert wave_speed(water) == pytest.approx(np.sqrt(20.0))
    task = _bound("gather_fluid", horizon=3)
    rig = _captured(task)["rig"]
    dx = Domain().grid().dx
    assert rig.system.dt * wave_speed(water) <= 0.3 * dx  # the explicit step stays stable
