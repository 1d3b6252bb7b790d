"""``deft lab-sim``: stand-ins for the lab's ROS 2 nodes, run in their own process.

- an arm controller that behaves like ros2_control's joint_trajectory_controller: the
  ``<controller>/follow_joint_trajectory`` action and the ``<controller>/joint_trajectory``
  topic, goals validated as JTC does (joint names, sizes, strictly increasing times, end
  time not in the past), cubic/quintic interpolation from the current state, feedback at
  20 Hz, joint states at 100 Hz, path/goal tolerances and goal time tolerance (0 in a goal:
  the controller's default; negative: unchecked), cancel (hold position at once) and
  preemption (a new goal aborts the running one);
- a parallel gripper (control_msgs/action/GripperCommand) that stalls on an object;
- tactile sensors publishing mono8 images (sensor-data QoS), pressed while the gripper holds.

Faults for rehearsal: a std_msgs/String on ``/lab_sim/stuck_joints`` (comma-separated
names) freezes those joints, so the tolerances trip.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

GRIPPER_JOINT = "gripper_opening"  # the gripper's opening [m], published on the joint states topic


@dataclass
class LabSimConfig:
    controller: str = "joint_trajectory_controller"
    joints: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 8))
    initial: tuple[float, ...] = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
    joint_states_topic: str = "/joint_states"
    gripper_action: str = "/gripper/command"
    tactile_topics: dict[str, str] = field(default_factory=dict)
    goal_tolerance: float = 0.02  # [rad] default goal position tolerance
    path_tolerance: float = 0.0  # [rad] default path tolerance (0: unchecked, as JTC's default)
    goal_time: float = 0.5  # [s] default goal time tolerance
    stopped_velocity_tolerance: float = 0.01  # [rad/s]
    gripper_opening: float = 0.08  # [m] initial
    gripper_speed: float = 0.1  # [m/s]
    object_width: float | None = None  # [m] an object between the fingers
    rate: float = 100.0  # [Hz] control loop and joint states
    feedback_rate: float = 20.0  # [Hz] action feedback (joint_trajectory_controller's action_monitor_rate)


class _Goal:
    def __init__(self, handle, traj, path_tol, goal_tol, goal_time, start: float) -> None:
        self.handle = handle  # None for topic trajectories
        self.traj = traj  # (duration, sample(t) -> (q, qd, qdd))
        self.path_tol, self.goal_tol, self.goal_time = path_tol, goal_tol, goal_time
        self.start = start
        self.done = threading.Event()
        self.outcome = ("succeeded", 0, "")


def _tolerances(msgs, joints, default: float) -> np.ndarray:
    """Per joint: 0 in the goal keeps the default, negative means unchecked (inf)."""
    tol = np.full(len(joints), default if default > 0 else np.inf)
    for t in msgs:
        if t.name in joints and t.position != 0:
            tol[joints.index(t.name)] = np.inf if t.position < 0 else t.position
    return tol


def hermite_coefficients(h, p0, v0, a0, p1, v1, a1) -> np.ndarray:
    """(6, n) coefficients of the quintic on [0, h] meeting position, velocity and
    acceleration at both ends (pass NaN velocities for linear, NaN accelerations for cubic)."""
    c = np.zeros((6, len(p0)))
    c[0] = p0
    if np.isnan(v0).any() or np.isnan(v1).any():
        c[1] = (p1 - p0) / h
    elif np.isnan(a0).any() or np.isnan(a1).any():
        c[1], c[2] = v0, (3 * (p1 - p0) / h - 2 * v0 - v1) / h
        c[3] = (2 * (p0 - p1) / h + v0 + v1) / h**2
    else:
        c[1], c[2] = v0, a0 / 2
        c[3] = (20 * (p1 - p0) - (8 * v1 + 12 * v0) * h - (3 * a0 - a1) * h**2) / (2 * h**3)
        c[4] = (30 * (p0 - p1) + (14 * v1 + 16 * v0) * h + (3 * a0 - 2 * a1) * h**2) / (2 * h**4)
        c[5] = (12 * (p1 - p0) - 6 * (v1 + v0) * h - (a0 - a1) * h**2) / (2 * h**5)
    return c


def _spline(q0, qd0, msg, joints):
    """Piecewise polynomials from the current state through the goal's points, as
    joint_trajectory_controller interpolates: quintic where accelerations are given, cubic
    with velocities, linear otherwise. Returns (end time, sample(t) -> q, qd, qdd)."""
    from robot.ros2.conversions import duration_s

    order = [list(msg.joint_names).index(j) for j in joints]
    n = len(joints)

    def field(p, name) -> np.ndarray:
        values = getattr(p, name)
        return np.asarray(values, dtype=float)[order] if len(values) else np.full(n, np.nan)

    times = np.array([0.0] + [duration_s(p.time_from_start) for p in msg.points])
    has_acc = len(msg.points[0].accelerations) > 0
    states = [(np.asarray(q0, float), np.asarray(qd0, float), np.zeros(n) if has_acc else np.full(n, np.nan))]
    states += [(field(p, "positions"), field(p, "velocities"), field(p, "accelerations")) for p in msg.points]
    if np.isnan(states[1][1]).any():  # no velocities in the goal: linear from the current state too
        states[0] = (states[0][0], np.full(n, np.nan), np.full(n, np.nan))
    coeffs = np.stack([hermite_coefficients(times[k + 1] - times[k], *states[k], *states[k + 1])
                       for k in range(len(times) - 1)])
    powers = np.arange(6)

    def sample(t: float):
        t = min(max(t, 0.0), times[-1])
        k = min(int(np.searchsorted(times, t, side="right")) - 1, len(coeffs) - 1)
        c, tau = coeffs[k], t - times[k]
        q = tau ** powers @ c
        qd = (powers[1:] * tau ** powers[:-1]) @ c[1:]
        qdd = (powers[2:] * powers[1:-1] * tau ** powers[:-2]) @ c[2:]
        return q, qd, qdd

    return times[-1], sample


def validate(msg, joints: tuple[str, ...], now_ns: int) -> str | None:
    """Why joint_trajectory_controller would reject ``msg`` (None: it accepts it)."""
    from robot.ros2.conversions import duration_s

    names = list(msg.joint_names)
    if not names:
        return "empty joint names"
    unknown = [n for n in names if n not in joints]
    if unknown:
        return f"unknown joints {unknown}"
    if sorted(names) != sorted(joints):
        return f"joints {sorted(set(joints) - set(names))} missing (partial goals are not allowed)"
    if not msg.points:
        return "empty trajectory"
    stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
    end = duration_s(msg.points[-1].time_from_start)
    if stamp_ns and stamp_ns + end * 1e9 < now_ns:
        return "trajectory ends in the past (old header timestamp)"
    last = -1.0
    for i, p in enumerate(msg.points):
        t = duration_s(p.time_from_start)
        if i and t <= last:
            return f"time of point {i} is not after point {i - 1} (times must strictly increase)"
        last = t
        if len(p.positions) != len(names):
            return f"point {i} has {len(p.positions)} positions for {len(names)} joints"
        for what in ("velocities", "accelerations"):
            if len(getattr(p, what)) not in (0, len(names)):
                return f"point {i} has {len(getattr(p, what))} {what} for {len(names)} joints"
        if not all(math.isfinite(x) for x in list(p.positions) + list(p.velocities) + list(p.accelerations)):
            return f"point {i} holds NaN or inf"
    if msg.points and len(msg.points[0].accelerations) and not len(msg.points[0].velocities):
        return "accelerations given without velocities"
    return None


def build_nodes(runtime, cfg: LabSimConfig):
    """Create the lab's nodes on ``runtime`` (a RosRuntime); returns them (each has
    ``release()``, to call before closing the runtime)."""
    from control_msgs.action import FollowJointTrajectory, GripperCommand
    from rclpy.action import ActionServer, CancelResponse, GoalResponse
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

    from robot.ros2.conversions import duration_s, image_msg, joint_state_msg, point_msg

    joints = tuple(cfg.joints)
    Result = FollowJointTrajectory.Result

    class ArmController(Node):
        def __init__(self) -> None:
            super().__init__("lab_sim_arm", context=runtime.context)
            self.group = ReentrantCallbackGroup()
            self.lock = threading.Lock()
            self.q = np.array(cfg.initial, dtype=float)
            self.qd = np.zeros(len(joints))
            self.active: _Goal | None = None
            self.goals: dict[bytes, _Goal] = {}  # by goal id, while their execute callbacks run
            self.stuck: set[str] = set()
            self.ticks = 0
            self.states = self.create_publisher(JointState, cfg.joint_states_topic, 10)
            self.server = ActionServer(
                self, FollowJointTrajectory, f"{cfg.controller}/follow_joint_trajectory", self._execute,
                goal_callback=self._on_goal, handle_accepted_callback=self._on_accepted,
                cancel_callback=self._on_cancel, callback_group=self.group)
            self.create_subscription(JointTrajectoryMsg, f"{cfg.controller}/joint_trajectory", self._on_topic, 10,
                                     callback_group=self.group)
            self.create_subscription(String, "/lab_sim/stuck_joints", self._on_stuck, 10, callback_group=self.group)
            self.create_timer(1.0 / cfg.rate, self._tick, callback_group=self.group)

        # -------------------------------------------------------- goals
        def _now_ns(self) -> int:
            return self.get_clock().now().nanoseconds

        def _on_goal(self, goal) -> GoalResponse:
            why = validate(goal.trajectory, joints, self._now_ns())
            if why is None and goal.multi_dof_trajectory.points:
                why = "multi-DOF trajectories are not supported"
            if why:
                self.get_logger().error(f"goal rejected: {why}")
                return GoalResponse.REJECT
            return GoalResponse.ACCEPT

        def _start(self, handle, msg, path_tol, goal_tol, goal_time) -> _Goal:
            with self.lock:
                if self.active is not None and not self.active.done.is_set():
                    self.active.outcome = ("aborted", Result.INVALID_GOAL, "preempted by a newer goal")
                    self.active.done.set()
                goal = _Goal(handle, _spline(self.q, self.qd, msg, joints), path_tol, goal_tol, goal_time,
                             time.monotonic())
                self.active = goal
            return goal

        def _on_accepted(self, handle) -> None:
            g = handle.request
            goal_time = duration_s(g.goal_time_tolerance) or cfg.goal_time
            self.goals[bytes(handle.goal_id.uuid)] = self._start(
                handle, g.trajectory, _tolerances(g.path_tolerance, joints, cfg.path_tolerance),
                _tolerances(g.goal_tolerance, joints, cfg.goal_tolerance), goal_time)
            handle.execute()

        def _on_topic(self, msg) -> None:
            why = validate(msg, joints, self._now_ns())
            if why:
                self.get_logger().error(f"trajectory on topic ignored: {why}")
                return
            self._start(None, msg, _tolerances([], joints, cfg.path_tolerance),
                        _tolerances([], joints, cfg.goal_tolerance), cfg.goal_time)

        def _on_cancel(self, handle) -> CancelResponse:
            with self.lock:
                goal = self.goals.get(bytes(handle.goal_id.uuid))
                if goal is not None and goal is self.active and not goal.done.is_set():
                    self.qd[:] = 0.0  # hold where the arm is, at once
                    goal.outcome = ("canceled", Result.SUCCESSFUL, "canceled on request")
                    goal.done.set()
            return CancelResponse.ACCEPT

        def _execute(self, handle):
            goal = self.goals[bytes(handle.goal_id.uuid)]
            goal.done.wait()
            del self.goals[bytes(handle.goal_id.uuid)]
            status, code, text = goal.outcome
            if status == "canceled":
                deadline = time.monotonic() + 1.0
                while not handle.is_cancel_requested and time.monotonic() < deadline:
                    time.sleep(0.001)  # the cancel is acknowledged just after our callback returns
            if status == "canceled" and handle.is_cancel_requested:
                handle.canceled()
            elif status == "succeeded":
                handle.succeed()
            else:
                handle.abort()
            return Result(error_code=code, error_string=text)

        def release(self) -> None:
            """Shutting down: end the running goal, so no callback waits forever."""
            with self.lock:
                if self.active is not None and not self.active.done.is_set():
                    self.active.outcome = ("aborted", Result.INVALID_GOAL, "the controller shut down")
                    self.active.done.set()

        def _on_stuck(self, msg) -> None:
            with self.lock:
                self.stuck = {n.strip() for n in msg.data.split(",") if n.strip()}

        # -------------------------------------------------------- control loop
        def _tick(self) -> None:
            feedback = None
            with self.lock:
                goal = self.active
                if goal is not None and not goal.done.is_set():
                    end, sample = goal.traj
                    t = time.monotonic() - goal.start
                    q_des, qd_des, qdd_des = sample(t)
                    moving = np.array([j not in self.stuck for j in joints])
                    self.q = np.where(moving, q_des, self.q)
                    self.qd = np.where(moving, qd_des, 0.0)
                    err = q_des - self.q
                    bad = np.flatnonzero(np.abs(err) > goal.path_tol)
                    if t <= end and len(bad):
                        j = bad[0]
                        goal.outcome = ("aborted", Result.PATH_TOLERANCE_VIOLATED,
                                        f"{joints[j]} error {err[j]:.4f} rad exceeds path tolerance "
                                        f"{goal.path_tol[j]:.4f} rad at t={t:.3f} s")
                        self.qd[:] = 0.0
                        goal.done.set()
                    elif t >= end:
                        off = np.flatnonzero(np.abs(err) > goal.goal_tol)
                        if not len(off) and np.all(np.abs(self.qd) <= cfg.stopped_velocity_tolerance):
                            goal.done.set()
                        elif t > end + goal.goal_time:
                            j = off[0] if len(off) else 0
                            goal.outcome = ("aborted", Result.GOAL_TOLERANCE_VIOLATED,
                                            f"{joints[j]} is {err[j]:.4f} rad from its goal (tolerance "
                                            f"{goal.goal_tol[j]:.4f} rad) {goal.goal_time:.3f} s after the end")
                            self.qd[:] = 0.0
                            goal.done.set()
                    if self.ticks % max(1, round(cfg.rate / cfg.feedback_rate)) == 0 and goal.handle is not None:
                        feedback = (goal.handle, point_msg(t, q_des, qd_des, qdd_des), point_msg(t, self.q, self.qd),
                                    point_msg(t, err, qd_des - self.qd))
                else:
                    self.qd[:] = 0.0
                q, qd = self.q.copy(), self.qd.copy()
                self.ticks += 1
            stamp = self.get_clock().now().to_msg()
            self.states.publish(joint_state_msg(joints, q, qd, stamp))
            if feedback is not None:
                handle, desired, actual, error = feedback
                fb = FollowJointTrajectory.Feedback(joint_names=list(joints), desired=desired, actual=actual, error=error)
                fb.header.stamp = stamp
                handle.publish_feedback(fb)

    class Gripper(Node):
        def __init__(self) -> None:
            super().__init__("lab_sim_gripper", context=runtime.context)
            self.group = ReentrantCallbackGroup()
            self.opening = cfg.gripper_opening
            self.effort = 0.0
            self.lock = threading.Lock()
            self.closing = threading.Event()
            self.states = self.create_publisher(JointState, cfg.joint_states_topic, 10)
            ActionServer(self, GripperCommand, cfg.gripper_action, self._execute, callback_group=self.group)
            self.create_timer(0.02, self._publish, callback_group=self.group)

        @property
        def holding(self) -> bool:
            return self.effort > 0

        def _execute(self, handle):
            target, max_effort = handle.request.command.position, handle.request.command.max_effort
            stall = cfg.object_width if cfg.object_width is not None and target < cfg.object_width else None
            with self.lock:
                self.effort = 0.0
            last = time.monotonic()
            while True:
                time.sleep(0.01)
                now = time.monotonic()
                with self.lock:
                    step = cfg.gripper_speed * (now - last)
                    goal = target if stall is None else max(target, stall)
                    self.opening += max(-step, min(step, goal - self.opening))
                    reached = abs(self.opening - goal) < 1e-9
                    if reached and stall is not None:
                        self.effort = max_effort if max_effort > 0 else 40.0
                    opening, effort = self.opening, self.effort
                last = now
                if reached or handle.is_cancel_requested or self.closing.is_set():
                    break
            result = GripperCommand.Result(position=opening, effort=effort, stalled=stall is not None,
                                           reached_goal=stall is None and reached)
            if handle.is_cancel_requested:
                handle.canceled()
            elif self.closing.is_set():
                handle.abort()
            else:
                handle.succeed()
            return result

        def release(self) -> None:
            self.closing.set()

        def _publish(self) -> None:
            with self.lock:
                opening, effort = self.opening, self.effort
            msg = joint_state_msg([GRIPPER_JOINT], [opening], [0.0], self.get_clock().now().to_msg())
            msg.effort = [effort]
            self.states.publish(msg)

    class Tactile(Node):
        def __init__(self, gripper: Gripper) -> None:
            super().__init__("lab_sim_tactile", context=runtime.context)
            self.gripper = gripper
            self.pubs = {name: self.create_publisher(type(image_msg(np.zeros((1, 1), np.uint8))), topic,
                                                     qos_profile_sensor_data)
                         for name, topic in cfg.tactile_topics.items()}
            yy, xx = np.mgrid[0:48, 0:64]
            self.blob = np.exp(-((xx - 32) ** 2 + (yy - 24) ** 2) / (2 * 8.0**2))
            self.create_timer(1 / 30, self._publish)

        def _publish(self) -> None:
            level = min(1.0, self.gripper.effort / 40.0)
            image = (40 + 200 * level * self.blob).astype(np.uint8)
            stamp = self.get_clock().now().to_msg()
            for name, pub in self.pubs.items():
                pub.publish(image_msg(image, stamp, frame_id=name))

    arm = ArmController()
    gripper = Gripper()
    for node in [arm, gripper] + ([Tactile(gripper)] if cfg.tactile_topics else []):
        runtime.add_node(node)
    return arm, gripper


def run(cfg: LabSimConfig, ready=lambda: print("lab-sim ready", flush=True)) -> None:
    """Serve until SIGINT/SIGTERM."""
    from robot.ros2.runtime import RosRuntime

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with RosRuntime("lab_sim", threads=4) as runtime:  # execute callbacks wait for their goal to end
        nodes = build_nodes(runtime, cfg)
        ready()
        stop.wait()
        for node in nodes:
            node.release()


def parse_args(argv: list[str]) -> LabSimConfig:
    p = argparse.ArgumentParser(prog="lab-sim", description=__doc__.split("\n")[0])
    d = LabSimConfig()
    p.add_argument("--controller", default=d.controller)
    p.add_argument("--joints", default=",".join(d.joints), help="comma-separated joint names")
    p.add_argument("--initial", default=",".join(map(str, d.initial)), help="comma-separated start positions [rad]")
    p.add_argument("--joint-states-topic", default=d.joint_states_topic)
    p.add_argument("--gripper-action", default=d.gripper_action)
    p.add_argument("--tactile", action="append", default=[], metavar="NAME=TOPIC")
    p.add_argument("--goal-tolerance", type=float, default=d.goal_tolerance)
    p.add_argument("--path-tolerance", type=float, default=d.path_tolerance)
    p.add_argument("--goal-time", type=float, default=d.goal_time)
    p.add_argument("--object-width", type=float, default=None)
    p.add_argument("--feedback-rate", type=float, default=d.feedback_rate, help="action feedback [Hz]")
    a = p.parse_args(argv)
    joints = tuple(j.strip() for j in a.joints.split(",") if j.strip())
    initial = tuple(float(x) for x in a.initial.split(","))
    if len(initial) != len(joints):
        p.error(f"--initial has {len(initial)} values for {len(joints)} joints")
    if not a.feedback_rate > 0:
        p.error(f"--feedback-rate must be positive, not {a.feedback_rate}")
    tactile = {}
    for item in a.tactile:
        name, sep, topic = item.partition("=")
        if not sep:
            p.error(f"--tactile {item!r} is not NAME=TOPIC")
        tactile[name] = topic
    return LabSimConfig(a.controller, joints, initial, a.joint_states_topic, a.gripper_action, tactile,
                        a.goal_tolerance, a.path_tolerance, a.goal_time, object_width=a.object_width,
                        feedback_rate=a.feedback_rate)


if __name__ == "__main__":
    run(parse_args(sys.argv[1:]))
