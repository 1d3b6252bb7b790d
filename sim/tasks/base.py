"""What a task bound to a world offers the optimization runner, independent of the solver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from sim.optim.parameterization import Parameterization, SplineKeyframes
from sim.optim.problem import Problem


@dataclass(frozen=True)
class TaskDefaults:
    """Settings a task ships with; a scene's task section may override the threshold."""

    success_threshold: float  # success when the task loss is at most this
    iterations: int  # iterations a default run may take
    time_budget_s: float  # wall-time budget of one default run on the 2-core CI machine
    optimizer_settings: Mapping[str, dict] = field(default_factory=dict)  # per optimizer name


@dataclass
class BoundTask:
    """A task on one world: the problem to minimise and how to judge and export a solution."""

    kind: str
    parameterization: Parameterization
    problem: Problem
    defaults: TaskDefaults
    tool: str  # the scene entity the trajectory drives
    channel_names: tuple[str, ...] = ("x", "y", "z", "opening")

    def success(self, loss: float) -> bool:
        return loss <= self.defaults.success_threshold

    def keyframes(self, x: np.ndarray) -> tuple[str, list[dict]]:
        """The solution as scene keyframes (interpolation, [{time, position, opening}])."""
        p = self.parameterization
        if isinstance(p, SplineKeyframes):
            times = p.keyframe_times()
            pts = np.vstack([p.start, np.asarray(x, dtype=np.float64).reshape(p.keyframes - 1, -1)])
            interpolation = "bspline"
        else:
            pts = p.motion(x)
            times = np.arange(len(pts)) * p.dt
            interpolation = "linear"
        names = self.channel_names
        frames = []
        for t, row in zip(times, pts):
            values = dict(zip(names, map(float, row)))
            frames.append({"time": float(t), "position": [values["x"], values["y"], values["z"]], "opening": values["opening"]})
        return interpolation, frames
