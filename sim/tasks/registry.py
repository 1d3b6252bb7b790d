"""Task definitions by kind, and the plain context the app binds them with.

sim must not import app, so the app turns a scene's task section into a TaskContext (the
tool's start, the horizon, loss-term overrides and the built simulator world) and asks the
task's definition to bind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sim.optim.parameterization import Channels, SpeedLimit, SplineKeyframes
from sim.tasks.base import BoundTask, TaskDefaults


@dataclass(frozen=True)
class TermSpec:
    """One loss term of a scene's task section: its kind, weight, entity and target."""

    kind: str
    weight: float = 1.0
    entity: str | None = None
    target: tuple[float, ...] = ()


@dataclass
class TaskContext:
    horizon: int  # control steps
    dt: float  # seconds per control step
    tool: str  # gripper the trajectory drives
    tool_start: np.ndarray  # x, y, z (m) and opening (m) at t = 0
    opening_range: tuple[float, float]
    terms: list[TermSpec] = field(default_factory=list)
    success_threshold: float | None = None  # None: the task's own
    world: Any = None  # the built simulator world, for tasks that simulate
    bodies: list[dict] = field(default_factory=list)  # the scene's bodies as plain data (SI)
    sensors: list[dict] = field(default_factory=list)  # the tool's tactile sensors as plain data
    tool_rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # w, x, y, z
    finger_size: tuple[float, float, float] = (0.02, 0.01, 0.05)  # closing x, depth y, length z (m)
    # samples a scene body (by name) into MPM particles on a grid: MpmBodySpec(name, grid)
    particles: Callable[[str, Any], Any] | None = None

    def term(self, kind: str) -> TermSpec | None:
        return next((t for t in self.terms if t.kind == kind), None)

    def target(self, kind: str, default, size: int) -> np.ndarray:
        """A term's target from the scene, or the task's default; its length is checked."""
        spec = self.term(kind)
        value = np.asarray(spec.target if spec and spec.target else default, dtype=np.float64)
        if value.shape != (size,):
            raise ValueError(f"loss term {kind!r} needs a target of {size} values, got {list(value)}")
        return value

    def weight(self, kind: str, default: float) -> float:
        spec = self.term(kind)
        return spec.weight if spec else default

    def body(self, name: str) -> dict:
        for b in self.bodies:
            if b["name"] == name:
                return b
        raise ValueError(f"the task needs a body named {name!r}; the scene has {[b['name'] for b in self.bodies]}")


@dataclass(frozen=True)
class Workspace:
    """Where the tool may go, relative to its start, and how fast (defaults of most tasks)."""

    reach: tuple[float, float, float] = (0.25, 0.25, 0.25)  # m either side of the start
    floor: float = 0.0  # lowest z (m)
    max_speed: float = 0.5  # m/s
    max_opening_speed: float = 0.2  # m/s

    def spline(self, ctx: TaskContext, keyframes: int) -> SplineKeyframes:
        start = np.asarray(ctx.tool_start, dtype=np.float64)
        lo = [start[i] - self.reach[i] for i in range(3)]
        lo[2] = max(lo[2], min(self.floor, start[2]))
        hi = [start[i] + self.reach[i] for i in range(3)]
        channels = Channels(
            ("x", "y", "z", "opening"),
            (*lo, ctx.opening_range[0]),
            (*hi, ctx.opening_range[1]),
            (SpeedLimit((0, 1, 2), self.max_speed), SpeedLimit((3,), self.max_opening_speed)),
        )
        return SplineKeyframes(channels, ctx.horizon, ctx.dt, start, keyframes)


@dataclass(frozen=True)
class TaskDefinition:
    kind: str
    family: str  # "kinematic", "shell", "tactile" or "volumetric"
    description: str
    scene: str  # shipped scene, relative to assets/scenes/tasks/
    defaults: TaskDefaults
    bind: Callable[[TaskContext, TaskDefaults], BoundTask]

    def bound(self, ctx: TaskContext) -> BoundTask:
        defaults = self.defaults
        if ctx.success_threshold is not None:
            defaults = TaskDefaults(ctx.success_threshold, defaults.iterations, defaults.time_budget_s, defaults.optimizer_settings)
        return self.bind(ctx, defaults)


TASKS: dict[str, TaskDefinition] = {}


def register(definition: TaskDefinition) -> TaskDefinition:
    if definition.kind in TASKS:
        raise ValueError(f"task kind {definition.kind!r} is registered twice")
    TASKS[definition.kind] = definition
    return definition


def task_definition(kind: str) -> TaskDefinition:
    _load_suite()
    try:
        return TASKS[kind]
    except KeyError:
        raise KeyError(f"no task of kind {kind!r}; the suite has {sorted(TASKS)}") from None


def all_tasks() -> list[TaskDefinition]:
    _load_suite()
    return list(TASKS.values())


def _load_suite() -> None:
    """Import the modules that register the shipped tasks (once)."""
    import sim.tasks.reach  # noqa: F401
    import sim.tasks.shell  # noqa: F401
    import sim.tasks.tactile  # noqa: F401
    import sim.tasks.tactile_rigid  # noqa: F401
    import sim.tasks.volumetric  # noqa: F401
