"""Simulates a scene document into a run of frames (called on the simulation thread).

The scene is compiled (app.compile) into a world spec, the world is stepped along the
trajectory, and every few steps the shells' vertices, the tools' poses and the volumetric
bodies (FEM surfaces, MPM particles, tactile readings) are copied into an immutable frame. What the compiler could not simulate is reported with the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from app.services.frames import EntityFrame, Frame, Run, frozen
from app.services.sim_thread import CancelToken

MAX_FRAMES = 240  # frames kept per run (scrubbing needs no more; memory stays small)


class SimulationUnavailable(RuntimeError):
    """This build cannot simulate the scene; the message says what is missing."""


def simulate_scene(scene, scene_path: Path | None, token: CancelToken | None = None,
                   progress: Callable[[int, int], None] | None = None) -> tuple[Run, tuple[str, ...]]:
    """(the run, "entity: why" for every entity left out of the simulation)."""
    from app.compile import compile_scene
    from sim.world import World

    try:
        compiled = compile_scene(scene, scene_path)
    except ValueError as exc:
        raise SimulationUnavailable(str(exc)) from None
    spec = compiled.spec
    world = World(spec)
    steps = spec.settings.steps
    stride = max(1, -(-steps // MAX_FRAMES))
    run = Run("simulation")
    run.append(world_frame(world, 0, 0))
    for step in range(1, steps + 1):
        if token is not None:
            token.raise_if_cancelled()
        world.step()
        if step % stride == 0 or step == steps:
            run.append(world_frame(world, len(run), step))
            if progress is not None:
                progress(step, steps)
    return run, compiled.skipped


def world_frame(world, index: int, step: int, readings: dict | None = None) -> Frame:
    """Frame ``index`` of a run: the world as it is after ``step`` steps (shells, tools at the
    step's action, volumetric bodies and tactile readings; ``readings``: the pads' readings
    at that step, where the caller has them already)."""
    from app.compile.volumetric import frame_parts
    from robot.kinematics import pose_matrix

    spec = world.spec
    x = world.get_state()[world.shells.name]["x"] if world.shells is not None else np.zeros((0, 3))
    entities, start = {}, 0
    for shell in spec.shells:
        entities[shell.name] = EntityFrame(points=frozen(x[start:start + len(shell.vertices)]))
        start += len(shell.vertices)
    action = world.actions[max(step - 1, 0)] if step else spec.default_actions()[0]
    for slot, tool in enumerate(spec.tools):
        entities[tool.name] = EntityFrame(points=frozen(np.zeros((0, 3))),
                                          pose=frozen(pose_matrix(action[slot, :3], action[slot, 3:7])),
                                          opening=float(action[slot, 7]) if tool.kind == "parallel_jaw" else None)
    tool_position = frozen(action[0, :3]) if len(spec.tools) else None
    tactile = {}
    if world.volumetric is not None:  # volumetric hook: pads, FEM soft bodies, MPM particles
        volumetric, tactile = frame_parts(world, step, readings)
        entities.update(volumetric)
    return Frame(index=index, time=step * spec.settings.dt, entities=entities, tool_position=tool_position,
                 tactile=tactile)


def runtime_message() -> str:
    """Where simulation kernels run, for the About box and status messages."""
    from sim.runtime import current_runtime

    runtime = current_runtime()
    return runtime.message if runtime else "Taichi not started yet (it starts on the first simulation)"


def warm_up(backend: str, precision: str) -> str:
    """Run once on the simulation thread after the window shows: start Taichi, so the first
    Simulate does not pay for it (and does not hold the import lock while the GUI thread
    imports). Returns where kernels will run. Optimizations run in their own process."""
    from app.services.native_libraries import preload_extensions

    preload_extensions("taichi")  # with the interpreter lock released: the GUI thread runs meanwhile
    from sim.runtime import RuntimeConfig, ensure_runtime

    return ensure_runtime(RuntimeConfig(backend=backend, precision=precision)).message
