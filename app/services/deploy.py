"""Deploying a scene's trajectory to the lab: the app joins the scene document with robot/.

The scene's tool trajectory (keyframes in the world frame, sampled densely) becomes URDF
tool-link poses in the arm's base frame (through the arm entity's transform and the lab's
``tool_offset``), then a joint trajectory by inverse kinematics, re-timed by the speed
scale, preceded by an approach move from the robot's measured state when it is elsewhere,
and checked by the safety gate. Nothing moves unless the gate passes and the robot is armed.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial.transform import Rotation, Slerp

from app.scene.model import Scene, Transform, UrdfShape
from app.scene.paths import resolve_asset
from robot.kinematics import matrix_to_quat, pose_matrix
from robot.safety import SafetyConfig, SafetyReport, Violation, check
from robot.trajectory import JointTrajectory, Mapping, ToolTrajectory, joint_trajectory_through, tool_to_joint
from robot.urdf import RobotModel, load_urdf

SAMPLE_RATE = 50.0  # [Hz] tool poses solved per second of trajectory


class DeployError(ValueError):
    """The scene cannot be deployed as it stands; the message says what is missing."""


@dataclass
class DeployPlan:
    model: RobotModel
    base_pose: np.ndarray  # (4, 4) arm base in the world
    mapping: Mapping  # the tool trajectory's joint trajectory (unscaled) and unreachable poses
    trajectory: JointTrajectory  # what would be sent: approach + scaled trajectory
    gripper_events: list[tuple[float, float]]  # (time [s] in ``trajectory``, opening [m])
    config: SafetyConfig
    approach: float = 0.0  # [s] approach move before the trajectory
    notes: list[str] = field(default_factory=list)


def _matrix(t: Transform) -> np.ndarray:
    return pose_matrix(np.array(t.position), np.array(t.rotation))


def arm_base_pose(scene: Scene) -> np.ndarray:
    """World pose of the arm: the transform of the entity showing the lab's URDF (else identity)."""
    for body in scene.bodies():
        if isinstance(body.shape, UrdfShape) and body.shape.path == scene.lab.arm_urdf:
            return _matrix(body.transform)
    return np.eye(4)


def safety_config(scene: Scene) -> SafetyConfig:
    lab = scene.lab
    return SafetyConfig(position_margin=lab.position_margin, rate_margin=lab.rate_margin,
                        workspace_min=lab.workspace_min, workspace_max=lab.workspace_max, table_z=lab.table_height)


def robot_model(scene: Scene, scene_path: Path | None) -> RobotModel:
    lab = scene.lab
    if lab.arm_urdf is None:
        raise DeployError("the scene's lab section names no arm_urdf (expected e.g. robots/arm7.urdf)")
    model = load_urdf(resolve_asset(scene_path, lab.arm_urdf), tool_link=lab.tool_link)
    if lab.joint_names and tuple(lab.joint_names) != model.joint_names:
        raise DeployError(f"lab.joint_names {lab.joint_names} differ from the URDF's joints {list(model.joint_names)} "
                          f"(expected the same names in the same order)")
    return model


def sample_keyframes(scene: Scene, rate: float = SAMPLE_RATE) -> ToolTrajectory:
    """The scene's tool trajectory in the world frame, sampled at ``rate`` (and every keyframe).

    Positions follow the trajectory's interpolation (cubic: a spline with zero velocity at
    both ends; bspline keyframes are interpolated by the same cubic), orientations are
    slerped, openings are linear between keyframes."""
    traj = scene.trajectory
    if traj is None or len(traj.keyframes) < 2:
        raise DeployError("the scene has no trajectory with at least 2 keyframes to deploy")
    kt = np.array([k.time for k in traj.keyframes])
    kp = np.array([k.position for k in traj.keyframes])
    times = np.union1d(np.arange(kt[0], kt[-1], 1.0 / rate), kt)
    if traj.interpolation == "linear":
        positions = np.stack([np.interp(times, kt, kp[:, i]) for i in range(3)], axis=1)
    else:
        positions = CubicSpline(kt, kp, axis=0, bc_type="clamped")(times)
    quats_xyzw = [np.roll(k.rotation, -1) for k in traj.keyframes]
    rotations = Slerp(kt, Rotation.from_quat(quats_xyzw))(times).as_quat()
    quats = np.roll(rotations, 1, axis=1)
    openings = np.interp(times, kt, [k.opening for k in traj.keyframes])
    return ToolTrajectory(times - kt[0], positions, quats, openings)


def to_base_frame(tool: ToolTrajectory, base_pose: np.ndarray, tool_offset: np.ndarray) -> ToolTrajectory:
    """World tool poses -> poses of the URDF tool link in the arm base frame."""
    world_to_base = np.linalg.inv(base_pose)
    positions, quats = [], []
    for p, q in zip(tool.positions, tool.quaternions):
        m = world_to_base @ pose_matrix(p, q) @ tool_offset
        positions.append(m[:3, 3])
        quats.append(matrix_to_quat(m[:3, :3]))
    return replace(tool, positions=np.array(positions), quaternions=np.array(quats))


def approach_move(model: RobotModel, start: np.ndarray, goal: np.ndarray, config: SafetyConfig,
                  rate: float = SAMPLE_RATE) -> JointTrajectory | None:
    """A smooth joint-space move from ``start`` to ``goal`` at under a quarter of the
    velocity and acceleration limits (None when already there)."""
    delta = np.asarray(goal) - np.asarray(start)
    if np.all(np.abs(delta) <= config.start_tolerance / 2):
        return None
    vmax = model.limit_array("velocity") * 0.25
    amax = model.limit_array("acceleration") * 0.25
    # A cosine profile peaks at pi/2 |d|/T in speed and pi^2/2 |d|/T^2 in acceleration.
    duration = max(0.5, float(np.max(np.pi / 2 * np.abs(delta) / vmax)),
                   float(np.max(np.sqrt(np.pi**2 / 2 * np.abs(delta) / amax))))
    times = np.linspace(0.0, duration, max(3, int(np.ceil(duration * rate)) + 1))
    s = 0.5 - 0.5 * np.cos(np.pi * times / duration)
    return joint_trajectory_through(model.joint_names, times, start + np.outer(s, delta))


def then(first: JointTrajectory, second: JointTrajectory) -> JointTrajectory:
    """``first`` followed by ``second`` (which starts where ``first`` ends, at rest)."""
    gripper = None
    if second.gripper is not None:
        hold = np.full(len(first.times), second.gripper[0])
        gripper = np.concatenate([hold, second.gripper])
    return JointTrajectory(first.joint_names, first.start, np.concatenate([first.times, first.duration + second.times]),
                           np.vstack([first.positions, second.positions]),
                           np.vstack([first.velocities, second.velocities]),
                           np.vstack([first.accelerations, second.accelerations]), gripper)


def plan(scene: Scene, scene_path: Path | None, speed: float = 1.0, measured: np.ndarray | None = None,
         rate: float = SAMPLE_RATE) -> DeployPlan:
    """The joint trajectory the scene's tool trajectory asks of the arm (see the module doc)."""
    if not 0 < speed <= 1:
        raise DeployError(f"speed {speed} is outside (0, 1]")
    model = robot_model(scene, scene_path)
    config = safety_config(scene)
    base = arm_base_pose(scene)
    tool = to_base_frame(sample_keyframes(scene, rate), base, _matrix(scene.lab.tool_offset))
    seed = model.mid_configuration() if measured is None else np.asarray(measured, dtype=float)
    mapping = tool_to_joint(model, tool, seed=seed)
    traj = mapping.trajectory.scaled(speed)
    notes, approach = [], 0.0
    events = [(float(t / speed), float(o)) for t, o in _gripper_changes(scene)]
    if measured is not None:
        move = approach_move(model, measured, traj.start, config, rate)
        if move is not None:
            approach = move.duration
            notes.append(f"approach: {approach:.2f} s joint move from the measured state to the trajectory's start")
            traj = then(move, traj)
            events = [(t + approach, o) for t, o in events]
    else:
        notes.append("no measured robot state: planned from the middle of the joint ranges")
    return DeployPlan(model, base, mapping, traj, events, config, approach, notes)


def _gripper_changes(scene: Scene) -> list[tuple[float, float]]:
    """(time, opening): the gripper starts moving to each keyframe's new opening when the
    keyframe before it is reached."""
    frames = scene.trajectory.keyframes if scene.trajectory else []
    t0 = frames[0].time if frames else 0.0
    return [(a.time - t0, b.opening) for a, b in zip(frames, frames[1:]) if b.opening != a.opening]


def preflight(p: DeployPlan, measured: np.ndarray | None) -> SafetyReport:
    """The safety gate on the plan, with unreachable tool poses as violations too."""
    report = check(p.model, p.trajectory, measured, p.config)
    unreachable = [Violation("unreachable", f"{u}", time=u.time, value=u.position_error) for u in p.mapping.unreachable]
    return SafetyReport(unreachable + report.violations, p.notes + report.notes)


def load_solution(scene: Scene, path: Path) -> Scene:
    """The scene with the trajectory of an optimization result (best.json of `deft optimize`)."""
    try:
        solution = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise DeployError(f"cannot read trajectory file {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise DeployError(f"trajectory file {path} is not JSON: {e}") from None
    if not isinstance(solution, dict) or not isinstance(solution.get("trajectory"), dict):
        raise DeployError(f"trajectory file {path} has no 'trajectory' (expected deft optimize's best.json)")
    from app.services.optimize_tasks import scene_with_solution

    try:
        return scene_with_solution(scene, solution)
    except (KeyError, TypeError, ValueError) as e:
        raise DeployError(f"trajectory file {path}: {e}") from None


class GripperSchedule:
    """Calls ``grip(opening)`` at the plan's gripper times during an execution, on its own thread."""

    def __init__(self, grip, events: list[tuple[float, float]], stop: threading.Event) -> None:
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(grip, events, stop), daemon=True)
        self._thread.start()

    def _run(self, grip, events, stop) -> None:
        t0 = time.monotonic()
        for at, opening in events:
            if stop.wait(max(0.0, t0 + at - time.monotonic())):
                return
            try:
                grip(opening)
            except (TimeoutError, RuntimeError, ValueError) as e:  # SerialLinkError is a RuntimeError
                self.errors.append(f"gripper to {opening * 1000:.1f} mm at t={at:.2f} s: {e}")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def lab_topics(scene: Scene, controller: str | None = None):
    """The ROS 2 names of the scene's lab (``controller`` overrides the scene's)."""
    from robot.ros2.link import LabTopics

    lab = scene.lab
    return LabTopics(controller or lab.controller, tuple(lab.joint_names), lab.joint_states_topic, lab.gripper_topic,
                     dict(lab.tactile_topics))


FORCE_TOPIC = "/deft/force_sensor/wrench"  # where recordings keep the serial force sensor's samples
TAXEL_TOPIC = "/deft/force_sensor/taxels"


def sensor_listeners(recorder=None, guard=None) -> list:
    """Listeners of serial sensor samples: recording forces and taxel images, feeding a guard."""
    from robot.serial.force_stream import FORCE

    out = []
    if recorder is not None:
        out.append(lambda s: recorder.wrench(FORCE_TOPIC, time.time_ns(), s.values[:3], s.values[3:])
                   if s.kind == FORCE else recorder.image(TAXEL_TOPIC, time.time_ns(), s.values))
    if guard is not None:
        out.append(lambda s: guard.force(s.time, s.values) if s.kind == FORCE else None)
    return out


def execute_plan(link, p: DeployPlan, arming, measured: np.ndarray, grip=None, sensor=None, monitors=(),
                 recorder=None, margin: float = 5.0):
    """Gate the plan (unreachable poses included) on ``measured``, then run it through
    ``link`` if armed: gripper openings sent on time through ``grip(opening)`` (default:
    the link's ROS gripper), the serial force ``sensor`` (a SensorStream, optional)
    recorded and fed to ``monitors`` that cancel the motion when they trip.

    Returns (Outcome, notes); raises robot.execution.GateRefused or NotArmed before
    anything moves."""
    from robot.execution import GateRefused, send_checked
    from robot.monitors import MotionGuard
    from robot.serial.force_stream import SensorPump

    report = preflight(p, measured)
    if not report.passed:
        raise GateRefused(report)
    stop_errors: list[str] = []

    def stop_motion() -> None:
        running = link.active
        if running is not None and running.outcome is None:
            try:
                running.cancel()
            except TimeoutError as e:
                stop_errors.append(f"STOP NOT CONFIRMED: {e}; check the robot")

    guard = MotionGuard(stop_motion, list(monitors)) if monitors else None
    pump = None
    if sensor is not None:
        pump = SensorPump(sensor, sensor_listeners(recorder, guard), guard.sensor_failed if guard else None)
    try:
        if guard is not None and guard.tripped is not None:  # e.g. the sensor failed already
            raise RuntimeError(f"not started: {guard.tripped}")
        ex, _ = send_checked(link, p.model, p.trajectory, arming, p.config)
        if guard is not None and guard.tripped is not None:
            stop_motion()  # tripped while the goal was on its way
        stop = threading.Event()
        gripper = GripperSchedule(grip or (lambda opening: link.grip(opening, timeout=5.0)), p.gripper_events, stop)
        outcome = ex.wait(p.trajectory.duration + margin)
        if outcome.status == "timeout":
            stop_motion()  # never leave a motion running unattended
        stop.set()
        gripper.join(5.0)
        if recorder is not None and not link.wait_state_after(time.time_ns(), timeout=2.0):
            stop_errors.append("recording may lack the final pose: no joint state arrived after the motion ended")
    finally:
        if pump is not None:
            pump.stop()
    notes = stop_errors + list(gripper.errors)
    if guard is not None and guard.tripped is not None:
        notes.append(f"stopped by {guard.tripped}")
    if pump is not None and pump.error is not None:
        notes.append(f"force sensor: {pump.error}")
    return outcome, notes


def report_rows(report: SafetyReport) -> list[tuple[str, float, str, str]]:
    """The gate's violations as (joint, time [s], limit, description) rows for the deploy panel."""
    rows = []
    for v in report.violations:
        limit = "" if v.limit is None else f"{v.limit:.4g}"
        rows.append((v.joint or "-", v.time if v.time is not None else float("nan"), limit, v.message))
    return rows
