"""Scene document -> bound task (the app joins the scene, the simulator and sim.tasks), and
an optimized solution -> a scene whose trajectory is the solution."""

from __future__ import annotations

import numpy as np

from app.scene.model import Gripper, Keyframe, Scene, Trajectory
from sim.tasks.base import BoundTask
from sim.tasks.registry import TaskContext, TermSpec, task_definition


class TaskSetupError(ValueError):
    """The scene cannot be optimized as it stands (no tool, unknown task, ...)."""


def _tool(scene: Scene) -> Gripper:
    name = scene.trajectory.tool if scene.trajectory else None
    grippers = scene.grippers()
    if name is None:
        if not grippers:
            raise TaskSetupError("the scene has no gripper for the trajectory to drive (add one, or a trajectory with a tool)")
        return grippers[0]
    tool = scene.entity(name)
    if not isinstance(tool, Gripper):
        raise TaskSetupError(f"trajectory tool {name!r} is a body, not a gripper; optimization drives grippers")
    return tool


def task_context(scene: Scene, world=None, particles=None) -> TaskContext:
    tool = _tool(scene)
    first = scene.trajectory.keyframes[0] if scene.trajectory and scene.trajectory.keyframes else None
    start = np.array([*(first.position if first else tool.transform.position), first.opening if first else tool.opening])
    return TaskContext(
        horizon=scene.simulation.horizon,
        dt=scene.simulation.dt,
        tool=tool.name,
        tool_start=start,
        opening_range=tuple(tool.opening_range),
        terms=[TermSpec(t.kind, t.weight, t.entity, tuple(t.target)) for t in scene.task.loss],
        success_threshold=scene.task.success_threshold,
        world=world,
        bodies=[b.model_dump(mode="json") for b in scene.bodies()],
        sensors=[s.model_dump(mode="json") for s in tool.sensors],
        tool_rotation=tuple(tool.transform.rotation),
        finger_size=tuple(tool.finger_size),
        particles=particles,
    )


def bind_scene_task(scene: Scene) -> BoundTask:
    """The scene's task, bound to a world built from the scene when the task simulates."""
    try:
        definition = task_definition(scene.task.kind)
    except KeyError as e:
        raise TaskSetupError(str(e.args[0])) from None
    world = None  # kinematic, tactile and volumetric tasks build their own rigs from the context
    if definition.family == "shell":
        from app.compile import compile_scene
        from sim.world import World

        world = World(compile_scene(scene).spec)
    particles = None
    if definition.family == "volumetric":
        from app.compile.volumetric import mpm_body_spec

        particles = lambda name, grid: mpm_body_spec(scene.entity(name), grid)  # noqa: E731
    return definition.bound(task_context(scene, world, particles))


def scene_with_solution(scene: Scene, solution: dict) -> Scene:
    """A copy of the scene whose trajectory is an optimized solution (best.json's)."""
    traj = solution["trajectory"]
    tool = scene.entity(traj["tool"])
    rotation = tool.transform.rotation
    frames = [Keyframe(time=f["time"], position=tuple(f["position"]), rotation=rotation, opening=f["opening"]) for f in traj["keyframes"]]
    out = scene.model_copy(deep=True)
    out.trajectory = Trajectory(tool=traj["tool"], interpolation=traj["interpolation"], keyframes=frames)
    return out
