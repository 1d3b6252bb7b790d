"""The shipped task suite: every registered task has a valid scene that binds, and the
simulated tasks' loss gradients match central differences along a random direction."""

from pathlib import Path

import numpy as np
import pytest
import torch

from app.scene.io import load_scene
from app.services.optimize_tasks import bind_scene_task
from sim.tasks.registry import all_tasks

TASK_SCENES = Path(__file__).resolve().parents[3] / "assets" / "scenes" / "tasks"


def test_every_task_ships_a_scene_of_its_kind_with_a_budget():
    tasks = all_tasks()
    assert {"reach", "follow_surface", "tactile_press", "lift_sheet", "shape_plastic", "gather_fluid", "grasp_elastic", "grasp_plastic"} <= {t.kind for t in tasks}
    for definition in tasks:
        scene = load_scene(TASK_SCENES / definition.scene)
        assert scene.task.kind == definition.kind
        assert scene.task.success_threshold == definition.defaults.success_threshold
        assert 0 < definition.defaults.time_budget_s <= 1200  # <= 20 min per run


def _fd_check(task, x, seed=0, eps=1e-6):
    direction = np.random.default_rng(seed).standard_normal(x.shape)
    direction /= np.linalg.norm(direction)
    xt = torch.tensor(x, requires_grad=True)
    _, grad = task.problem.value_and_grad(xt)
    fd = (task.problem.value(x + eps * direction) - task.problem.value(x - eps * direction)) / (2 * eps)
    return float(grad @ torch.as_tensor(direction)), fd


def test_follow_surface_gradient_matches_central_differences():
    task = bind_scene_task(load_scene(TASK_SCENES / "follow_surface.yaml"))
    p = task.parameterization
    x = p.project(p.hold() + np.linspace(0.0, 0.002, p.size))  # pressing: the loss depends on z
    analytic, fd = _fd_check(task, x)
    assert abs(fd) > 1.0
    assert analytic == pytest.approx(fd, rel=1e-3)  # contact is stiff: FD truncation ~3e-4 here
