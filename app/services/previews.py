"""Runs the studio can show without a physics world: the motion an optimization found.

An optimization report carries parameters; the bound task turns them into the tool's motion
(one row per control step: x, y, z, opening). Its positions, as frames, are the optimization
preview on the timeline: where the optimized tool goes, step by step. Physics frames of
the optimized trajectory come from the simulation service when the scene has bodies.
"""

from __future__ import annotations

import numpy as np

from app.services.frames import EntityFrame, Frame, Run, frozen


def tool_pose(position, rest_pose: np.ndarray) -> np.ndarray:
    """4x4 pose of a tool moved to ``position`` keeping its rest orientation."""
    pose = np.array(rest_pose, dtype=float, copy=True)
    pose[:3, 3] = position
    return pose


def motion_positions(task, params: np.ndarray) -> np.ndarray:
    """(T, 3) tool positions of the motion ``params`` describe (``task``: a BoundTask)."""
    return np.asarray(task.motion(np.asarray(params, dtype=np.float64)))[:, :3]  # rows: x, y, z, opening


def path_run(tool: str, dt: float, positions: np.ndarray, rest_pose: np.ndarray, kind: str = "optimization preview") -> Run:
    """Frames of ``tool`` following (T, 3) ``positions``, one every ``dt`` seconds."""
    run = Run(kind)
    for i, position in enumerate(np.asarray(positions, dtype=float)):
        pose = frozen(tool_pose(position, rest_pose))
        run.append(
            Frame(
                index=i,
                time=i * dt,
                entities={tool: EntityFrame(points=frozen(np.zeros((0, 3))), pose=pose)},
                tool_position=frozen(position),
            )
        )
    return run
