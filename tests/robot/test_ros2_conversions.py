"""Pure conversions between arrays and ROS 2 messages."""

import numpy as np
import pytest

pytest.importorskip("trajectory_msgs.msg")

from robot.ros2.conversions import (  # noqa: E402
    duration_msg, duration_s, image_array, image_msg, ordered_positions, joint_state_msg, result_message,
    trajectory_from_msg, trajectory_msg,
)
from tests.robot.conftest import smooth_trajectory  # noqa: E402


def test_trajectory_round_trip(arm):
    traj = smooth_trajectory(arm, points=7)
    msg = trajectory_msg(traj)
    assert msg.joint_names == list(arm.joint_names) and len(msg.points) == 6
    assert msg.header.stamp.sec == 0 and msg.header.stamp.nanosec == 0  # start on receipt
    back = trajectory_from_msg(msg, traj.start)
    np.testing.assert_allclose(back.times, traj.times, atol=1e-9)
    for a, b in ((back.positions, traj.positions), (back.velocities, traj.velocities),
                 (back.accelerations, traj.accelerations)):
        np.testing.assert_array_equal(a, b)


def test_durations():
    for s in (0.0, 0.25, 1.999999999, 12.5):
        d = duration_msg(s)
        assert 0 <= d.nanosec < 10**9 and duration_s(d) == pytest.approx(s, abs=1e-9)


def test_images_round_trip_and_bad_ones_are_named():
    mono = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    for image in (mono, rgb):
        np.testing.assert_array_equal(image_array(image_msg(image)), image)
    with pytest.raises(ValueError, match="must be uint8"):
        image_msg(np.zeros((3, 4), np.float32))
    msg = image_msg(mono)
    msg.encoding = "16UC1"
    with pytest.raises(ValueError, match="encoding '16UC1' is not supported"):
        image_array(msg)


def test_joint_state_order_and_missing_joints():
    msg = joint_state_msg(["b", "a"], [2.0, 1.0], [0.0, 0.0], None)
    np.testing.assert_array_equal(ordered_positions(msg, ("a", "b")), [1.0, 2.0])
    assert ordered_positions(msg, ("a", "c")) is None


def test_result_codes_read_as_sentences():
    assert result_message(-4, "joint3 error 0.1 rad") == (
        "path tolerance violated: a joint strayed too far from the trajectory while moving (joint3 error 0.1 rad)")
    assert result_message(-5).startswith("goal tolerance violated")
    assert result_message(-42) == "unknown error code -42"
