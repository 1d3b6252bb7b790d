"""The client side of the lab over ROS 2: arm (FollowJointTrajectory action, or the
trajectory topic as a fallback), joint states, gripper (GripperCommand action) and
tactile images. Every wait has a deadline; a controller that stops sending feedback
mid-motion is reported as a fault instead of being waited on.

Callbacks run one at a time on the runtime's executor thread; listeners registered with
``on_*`` are called there too (the UI forwards them as queued signals), so none may block.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot.trajectory import JointTrajectory

SUCCEEDED, CANCELED, ABORTED = 4, 5, 6  # action_msgs/GoalStatus
# A controller is silent after SILENT_PERIODS of its feedback period (6 at
# joint_trajectory_controller's default 20 Hz make 0.3 s), measured over its feedbacks once
# there are FEEDBACKS_TO_LEARN_RATE of them.
SILENT_PERIODS = 6
FEEDBACKS_TO_LEARN_RATE = 3


@dataclass(frozen=True)
class LabTopics:
    controller: str = "joint_trajectory_controller"
    joint_names: tuple[str, ...] = ()
    joint_states_topic: str = "/joint_states"
    gripper_action: str = "/gripper/command"
    tactile_topics: dict[str, str] = field(default_factory=dict)
    gripper_joint: str = "gripper_opening"

    @property
    def action(self) -> str:
        return f"{self.controller}/follow_joint_trajectory"

    @property
    def command_topic(self) -> str:
        return f"{self.controller}/joint_trajectory"


@dataclass(frozen=True)
class Outcome:
    status: str  # succeeded, aborted, canceled, preempted, rejected, fault, timeout
    message: str
    error_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


@dataclass(frozen=True)
class Feedback:
    received: float  # [s] time.monotonic() on arrival
    time: float  # [s] time from start of the desired point
    desired: np.ndarray
    actual: np.ndarray
    error: np.ndarray


class Execution:
    """One goal sent to the controller."""

    def __init__(self, link: RosLink, feedback_timeout: float) -> None:
        self.link = link
        self.feedback_timeout = feedback_timeout
        self.feedback: list[Feedback] = []
        self.sent = time.monotonic()
        self.accepted_at: float | None = None
        self.preempted = False
        self._handle = None
        self._accepted = threading.Event()
        self._done = threading.Event()
        self._outcome: Outcome | None = None

    # called on the executor thread
    def _on_goal_response(self, future) -> None:
        handle = future.result()
        if not handle.accepted:
            self._finish(Outcome("rejected", "the controller rejected the goal (joint names, point sizes or "
                                             "times it does not accept; see the controller's log)"))
            return
        self._handle = handle
        self.accepted_at = time.monotonic()
        self._accepted.set()
        handle.get_result_async().add_done_callback(self._on_result)

    def _on_feedback(self, msg) -> None:
        f = msg.feedback
        from robot.ros2.conversions import duration_s

        index = {n: i for i, n in enumerate(f.joint_names)}
        names = self.link.topics.joint_names
        order = [index[n] for n in names] if all(n in index for n in names) else slice(None)
        fb = Feedback(time.monotonic(), duration_s(f.desired.time_from_start),
                      *(np.asarray(p.positions)[order] for p in (f.desired, f.actual, f.error)))
        self.feedback.append(fb)
        for cb in list(self.link.feedback_listeners):
            cb(fb)

    def _on_result(self, future) -> None:
        from robot.ros2.conversions import result_message

        response = future.result()
        status, result = response.status, response.result
        if status == SUCCEEDED and result.error_code == 0:
            self._finish(Outcome("succeeded", "the arm reached the goal", 0))
        elif status == CANCELED:
            self._finish(Outcome("canceled", "motion canceled on request", result.error_code))
        elif self.preempted:
            self._finish(Outcome("preempted", "replaced by a newer goal", result.error_code))
        else:
            self._finish(Outcome("aborted", result_message(result.error_code, result.error_string), result.error_code))

    def _finish(self, outcome: Outcome) -> None:
        if self._outcome is None:
            self._outcome = outcome
        self._done.set()
        self._accepted.set()

    # called by users
    @property
    def outcome(self) -> Outcome | None:
        return self._outcome

    def wait(self, timeout: float) -> Outcome:
        """The outcome; a fault if the controller goes silent (see ``allowed_silence``), a
        timeout after ``timeout`` s (the goal keeps running)."""
        deadline = time.monotonic() + timeout
        beats_when_silent = None  # our executor's heartbeat count when the controller went quiet
        while not self._done.wait(0.01):
            now = time.monotonic()
            accepted = self.accepted_at is not None
            last = (self.feedback[-1].received if self.feedback else self.accepted_at) if accepted else self.sent
            allowed = self.allowed_silence() if accepted else self.feedback_timeout + 1.0
            if now - last <= allowed:
                beats_when_silent = None
            elif beats_when_silent is None:
                beats_when_silent = self.link.runtime.beats
            elif self.link.runtime.beats - beats_when_silent >= 3:  # we spin, yet hear nothing
                what = (f"stopped responding: no feedback for {allowed:.2f} s during motion; the arm's state is "
                        f"unknown" if accepted else f"did not answer the goal within {allowed:.2f} s")
                self._finish(Outcome("fault", f"controller {self.link.topics.controller!r} {what}"))
                break
            if now >= deadline:
                return Outcome("timeout", f"still running after {timeout} s")
        assert self._outcome is not None
        return self._outcome

    def allowed_silence(self) -> float:
        """How long an accepted goal's controller may stay quiet: ``feedback_timeout``, or
        SILENT_PERIODS of its own feedback period (the median of its last ten gaps) where
        that is longer (a controller whose action_monitor_rate is low). Until it has sent
        FEEDBACKS_TO_LEARN_RATE feedbacks its rate is unknown, and it gets a second more."""
        if len(self.feedback) < FEEDBACKS_TO_LEARN_RATE:
            return self.feedback_timeout + 1.0
        period = float(np.median(np.diff([f.received for f in self.feedback[-11:]])))
        return max(self.feedback_timeout, SILENT_PERIODS * period)

    def cancel(self, timeout: float = 1.0) -> float:
        """Ask the controller to stop; returns the seconds until it acknowledged."""
        if not self._accepted.wait(timeout) or self._handle is None:
            raise TimeoutError("goal was never accepted; nothing to cancel")
        t0 = time.monotonic()
        acked = threading.Event()
        self._handle.cancel_goal_async().add_done_callback(lambda _: acked.set())
        if not acked.wait(timeout):
            raise TimeoutError(f"controller did not acknowledge the cancel within {timeout} s")
        return time.monotonic() - t0


class RosLink:
    def __init__(self, topics: LabTopics, recorder=None, node_name: str = "deft_link") -> None:
        from control_msgs.action import FollowJointTrajectory, GripperCommand
        from rclpy.action import ActionClient
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState
        from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

        from robot.ros2.runtime import RosRuntime

        self.topics = topics
        self.recorder = recorder
        self.runtime = RosRuntime(node_name)
        node = self.runtime.node
        self._lock = threading.Lock()
        self._state: np.ndarray | None = None
        self._velocity: np.ndarray | None = None
        self._state_event = threading.Event()
        self._state_cond = threading.Condition(self._lock)
        self._state_stamp = 0  # [ns] header stamp of the latest arm joint state
        self.gripper_opening: float | None = None
        self.tactile: dict[str, np.ndarray] = {}
        self.bad_images: dict[str, str] = {}  # sensor -> why its last image was unreadable
        self.feedback_listeners: list[Callable[[Feedback], None]] = []
        self.state_listeners: list[Callable[[float, np.ndarray], None]] = []  # (stamp [s], positions)
        self.tactile_listeners: list[Callable[[str, np.ndarray], None]] = []
        self.active: Execution | None = None
        self._FollowJointTrajectory = FollowJointTrajectory
        self._GripperCommand = GripperCommand
        self.arm = ActionClient(node, FollowJointTrajectory, topics.action)
        self.gripper = ActionClient(node, GripperCommand, topics.gripper_action)
        self.command_pub = node.create_publisher(JointTrajectoryMsg, topics.command_topic, 10)
        # Streams take sensor-data QoS (best effort matches reliable publishers too).
        node.create_subscription(JointState, topics.joint_states_topic, self._on_joint_state, qos_profile_sensor_data)
        for name, topic in topics.tactile_topics.items():
            node.create_subscription(Image, topic, lambda m, n=name: self._on_image(n, m), qos_profile_sensor_data)
        self._image_pubs: dict[str, object] = {}

    # ------------------------------------------------------------ streams
    def _on_joint_state(self, msg) -> None:
        from robot.ros2.conversions import ordered_positions

        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        if self.topics.gripper_joint in msg.name:
            i = list(msg.name).index(self.topics.gripper_joint)
            self.gripper_opening = float(msg.position[i])
        q = ordered_positions(msg, self.topics.joint_names)
        if self.recorder is not None:
            self.recorder.joint_state(self.topics.joint_states_topic, stamp, list(msg.name), np.array(msg.position),
                                      np.array(msg.velocity), np.array(msg.effort))
        if q is None:
            return
        with self._lock:
            self._state = q
            self._state_stamp = stamp
            self._velocity = np.array(msg.velocity)[[list(msg.name).index(n) for n in self.topics.joint_names]] \
                if len(msg.velocity) == len(msg.name) else None
            self._state_cond.notify_all()
        self._state_event.set()
        for cb in list(self.state_listeners):
            cb(stamp * 1e-9, q)

    def _on_image(self, name: str, msg) -> None:
        from robot.ros2.conversions import image_array

        try:
            image = image_array(msg)
        except ValueError as e:  # an exception here would stop the executor: keep the reason instead
            self.bad_images[name] = str(e)
            return
        self.tactile[name] = image
        if self.recorder is not None:
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            self.recorder.image(self.topics.tactile_topics[name], stamp, image, msg.header.frame_id)
        for cb in list(self.tactile_listeners):
            cb(name, image)

    def joint_state(self, timeout: float = 2.0) -> np.ndarray:
        """Latest measured arm joint positions (controller order); TimeoutError if none arrive."""
        if not self._state_event.wait(timeout):
            why = "" if self.runtime.alive else f" (the ROS 2 executor stopped: {self.runtime.error!r})"
            raise TimeoutError(f"no joint states for {list(self.topics.joint_names)} on "
                               f"{self.topics.joint_states_topic} within {timeout} s{why}")
        with self._lock:
            return self._state.copy()

    def wait_state_after(self, stamp_ns: int, timeout: float = 2.0) -> bool:
        """Wait until an arm joint state stamped at or after ``stamp_ns`` has been handled
        (and recorded): a recording that ends with the motion then holds its final pose even
        when this process's executor runs behind the controller."""
        with self._lock:
            return self._state_cond.wait_for(lambda: self._state_stamp >= stamp_ns, timeout)

    def joint_velocity(self) -> np.ndarray | None:
        with self._lock:
            return None if self._velocity is None else self._velocity.copy()

    def publish_tactile(self, topic: str, image: np.ndarray, frame_id: str = "") -> None:
        """Publish a (simulated) tactile image on ``topic`` with sensor-data QoS."""
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from robot.ros2.conversions import image_msg

        pub = self._image_pubs.get(topic)
        if pub is None:
            pub = self._image_pubs[topic] = self.runtime.node.create_publisher(Image, topic, qos_profile_sensor_data)
        pub.publish(image_msg(image, self.runtime.now(), frame_id))

    # ------------------------------------------------------------ arm
    def wait_for_controller(self, timeout: float = 5.0) -> bool:
        return self.arm.wait_for_server(timeout_sec=timeout)

    def execute(self, traj: JointTrajectory, *, path_tolerance: float | None = None,
                goal_tolerance: float | None = None, goal_time_tolerance: float = 0.0,
                feedback_timeout: float = 0.3) -> Execution:
        """Send ``traj`` as a FollowJointTrajectory goal (tolerances in rad for every joint;
        None: the controller's defaults). A running goal is preempted. ``feedback_timeout``
        [s] is the shortest silence taken for a dead controller (``allowed_silence``)."""
        from control_msgs.msg import JointTolerance

        from robot.ros2.conversions import duration_msg, trajectory_msg

        goal = self._FollowJointTrajectory.Goal(trajectory=trajectory_msg(traj),
                                                goal_time_tolerance=duration_msg(goal_time_tolerance))
        for value, target in ((path_tolerance, goal.path_tolerance), (goal_tolerance, goal.goal_tolerance)):
            if value is not None:
                target.extend(JointTolerance(name=n, position=value) for n in traj.joint_names)
        if self.active is not None and self.active.outcome is None:
            self.active.preempted = True
        if self.recorder is not None:
            self.recorder.trajectory(self.topics.command_topic, time.time_ns(), traj)
        ex = Execution(self, feedback_timeout)
        self.active = ex
        self.arm.send_goal_async(goal, feedback_callback=ex._on_feedback).add_done_callback(ex._on_goal_response)
        return ex

    def send_topic(self, traj: JointTrajectory) -> None:
        """The fallback without action feedback: publish on ``<controller>/joint_trajectory``."""
        from robot.ros2.conversions import trajectory_msg

        if self.recorder is not None:
            self.recorder.trajectory(self.topics.command_topic, time.time_ns(), traj)
        self.command_pub.publish(trajectory_msg(traj))

    # ------------------------------------------------------------ gripper
    def grip(self, opening: float, max_effort: float = 0.0, timeout: float = 5.0):
        """Move the gripper to ``opening`` [m]; returns the GripperCommand result."""
        if not self.gripper.wait_for_server(timeout_sec=min(timeout, 2.0)):
            raise TimeoutError(f"no gripper action server at {self.topics.gripper_action}")
        goal = self._GripperCommand.Goal()
        goal.command.position, goal.command.max_effort = float(opening), float(max_effort)
        if self.recorder is not None:
            self.recorder.gripper_command(self.topics.gripper_action, time.time_ns(), opening, max_effort)
        done = threading.Event()
        box: dict = {}

        def on_result(f):
            box["result"] = f.result().result
            done.set()

        def on_goal(f):
            handle = f.result()
            if not handle.accepted:
                box["error"] = "gripper rejected the command"
                done.set()
            else:
                handle.get_result_async().add_done_callback(on_result)

        self.gripper.send_goal_async(goal).add_done_callback(on_goal)
        if not done.wait(timeout):
            raise TimeoutError(f"gripper did not finish within {timeout} s")
        if "error" in box:
            raise RuntimeError(box["error"])
        return box["result"]

    def close(self) -> None:
        self.runtime.close()

    def __enter__(self) -> RosLink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
