"""reach: bring the tool to a target point, smoothly. Purely kinematic (no simulated
bodies), so it exercises the whole optimize pipeline in seconds."""

from __future__ import annotations

import torch

from sim.optim import losses
from sim.optim.problem import Problem
from sim.tasks.base import BoundTask, TaskDefaults
from sim.tasks.registry import TaskContext, TaskDefinition, Workspace, register


def _bind(ctx: TaskContext, defaults: TaskDefaults) -> BoundTask:
    param = Workspace().spline(ctx, keyframes=5)
    target = torch.as_tensor(ctx.target("position", ctx.tool_start[:3], 3))
    smooth = ctx.weight("smoothness", 1e-6)

    def loss(x: torch.Tensor) -> torch.Tensor:
        motion = param.decode(x)
        return losses.position_target(motion[-1:, :3], target) + smooth * losses.smoothness(motion[:, :3], ctx.dt)

    return BoundTask("reach", param, Problem.from_parameterization(param, loss), defaults, ctx.tool)


register(
    TaskDefinition(
        kind="reach",
        family="kinematic",
        description="Move the tool to a target point (m) with a smooth motion",
        scene="reach.yaml",
        defaults=TaskDefaults(success_threshold=1e-5, iterations=100, time_budget_s=30.0, optimizer_settings={"hybrid": {"explore": 4}}),
        bind=_bind,
    )
)
