"""Recording executions to rosbag2 files (rosbags: no ROS install needed) and reading them back.

A recording holds the commands sent (trajectory_msgs/JointTrajectory, control_msgs/
GripperCommand), joint and gripper states (sensor_msgs/JointState), tactile images
(sensor_msgs/Image), forces (geometry_msgs/WrenchStamped) and tactile marker displacements
(geometry_msgs/PoseArray: one pose per marker, its position the displacement, orientation
unused), object poses (geometry_msgs/PoseStamped, from a tracker or motion capture), each
stamped with its source time. ``ros2 bag info/play`` read these files;
``read_bag`` returns numpy arrays per topic for replay and for calibrating the simulator.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from robot.trajectory import JointTrajectory

GRIPPER_COMMAND_MSG = Path(__file__).parent / "ros2" / "interfaces" / "control_msgs" / "msg" / "GripperCommand.msg"
JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
IMAGE = "sensor_msgs/msg/Image"
WRENCH = "geometry_msgs/msg/WrenchStamped"
POSE_ARRAY = "geometry_msgs/msg/PoseArray"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
GRIPPER_COMMAND = "control_msgs/msg/GripperCommand"


def typestore():
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg(GRIPPER_COMMAND_MSG.read_text(), GRIPPER_COMMAND))
    return store


class BagRecorder:
    """Thread-safe: callbacks of any thread hand messages to one writer thread (the bag's
    SQLite storage may only be used by the thread that opened it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"recording {self.path} already exists (choose a new name; nothing is overwritten)")
        self.store = typestore()
        self.counts: dict[str, int] = {}
        self._types: dict[str, str] = {}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._closed = False
        opened = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(opened,), name="bag-writer", daemon=True)
        self._thread.start()
        opened.wait()
        if self._error is not None:
            raise self._error

    def _run(self, opened: threading.Event) -> None:
        try:
            writer = Writer(self.path, version=9)
            writer.open()
        except BaseException as e:  # reported to the constructor's caller
            self._error = e
            opened.set()
            return
        opened.set()
        connections: dict[str, object] = {}
        try:
            while (item := self._queue.get()) is not None:
                topic, msgtype, stamp_ns, msg = item
                conn = connections.get(topic)
                if conn is None:
                    conn = connections[topic] = writer.add_connection(topic, msgtype, typestore=self.store)
                writer.write(conn, int(stamp_ns), self.store.serialize_cdr(msg, msgtype))
        except BaseException as e:  # raised again by close()
            self._error = e
        finally:
            writer.close()

    def _write(self, topic: str, msgtype: str, stamp_ns: int, msg) -> None:
        if self._closed:
            return  # late callbacks after the end of a recording are dropped
        known = self._types.setdefault(topic, msgtype)
        if known != msgtype:
            raise ValueError(f"topic {topic} already records {known}, not {msgtype}")
        self.counts[topic] = self.counts.get(topic, 0) + 1
        self._queue.put((topic, msgtype, stamp_ns, msg))

    def _header(self, stamp_ns: int, frame_id: str = ""):
        t = self.store.types
        return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=int(stamp_ns // 10**9),
                                                                               nanosec=int(stamp_ns % 10**9)),
                                        frame_id=frame_id)

    def joint_state(self, topic: str, stamp_ns: int, names, position, velocity=(), effort=()) -> None:
        msg = self.store.types[JOINT_STATE](header=self._header(stamp_ns), name=list(names),
                                            position=np.asarray(position, float), velocity=np.asarray(velocity, float),
                                            effort=np.asarray(effort, float))
        self._write(topic, JOINT_STATE, stamp_ns, msg)

    def trajectory(self, topic: str, stamp_ns: int, traj: JointTrajectory) -> None:
        t = self.store.types
        points = []
        for time_, q, qd, qdd in zip(traj.times, traj.positions, traj.velocities, traj.accelerations):
            sec = int(np.floor(time_))
            points.append(t["trajectory_msgs/msg/JointTrajectoryPoint"](
                positions=np.asarray(q, float), velocities=np.asarray(qd, float), accelerations=np.asarray(qdd, float),
                effort=np.zeros(0), time_from_start=t["builtin_interfaces/msg/Duration"](
                    sec=sec, nanosec=min(int(round((time_ - sec) * 1e9)), 999_999_999))))
        msg = t[TRAJECTORY](header=self._header(stamp_ns), joint_names=list(traj.joint_names), points=points)
        self._write(topic, TRAJECTORY, stamp_ns, msg)

    def gripper_command(self, topic: str, stamp_ns: int, opening: float, max_effort: float) -> None:
        self._write(topic, GRIPPER_COMMAND, stamp_ns,
                    self.store.types[GRIPPER_COMMAND](position=float(opening), max_effort=float(max_effort)))

    def image(self, topic: str, stamp_ns: int, image: np.ndarray, frame_id: str = "") -> None:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        channels = 1 if image.ndim == 2 else image.shape[2]
        msg = self.store.types[IMAGE](header=self._header(stamp_ns, frame_id), height=image.shape[0],
                                      width=image.shape[1], encoding="mono8" if channels == 1 else "rgb8",
                                      is_bigendian=0, step=image.shape[1] * channels, data=image.reshape(-1))
        self._write(topic, IMAGE, stamp_ns, msg)

    def wrench(self, topic: str, stamp_ns: int, force, torque, frame_id: str = "") -> None:
        t = self.store.types
        vec = t["geometry_msgs/msg/Vector3"]
        msg = t[WRENCH](header=self._header(stamp_ns, frame_id),
                        wrench=t["geometry_msgs/msg/Wrench"](force=vec(*map(float, force)),
                                                            torque=vec(*map(float, torque))))
        self._write(topic, WRENCH, stamp_ns, msg)

    def markers(self, topic: str, stamp_ns: int, displacement: np.ndarray, frame_id: str = "") -> None:
        """(markers, 2 or 3) displacements (m) as a PoseArray's positions."""
        t = self.store.types
        d = np.asarray(displacement, dtype=np.float64)
        d = np.column_stack([d, np.zeros(len(d))]) if d.shape[1] == 2 else d
        poses = [t["geometry_msgs/msg/Pose"](position=t["geometry_msgs/msg/Point"](*map(float, p)),
                                             orientation=t["geometry_msgs/msg/Quaternion"](0.0, 0.0, 0.0, 1.0)) for p in d]
        self._write(topic, POSE_ARRAY, stamp_ns, t[POSE_ARRAY](header=self._header(stamp_ns, frame_id), poses=poses))

    def pose(self, topic: str, stamp_ns: int, position, orientation, frame_id: str = "world") -> None:
        """An object's pose: position (m) and orientation as a quaternion w, x, y, z (Deft's
        order; the message stores x, y, z, w)."""
        t = self.store.types
        w, x, y, z = map(float, orientation)
        pose = t["geometry_msgs/msg/Pose"](position=t["geometry_msgs/msg/Point"](*map(float, position)),
                                          orientation=t["geometry_msgs/msg/Quaternion"](x, y, z, w))
        self._write(topic, POSE_STAMPED, stamp_ns, t[POSE_STAMPED](header=self._header(stamp_ns, frame_id), pose=pose))

    def close(self) -> None:
        """Write what is queued and close the bag; raises what went wrong while writing."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"recording {self.path} failed: {self._error}") from self._error

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class TopicData:
    """One topic's messages as arrays; ``stamps`` [s] are the messages' own time stamps."""

    msgtype: str
    stamps: np.ndarray
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # joint names (JointState, JointTrajectory)
    messages: list = field(default_factory=list)  # the decoded messages, for replay


def read_bag(path: str | Path) -> dict[str, TopicData]:
    """Every topic of a recording, decoded: JointState -> position/velocity/effort (N, n)
    (rows where a message lacks a joint are NaN); Image -> images (N, H, W[, 3]);
    WrenchStamped -> force, torque (N, 3); PoseArray -> positions (N, poses, 3);
    JointTrajectory and GripperCommand -> messages."""
    store = typestore()
    raw: dict[str, list] = {}
    types: dict[str, str] = {}
    with Reader(Path(path)) as reader:
        for conn, stamp, data in reader.messages():
            raw.setdefault(conn.topic, []).append((stamp, store.deserialize_cdr(data, conn.msgtype)))
            types[conn.topic] = conn.msgtype
    return {topic: _arrays(types[topic], items) for topic, items in raw.items()}


def _stamp(msg, fallback: int) -> float:
    header = getattr(msg, "header", None)
    return header.stamp.sec + header.stamp.nanosec * 1e-9 if header is not None else fallback * 1e-9


def _arrays(msgtype: str, items: list) -> TopicData:
    msgs = [m for _, m in items]
    out = TopicData(msgtype, np.array([_stamp(m, s) for s, m in items]), messages=msgs)
    if msgtype == JOINT_STATE:
        names: list[str] = []
        for m in msgs:
            names += [n for n in m.name if n not in names]
        out.names = names
        for key in ("position", "velocity", "effort"):
            a = np.full((len(msgs), len(names)), np.nan)
            for i, m in enumerate(msgs):
                values = getattr(m, key)
                if len(values) == len(m.name):
                    a[i, [names.index(n) for n in m.name]] = values
            out.arrays[key] = a
    elif msgtype == IMAGE:
        out.arrays["images"] = np.stack([_image(m) for m in msgs])
    elif msgtype == WRENCH:
        out.arrays["force"] = np.array([[m.wrench.force.x, m.wrench.force.y, m.wrench.force.z] for m in msgs])
        out.arrays["torque"] = np.array([[m.wrench.torque.x, m.wrench.torque.y, m.wrench.torque.z] for m in msgs])
    elif msgtype == POSE_ARRAY:
        out.arrays["positions"] = np.array([[[q.position.x, q.position.y, q.position.z] for q in m.poses] for m in msgs])
    elif msgtype == POSE_STAMPED:
        out.arrays["position"] = np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z] for m in msgs])
        out.arrays["orientation"] = np.array([[m.pose.orientation.w, m.pose.orientation.x, m.pose.orientation.y,
                                               m.pose.orientation.z] for m in msgs])  # w, x, y, z
    elif msgtype == TRAJECTORY and msgs:
        out.names = list(msgs[0].joint_names)
    elif msgtype == GRIPPER_COMMAND:
        out.arrays["position"] = np.array([m.position for m in msgs])
        out.arrays["max_effort"] = np.array([m.max_effort for m in msgs])
    return out


def _image(m) -> np.ndarray:
    channels = 1 if m.encoding in ("mono8", "8UC1") else 3
    rows = np.asarray(m.data, np.uint8).reshape(m.height, m.step)[:, : m.width * channels]
    return rows.reshape(m.height, m.width) if channels == 1 else rows.reshape(m.height, m.width, channels)


def joint_series(data: dict[str, TopicData], joint_names, topic: str = "/joint_states") -> tuple[np.ndarray, np.ndarray]:
    """Times [s, from the first sample] and positions (N, len(joint_names)) of the messages
    on ``topic`` that carry all of ``joint_names`` (e.g. the arm, or ["gripper_opening"]),
    for replaying a recording or fitting the simulator to it."""
    if topic not in data:
        raise KeyError(f"the recording has no topic {topic} (it has {sorted(data)})")
    js = data[topic]
    missing = [n for n in joint_names if n not in js.names]
    if missing:
        raise KeyError(f"{topic} never carried joints {missing} (it carried {js.names})")
    q = js.arrays["position"][:, [js.names.index(n) for n in joint_names]]
    rows = ~np.isnan(q).any(axis=1)
    t = js.stamps[rows]
    return t - t[0], q[rows]
