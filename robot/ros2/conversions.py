"""Pure conversions between Deft's arrays and ROS 2 messages (no node, no context)."""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg
from trajectory_msgs.msg import JointTrajectoryPoint

from robot.trajectory import JointTrajectory

RESULT_MESSAGES = {
    0: "succeeded",
    -1: "invalid goal: the controller refused the trajectory's contents",
    -2: "invalid joints: the goal's joint names do not match the controller's",
    -3: "old header timestamp: the trajectory's start time lies in the past",
    -4: "path tolerance violated: a joint strayed too far from the trajectory while moving",
    -5: "goal tolerance violated: the arm did not settle at the final point within the goal "
        "tolerance and goal time tolerance",
}


def result_message(code: int, detail: str = "") -> str:
    text = RESULT_MESSAGES.get(code, f"unknown error code {code}")
    return f"{text} ({detail})" if detail else text


def duration_msg(seconds: float) -> Duration:
    sec = math.floor(seconds)
    nanosec = min(int(round((seconds - sec) * 1e9)), 999_999_999)
    return Duration(sec=int(sec), nanosec=nanosec)


def duration_s(d: Duration) -> float:
    return d.sec + d.nanosec * 1e-9


def point_msg(t: float, q: np.ndarray, qd: np.ndarray | None = None, qdd: np.ndarray | None = None) -> JointTrajectoryPoint:
    p = JointTrajectoryPoint(positions=[float(x) for x in q], time_from_start=duration_msg(t))
    if qd is not None:
        p.velocities = [float(x) for x in qd]
    if qdd is not None:
        p.accelerations = [float(x) for x in qdd]
    return p


def trajectory_msg(traj: JointTrajectory) -> JointTrajectoryMsg:
    """Points after t = 0 (the start state is where the robot already is); header stamp 0:
    start as soon as the controller receives it."""
    return JointTrajectoryMsg(
        joint_names=list(traj.joint_names),
        points=[point_msg(t, q, qd, qdd) for t, q, qd, qdd in
                zip(traj.times, traj.positions, traj.velocities, traj.accelerations)],
    )


def trajectory_from_msg(msg: JointTrajectoryMsg, start: np.ndarray) -> JointTrajectory:
    n = len(msg.joint_names)

    def column(name: str) -> np.ndarray:
        rows = [getattr(p, name) for p in msg.points]
        return np.array([list(r) if len(r) else [0.0] * n for r in rows], dtype=float).reshape(len(rows), n)

    return JointTrajectory(tuple(msg.joint_names), np.asarray(start, dtype=float),
                           np.array([duration_s(p.time_from_start) for p in msg.points]),
                           column("positions"), column("velocities"), column("accelerations"))


def joint_state_msg(names, q, qd, stamp) -> JointState:
    return JointState(header=_header(stamp), name=list(names), position=[float(x) for x in q],
                      velocity=[float(x) for x in qd])


def ordered_positions(msg: JointState, names: tuple[str, ...]) -> np.ndarray | None:
    """Positions of ``names`` from a JointState (any order); None if one is missing."""
    index = {n: i for i, n in enumerate(msg.name)}
    if not all(n in index and index[n] < len(msg.position) for n in names):
        return None
    return np.array([msg.position[index[n]] for n in names])


def image_msg(image: np.ndarray, stamp=None, frame_id: str = "") -> Image:
    """sensor_msgs/Image of an (H, W) mono8 or (H, W, 3) rgb8 uint8 array."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or image.ndim == 3 and image.shape[2] != 3:
        raise ValueError(f"tactile image must be uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    channels = 1 if image.ndim == 2 else 3
    msg = Image(height=image.shape[0], width=image.shape[1], encoding="mono8" if channels == 1 else "rgb8",
                is_bigendian=0, step=image.shape[1] * channels)
    msg.data = image.tobytes()
    if stamp is not None:
        msg.header = _header(stamp)
    msg.header.frame_id = frame_id
    return msg


def image_array(msg: Image) -> np.ndarray:
    channels = {"mono8": 1, "rgb8": 3, "bgr8": 3}.get(msg.encoding)
    if channels is None:
        raise ValueError(f"tactile image encoding {msg.encoding!r} is not supported (expected mono8, rgb8 or bgr8)")
    a = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step)[:, : msg.width * channels]
    return a.reshape(msg.height, msg.width) if channels == 1 else a.reshape(msg.height, msg.width, 3)


def _header(stamp):
    from std_msgs.msg import Header

    return Header(stamp=stamp)
