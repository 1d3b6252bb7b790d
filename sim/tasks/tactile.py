"""Tactile tasks: a pad under the tool pressing on the scene's rigid bodies (sim.tasks.pad_rig)."""

from __future__ import annotations

import numpy as np
import torch

from sim.optim.parameterization import Channels, SpeedLimit, SplineKeyframes
from sim.optim.problem import Problem
from sim.tasks.base import BoundTask, TaskDefaults
from sim.tasks.pad_rig import build_pad_rig
from sim.tasks.registry import TaskContext, TaskDefinition, register


def _sensor(ctx: TaskContext) -> dict:
    if not ctx.sensors:
        raise ValueError(f"tool {ctx.tool!r} carries no tactile sensor; tactile tasks need one")
    return ctx.sensors[0]


def _bind_follow_surface(ctx: TaskContext, defaults: TaskDefaults) -> BoundTask:
    """Slide the pad along x over a curved surface while pressing with a target normal force:
    the path in x, y is given (term "path": displacement [dx, dy] in m); the optimizer
    shapes the height z(t). Loss: mean squared relative force error after the approach."""
    target = float(ctx.target("contact_force", [2.0], 1)[0])
    shift = ctx.target("path", [0.06, 0.0], 2)
    approach = int(ctx.target("approach_steps", [8], 1)[0])
    start = np.asarray(ctx.tool_start, dtype=np.float64)
    rig = build_pad_rig(_sensor(ctx), ctx.bodies, ctx.horizon, ctx.dt, start[:3])
    frac = torch.linspace(0.0, 1.0, ctx.horizon + 1, dtype=torch.float64)
    xy = torch.as_tensor(start[:2]) + frac[:, None] * torch.as_tensor(shift)
    z0 = start[2]
    height = Channels(("z",), (z0 - 0.012,), (z0 + 0.002,), (SpeedLimit((0,), 0.2),))
    param = SplineKeyframes(height, ctx.horizon, ctx.dt, [z0], keyframes=7)

    def loss(x: torch.Tensor) -> torch.Tensor:
        path = torch.cat([xy, param.decode(x)], dim=1)
        _, forces = rig.run(path)
        force = rig.normal_force(forces)[approach:]
        return (((force - target) / target) ** 2).mean()

    def tool_motion(x: np.ndarray) -> np.ndarray:
        z = param.motion(x)
        return np.column_stack([xy.numpy(), z, np.full(len(z), start[3])])

    return BoundTask("follow_surface", param, Problem.from_parameterization(param, loss), defaults, ctx.tool, tool_motion)


register(
    TaskDefinition(
        kind="follow_surface",
        family="tactile",
        description="Slide a tactile pad over a curved surface pressing with a target normal force (N)",
        scene="follow_surface.yaml",
        defaults=TaskDefaults(
            success_threshold=0.0625,  # RMS force error at most 25% of the target
            iterations=40,
            time_budget_s=300.0,
            optimizer_settings={
                "hybrid": {"explore": 4, "cmaes": {"popsize": 6, "sigma0": 0.1}, "adam": {"lr": 0.03, "horizon": 36, "final_lr_ratio": 0.05}},
                "adam": {"lr": 0.03, "horizon": 40, "final_lr_ratio": 0.05},
                "cmaes": {"popsize": 6, "sigma0": 0.1},
            },
        ),
        bind=_bind_follow_surface,
    )
)
