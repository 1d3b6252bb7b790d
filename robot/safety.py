"""The safety gate: a pure check of a joint trajectory before anything moves.

It checks what ros2_control's joint_trajectory_controller and MoveIt check, and more:
joint names, position/velocity/acceleration/jerk limits (URDF, with a margin), workspace
bounds and the table plane, timing, zero final velocity, and the start state against the
robot's measured state. Every violation is reported by kind, joint and time; contiguous
runs of one violation on one joint become one entry with its worst value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot.kinematics import link_frames
from robot.trajectory import JointTrajectory
from robot.urdf import RobotModel

START_TOLERANCE = 0.01  # [rad] largest start-state error, as joint_trajectory_controller's default


@dataclass(frozen=True)
class SafetyConfig:
    position_margin: float = 0.0  # [rad] kept clear of each URDF position limit
    rate_margin: float = 0.0  # fraction taken off velocity, acceleration and jerk limits, in [0, 1)
    workspace_min: tuple[float, float, float] = (-1.0, -1.0, -0.5)  # [m] tool box, base frame
    workspace_max: tuple[float, float, float] = (1.0, 1.0, 1.5)  # [m]
    table_z: float | None = 0.0  # [m] no moving link frame below this plane (None: no table)
    start_tolerance: float = START_TOLERANCE  # [rad]
    final_velocity_tolerance: float = 1e-6  # [rad/s]

    def __post_init__(self) -> None:
        if not 0 <= self.rate_margin < 1:
            raise ValueError(f"rate_margin {self.rate_margin} is outside [0, 1)")
        if self.position_margin < 0 or self.start_tolerance <= 0:
            raise ValueError("position_margin must be >= 0 and start_tolerance > 0")
        if not all(lo < hi for lo, hi in zip(self.workspace_min, self.workspace_max)):
            raise ValueError(f"workspace_min {self.workspace_min} is not below workspace_max {self.workspace_max}")


@dataclass(frozen=True)
class Violation:
    kind: str  # joint_names, timing, position, velocity, acceleration, jerk, final_velocity, workspace, table, start_state
    message: str
    joint: str | None = None
    time: float | None = None  # [s] first time of the violation
    until: float | None = None  # [s] last time of a contiguous run
    value: float | None = None  # worst value
    limit: float | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class SafetyReport:
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations

    def kinds(self) -> set[str]:
        return {v.kind for v in self.violations}

    def text(self) -> str:
        head = "safety gate: PASSED" if self.passed else f"safety gate: REFUSED ({len(self.violations)} violations)"
        return "\n".join([head] + [f"  - {v}" for v in self.violations] + [f"  note: {n}" for n in self.notes])


def _when(t0: float, t1: float) -> str:
    return f"t={t0:.3f} s" if t0 == t1 else f"t={t0:.3f}..{t1:.3f} s"


def _runs(kind: str, what: str, unit: str, values: np.ndarray, bound: np.ndarray, times: np.ndarray,
          names: tuple[str, ...]) -> list[Violation]:
    """One violation per contiguous run of |values| > bound on each joint (values: (m, n))."""
    out = []
    over = np.abs(values) > bound
    for j, name in enumerate(names):
        idx = np.flatnonzero(over[:, j])
        if not len(idx):
            continue
        for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
            worst = run[np.argmax(np.abs(values[run, j]))]
            t0, t1 = float(times[run[0]]), float(times[run[-1]])
            out.append(Violation(kind, f"{name}: {what} {values[worst, j]:.4g} {unit} exceeds the limit "
                                       f"{bound[j]:.4g} {unit} at {_when(t0, t1)}",
                                 name, t0, t1, float(values[worst, j]), float(bound[j])))
    return out


def _position_runs(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, times: np.ndarray,
                   names: tuple[str, ...]) -> list[Violation]:
    out = []
    for j, name in enumerate(names):
        for side, bad, bound in (("below the lower", q[:, j] < lo[j], lo[j]), ("above the upper", q[:, j] > hi[j], hi[j])):
            idx = np.flatnonzero(bad)
            for run in (np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if len(idx) else []):
                worst = run[np.argmax(np.abs(q[run, j] - bound))]
                t0, t1 = float(times[run[0]]), float(times[run[-1]])
                out.append(Violation("position", f"{name}: position {q[worst, j]:.4f} rad is {side} limit "
                                                 f"{bound:.4f} rad at {_when(t0, t1)}",
                                     name, t0, t1, float(q[worst, j]), float(bound)))
    return out


def check(model: RobotModel, traj: JointTrajectory, measured: np.ndarray | None,
          config: SafetyConfig = SafetyConfig()) -> SafetyReport:
    """Every reason ``traj`` must not be sent to the robot described by ``model``, whose
    measured joint positions (in ``model.joint_names`` order) are ``measured``."""
    v: list[Violation] = []
    notes: list[str] = []
    names = model.joint_names
    given = tuple(traj.joint_names)
    unknown = [n for n in given if n not in names]
    missing = [n for n in names if n not in given]
    dupes = sorted({n for n in given if given.count(n) > 1})
    if unknown:
        v.append(Violation("joint_names", f"unknown joints {unknown} (the robot has {list(names)})"))
    if missing:
        v.append(Violation("joint_names", f"missing joints {missing} (every joint of {list(names)} must be given)"))
    if dupes:
        v.append(Violation("joint_names", f"joints named twice: {dupes}"))
    if v:
        return SafetyReport(v)
    order = [given.index(n) for n in names]
    m, n = len(traj.times), len(names)
    arrays = {"start": traj.start[order], "positions": traj.positions[:, order],
              "velocities": traj.velocities[:, order], "accelerations": traj.accelerations[:, order]}
    shapes = {"start": (n,), "positions": (m, n), "velocities": (m, n), "accelerations": (m, n)}
    for key, arr in arrays.items():
        if arr.shape != shapes[key]:
            v.append(Violation("shape", f"{key} has shape {arr.shape} (expected {shapes[key]})"))
        elif not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(np.atleast_2d(arr)))[0]
            v.append(Violation("not_finite", f"{key} holds NaN or inf (first at point {bad[0]}, joint {names[bad[-1]]})",
                               names[bad[-1]]))
    if m == 0:
        v.append(Violation("timing", "the trajectory has no points"))
    if v:
        return SafetyReport(v)
    t = np.asarray(traj.times, dtype=float)
    q0, q, qd, qdd = arrays["start"], arrays["positions"], arrays["velocities"], arrays["accelerations"]

    # Timing: every point after t = 0 and after the one before it.
    if not np.all(np.isfinite(t)):
        return SafetyReport([Violation("timing", "times hold NaN or inf")])
    if t[0] <= 0:
        v.append(Violation("timing", f"first point at t={t[0]:.3f} s (expected after t=0; t=0 is the start state)",
                           time=float(t[0])))
    for i in np.flatnonzero(np.diff(t) <= 0):
        v.append(Violation("timing", f"point {i + 1} at t={t[i + 1]:.3f} s is not after point {i} at "
                                     f"t={t[i]:.3f} s (expected strictly increasing times)", time=float(t[i + 1])))
    timing_ok = not v

    lo = model.limit_array("lower") + config.position_margin
    hi = model.limit_array("upper") - config.position_margin
    rate = 1 - config.rate_margin
    vmax, amax, jmax = (model.limit_array(k) * rate for k in ("velocity", "acceleration", "jerk"))
    v += _position_runs(np.vstack([q0, q]), lo, hi, np.concatenate([[0.0], t]), names)
    v += _runs("velocity", "velocity", "rad/s", qd, vmax, t, names)
    v += _runs("acceleration", "acceleration", "rad/s^2", qdd, amax, t, names)
    if timing_ok:
        # Rates implied by the points themselves, so a trajectory cannot pass with
        # understated velocity or acceleration fields.
        dt = np.diff(np.concatenate([[0.0], t]))[:, None]
        v += _runs("velocity", "velocity between points", "rad/s", np.diff(np.vstack([q0, q]), axis=0) / dt, vmax, t, names)
        v += _runs("acceleration", "acceleration between points", "rad/s^2",
                   np.diff(np.vstack([np.zeros(n), qd]), axis=0) / dt, amax, t, names)
        v += _runs("jerk", "jerk", "rad/s^3", np.diff(np.vstack([np.zeros(n), qdd]), axis=0) / dt, jmax, t, names)
    for j in np.flatnonzero(np.abs(qd[-1]) > config.final_velocity_tolerance):
        v.append(Violation("final_velocity", f"{names[j]}: final velocity {qd[-1, j]:.4g} rad/s at "
                                             f"t={t[-1]:.3f} s (expected 0)", names[j], float(t[-1]), value=float(qd[-1, j])))
    v += _workspace(model, np.vstack([q0, q]), np.concatenate([[0.0], t]), config)

    if measured is None:
        notes.append("start state not checked: no measured joint state")
    else:
        measured = np.asarray(measured, dtype=float)
        if measured.shape != (n,):
            v.append(Violation("start_state", f"measured state has shape {measured.shape} (expected ({n},))"))
        else:
            for j in np.flatnonzero(~(np.abs(q0 - measured) <= config.start_tolerance)):
                v.append(Violation("start_state", f"{names[j]}: trajectory starts at {q0[j]:.4f} rad but the robot "
                                                  f"is at {measured[j]:.4f} rad (more than {config.start_tolerance} "
                                                  f"rad apart) at t=0.000 s", names[j], 0.0,
                                   value=float(q0[j] - measured[j]), limit=config.start_tolerance))
    return SafetyReport(v, notes)


def _workspace(model: RobotModel, q: np.ndarray, times: np.ndarray, config: SafetyConfig) -> list[Violation]:
    frames = link_frames(model, q)  # per chain joint, (m, 4, 4)
    out = []
    tool = frames[-1][:, :3, 3]
    lo, hi = np.array(config.workspace_min), np.array(config.workspace_max)
    outside = np.flatnonzero(np.any((tool < lo) | (tool > hi), axis=1))
    for run in (np.split(outside, np.flatnonzero(np.diff(outside) > 1) + 1) if len(outside) else []):
        i = run[0]
        out.append(Violation("workspace", f"tool at {np.round(tool[i], 3).tolist()} m leaves the workspace "
                                          f"{list(config.workspace_min)}..{list(config.workspace_max)} m at "
                                          f"{_when(float(times[run[0]]), float(times[run[-1]]))}",
                             time=float(times[run[0]]), until=float(times[run[-1]])))
    if config.table_z is not None:
        first_moving = next(i for i, j in enumerate(model.chain) if j.kind != "fixed")
        for joint, f in list(zip(model.chain, frames))[first_moving:]:
            below = np.flatnonzero(f[:, 2, 3] < config.table_z)
            for run in (np.split(below, np.flatnonzero(np.diff(below) > 1) + 1) if len(below) else []):
                i = run[np.argmin(f[run, 2, 3])]
                out.append(Violation("table", f"link {joint.child!r} goes {(config.table_z - f[i, 2, 3]) * 1000:.1f} mm "
                                              f"below the table (z={config.table_z} m) at "
                                              f"{_when(float(times[run[0]]), float(times[run[-1]]))}",
                                     time=float(times[run[0]]), until=float(times[run[-1]]), value=float(f[i, 2, 3]),
                                     limit=config.table_z))
    return out
