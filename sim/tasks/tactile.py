"""Tactile tasks: a pad under the tool pressing on the scene's rigid bodies (sim.tasks.pad_rig)."""

from __future__ import annotations

import numpy as np
import torch

from sim.optim import losses
from sim.optim.parameterization import Channels, SpeedLimit, SplineKeyframes
from sim.optim.problem import Problem
from sim.tasks.base import BoundTask, TaskDefaults, optimizer_settings
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
            iterations=60,
            time_budget_s=420.0,
            optimizer_settings=optimizer_settings(60, explore=4, cmaes={"popsize": 6, "sigma0": 0.1},
                                                  adam={"lr": 0.03, "final_lr_ratio": 0.03, "clip_norm": 0.5}),
        ),
        bind=_bind_follow_surface,
    )
)


def _bind_tactile_press(ctx: TaskContext, defaults: TaskDefaults) -> BoundTask:
    """Tactile servoing: press the pad onto a small bump so that the sensor's indentation
    (depth) image matches a target reading. The target is the reading of a press at an
    offset (term "target_press": [dx, dy, depth] in m from the start, depth into the bump's
    top), reached by moving across first and then straight down; the optimizer sees only
    the reading, never that pose. Loss: mean squared depth error over the target's mean
    squared depth."""
    from sim.tactile.sensor import TactileConfig, TactileSensor

    start = np.asarray(ctx.tool_start, dtype=np.float64)
    dx, dy, depth = ctx.target("target_press", [0.002, -0.0015, 0.0006], 3)
    gap = float(ctx.target("gap", [0.0005], 1)[0])  # the scene starts the gel this far above the bump
    rig = build_pad_rig(_sensor(ctx), ctx.bodies, ctx.horizon, ctx.dt, start[:3])
    sensor = TactileSensor(rig.system.bodies[0].mesh, TactileConfig(image_size=(16, 16), markers=(3, 3)))
    pad_rot = rig.pad_rot[0, 0]
    channels = Channels(("x", "y", "z"), tuple(start[:3] - [0.005, 0.005, 0.003]), tuple(start[:3] + [0.005, 0.005, 0.001]),
                        (SpeedLimit((0, 1, 2), 0.05),))
    param = SplineKeyframes(channels, ctx.horizon, ctx.dt, start[:3], keyframes=4)

    def reading(path: torch.Tensor) -> torch.Tensor:
        x, forces = rig.run(path)
        return sensor.read(x[-1], forces[-1], pad_rot, path[-1]).depth

    with torch.no_grad():
        t = torch.linspace(0.0, 1.0, ctx.horizon + 1, dtype=torch.float64)
        across, down = (t / 0.4).clamp(max=1.0), ((t - 0.4) / 0.4).clamp(0.0, 1.0)
        path = torch.as_tensor(start[:3]) + torch.stack([across * dx, across * dy, -down * (gap + depth)], 1)
        target = reading(path)
    scale = float((target**2).mean())
    if not scale > 0:
        raise ValueError("the target press does not touch the bump: increase its depth")

    def loss(x: torch.Tensor) -> torch.Tensor:
        return losses.tactile_target(reading(param.decode(x)), target) / scale

    def tool_motion(x: np.ndarray) -> np.ndarray:
        xyz = param.motion(x)
        return np.column_stack([xyz, np.full(len(xyz), start[3])])

    return BoundTask("tactile_press", param, Problem.from_parameterization(param, loss), defaults, ctx.tool, tool_motion)


register(
    TaskDefinition(
        kind="tactile_press",
        family="tactile",
        description="Press a tactile pad onto a bump until its depth image matches a target reading",
        scene="tactile_press.yaml",
        defaults=TaskDefaults(
            success_threshold=0.0625,  # RMS depth-image error at most 25% of the target RMS depth
            iterations=40,
            time_budget_s=120.0,
            optimizer_settings=optimizer_settings(40, explore=5, cmaes={"popsize": 6, "sigma0": 0.15},
                                                  adam={"lr": 0.02, "final_lr_ratio": 0.05}),
        ),
        bind=_bind_tactile_press,
    )
)
