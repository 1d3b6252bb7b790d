"""Joint trajectories, and the mapping from the simulator's tool trajectory to one.

A ``JointTrajectory`` starts at ``start`` (joint positions at t = 0, the state the robot
must be in) and has points at strictly increasing times after 0, each with positions,
velocities and accelerations, like a control_msgs/FollowJointTrajectory goal.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.interpolate import CubicSpline

from robot.kinematics import inverse, pose_matrix
from robot.urdf import RobotModel


@dataclass(frozen=True)
class JointTrajectory:
    joint_names: tuple[str, ...]
    start: np.ndarray  # (n,) [rad] positions at t = 0
    times: np.ndarray  # (m,) [s] time from start of each point
    positions: np.ndarray  # (m, n) [rad]
    velocities: np.ndarray  # (m, n) [rad/s]
    accelerations: np.ndarray  # (m, n) [rad/s^2]
    gripper: np.ndarray | None = None  # (m,) [m] gripper opening at each point

    @property
    def duration(self) -> float:
        return float(self.times[-1]) if len(self.times) else 0.0

    def scaled(self, speed: float) -> JointTrajectory:
        """The same path ``1/speed`` times slower (speed in (0, 1])."""
        if not 0 < speed <= 1:
            raise ValueError(f"speed scaling {speed} is outside (0, 1]")
        return replace(self, times=self.times / speed, velocities=self.velocities * speed,
                       accelerations=self.accelerations * speed**2)


@dataclass(frozen=True)
class ToolTrajectory:
    """Tool poses (base frame) and gripper openings over time, as the simulator optimizes them."""

    times: np.ndarray  # (m,) [s], starting at 0
    positions: np.ndarray  # (m, 3) [m]
    quaternions: np.ndarray  # (m, 4) w, x, y, z
    openings: np.ndarray  # (m,) [m]

    def __post_init__(self) -> None:
        m = len(self.times)
        for name, arr, shape in (("positions", self.positions, (m, 3)), ("quaternions", self.quaternions, (m, 4)),
                                 ("openings", self.openings, (m,))):
            if np.shape(arr) != shape:
                raise ValueError(f"tool trajectory {name} has shape {np.shape(arr)} (expected {shape})")
        if m < 2:
            raise ValueError(f"tool trajectory needs at least 2 samples (got {m})")
        if not np.all(np.isfinite(self.times)) or not np.all(np.diff(self.times) > 0):
            raise ValueError("tool trajectory times must be finite and strictly increasing")


@dataclass(frozen=True)
class Unreachable:
    time: float  # [s]
    position_error: float  # [m] closest distance the arm gets to the pose
    rotation_error: float  # [rad]

    def __str__(self) -> str:
        return (f"t={self.time:.3f} s: tool pose unreachable, {self.position_error * 1000:.1f} mm and "
                f"{np.degrees(self.rotation_error):.1f} deg away at best")


@dataclass(frozen=True)
class Mapping:
    trajectory: JointTrajectory
    unreachable: list[Unreachable] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unreachable


def tool_to_joint(model: RobotModel, tool: ToolTrajectory, seed: np.ndarray | None = None,
                  position_tolerance: float = 1e-3, rotation_tolerance: float = 1e-2) -> Mapping:
    """Joint trajectory following ``tool``: IK per sample (each seeded with the previous
    solution so the arm does not jump between branches), then a clamped cubic spline
    through the solutions (zero velocity at both ends) gives velocities and accelerations.

    Samples the arm cannot reach within the tolerances are listed by time and distance;
    their best-effort joint positions stay in the trajectory, never silently clipped."""
    qs, unreachable = [], []
    q = seed
    for t, p, quat in zip(tool.times, tool.positions, tool.quaternions):
        # Seeded with the neighbour's solution a reachable pose converges at once; few
        # random restarts, since they only pay off for the first pose or a lost branch.
        r = inverse(model, pose_matrix(p, quat), q, position_tolerance=position_tolerance * 0.1,
                    rotation_tolerance=rotation_tolerance * 0.1, restarts=3)
        if r.position_error > position_tolerance or r.rotation_error > rotation_tolerance:
            unreachable.append(Unreachable(float(t - tool.times[0]), r.position_error, r.rotation_error))
        q = r.q
        qs.append(q)
    return Mapping(joint_trajectory_through(model.joint_names, tool.times - tool.times[0], np.array(qs),
                                            tool.openings), unreachable)


def joint_trajectory_through(joint_names: tuple[str, ...], times: np.ndarray, positions: np.ndarray,
                             gripper: np.ndarray | None = None) -> JointTrajectory:
    """Trajectory through ``positions`` at ``times`` (first = the start, at t = 0) with a
    clamped cubic spline: continuous accelerations, zero velocity at both ends."""
    spline = CubicSpline(times, positions, axis=0, bc_type="clamped")
    return JointTrajectory(
        tuple(joint_names), positions[0].copy(), times[1:].copy(), positions[1:].copy(),
        spline(times[1:], 1), spline(times[1:], 2), None if gripper is None else np.asarray(gripper)[1:].copy(),
    )
