"""Thin-shell tasks: a parallel-jaw gripper handling cloth and paper (sim.world, sim.rollout).

Each task binds the world the app compiled from the scene (TaskContext.world), decodes
the tool's B-spline keyframes into per-step actions, simulates, and scores the final
vertices.
A sample the simulator rejects (blow-up, deep penetration) scores infinitely badly: the
sampling optimizer ranks it last, a gradient step reports it as an error.
"""

from __future__ import annotations

from typing import Callable

import torch

from sim.errors import SimulationError
from sim.optim.problem import Problem
from sim.rollout import simulate
from sim.tasks.base import BoundTask, TaskDefaults, optimizer_settings, sampled_loss
from sim.tasks.registry import TaskContext, TaskDefinition, Workspace, register


def tool_actions(world, tool: str, motion: torch.Tensor) -> torch.Tensor:
    """(steps, tools, 8) actions: the tool reaches row k + 1 of the motion at the end of
    step k, keeping its initial orientation; other tools hold their poses."""
    names = [t.name for t in world.spec.tools]
    if tool not in names:
        raise ValueError(f"the world has no tool {tool!r} (tools: {names})")
    slot = names.index(tool)
    hold = torch.as_tensor(world.spec.default_actions(), dtype=motion.dtype)
    rot = torch.as_tensor(world.spec.tools[slot].rotation, dtype=motion.dtype).expand(len(motion) - 1, 4)
    mine = torch.cat([motion[1:, :3], rot, motion[1:, 3:4]], dim=1)[:, None, :]
    return torch.cat([hold[:, :slot], mine, hold[:, slot + 1 :]], dim=1)


def bind_shell_task(
    kind: str,
    ctx: TaskContext,
    defaults: TaskDefaults,
    score: Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor],
    workspace: Workspace = Workspace(reach=(0.06, 0.06, 0.08), max_speed=0.3, max_opening_speed=0.1),
    keyframes: int = 5,
) -> BoundTask:
    """score(final vertices by shell name, tool motion) -> scalar loss."""
    world = ctx.world
    if world is None or getattr(world, "shells", None) is None:
        raise ValueError(f"task {kind!r} needs a simulated world with shells (the scene's cloth bodies)")
    param = workspace.spline(ctx, keyframes)
    ranges = world.shells.shell_ranges
    names = [s.name for s in world.spec.shells]

    def loss(x: torch.Tensor) -> torch.Tensor:
        motion = param.decode(x)
        final = simulate(world, tool_actions(world, ctx.tool, motion))[-1]
        return score({n: final[ranges[i] : ranges[i + 1]] for i, n in enumerate(names)}, motion)

    problem = Problem.from_parameterization(param, loss, evaluate=sampled_loss(loss, SimulationError))
    return BoundTask(kind, param, problem, defaults, ctx.tool)


def _bind_lift(ctx: TaskContext, defaults: TaskDefaults) -> BoundTask:
    """Pinch the sheet's free edge and lift it by friction: the sheet's mean height must
    reach the target (term "height", m)."""
    sheet = ctx.term("height").entity if ctx.term("height") and ctx.term("height").entity else "sheet"
    target = float(ctx.target("height", [0.015], 1)[0])

    def score(final, motion):
        return (final[sheet][:, 2].mean() - target) ** 2

    return bind_shell_task("lift_sheet", ctx, defaults, score)


register(
    TaskDefinition(
        kind="lift_sheet",
        family="shell",
        description="Pinch a sheet's overhanging edge and lift it by friction to a target mean height (m)",
        scene="lift_sheet.yaml",
        defaults=TaskDefaults(
            success_threshold=2.5e-5,  # mean height within 5 mm of the target
            iterations=20,
            time_budget_s=1200.0,
            optimizer_settings=optimizer_settings(20, explore=3, cmaes={"popsize": 6}),
        ),
        bind=_bind_lift,
    )
)
