"""What a task bound to a world offers the optimization runner, independent of the solver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch

from sim.optim.parameterization import Parameterization, SplineKeyframes
from sim.optim.problem import Problem

TOOL_CHANNELS = ("x", "y", "z", "opening")


def optimizer_settings(iterations: int, explore: int, cmaes: dict, adam: dict | None = None) -> dict[str, dict]:
    """Settings of the three optimizers for a run of ``iterations``: CMA-ES as given, Adam
    decaying its rate over the whole run, and the hybrid sampling ``explore`` CMA-ES
    generations before Adam refines over the iterations left."""
    out = {"hybrid": {"explore": explore, "cmaes": dict(cmaes)}, "cmaes": dict(cmaes)}
    if adam is not None:
        out["hybrid"]["adam"] = {**adam, "horizon": iterations - explore}
        out["adam"] = {**adam, "horizon": iterations}
    return out


@dataclass(frozen=True)
class TaskDefaults:
    """Settings a task ships with; a scene's task section may override the threshold."""

    success_threshold: float  # success when the task loss is at most this
    iterations: int  # iterations a default run may take
    time_budget_s: float  # wall-time budget of one default run on the 2-core CI machine
    optimizer_settings: Mapping[str, dict] = field(default_factory=dict)  # per optimizer name


@dataclass
class BoundTask:
    """A task on one world: the problem to minimise and how to judge and export a solution.

    tool_motion maps parameters to the tool's (steps + 1, 4) x, y, z, opening; by default the
    parameterization's own motion (when it drives exactly those four channels)."""

    kind: str
    parameterization: Parameterization
    problem: Problem
    defaults: TaskDefaults
    tool: str  # the scene entity the trajectory drives
    tool_motion: Callable[[np.ndarray], np.ndarray] | None = None

    def success(self, loss: float) -> bool:
        return loss <= self.defaults.success_threshold

    def motion(self, x: np.ndarray) -> np.ndarray:
        return self.tool_motion(x) if self.tool_motion else self.parameterization.motion(x)

    def keyframes(self, x: np.ndarray) -> tuple[str, list[dict]]:
        """The solution as scene keyframes (interpolation, [{time, position, opening}]):
        the B-spline's own keyframes when it drives the tool directly, else every step."""
        p = self.parameterization
        if self.tool_motion is None and isinstance(p, SplineKeyframes) and p.channels.names == TOOL_CHANNELS:
            times = p.keyframe_times()
            pts = np.vstack([p.start, np.asarray(x, dtype=np.float64).reshape(p.keyframes - 1, -1)])
            interpolation = "bspline"
        else:
            pts = self.motion(x)
            times = np.arange(len(pts)) * p.dt
            interpolation = "linear"
        frames = [{"time": float(t), "position": [float(v) for v in row[:3]], "opening": float(row[3])} for t, row in zip(times, pts)]
        return interpolation, frames
