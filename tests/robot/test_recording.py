"""Recordings round-trip through rosbag2 files with every message intact."""

import numpy as np
import pytest

from robot.recording import BagRecorder, joint_series, read_bag
from tests.robot.conftest import smooth_trajectory


def test_every_message_kind_round_trips(tmp_path, arm):
    traj = smooth_trajectory(arm, points=5)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (3, 6, 8), dtype=np.uint8)
    rgb = rng.integers(0, 255, (4, 5, 3), dtype=np.uint8)
    states = rng.normal(size=(4, 7))
    with BagRecorder(tmp_path / "run") as bag:
        bag.trajectory("/arm/joint_trajectory", 1_000, traj)
        for i, q in enumerate(states):
            bag.joint_state("/joint_states", 2_000_000_000 + i * 10_000_000, arm.joint_names, q, q * 2)
        bag.joint_state("/joint_states", 2_100_000_000, ["gripper_opening"], [0.04], [0.0], [12.0])
        for i, im in enumerate(images):
            bag.image("/tactile/left", 3_000_000_000 + i, im, "left")
        bag.image("/tactile/rgb", 3_500_000_000, rgb)
        bag.wrench("/ft", 4_000_000_000, [1, 2, 3], [0.1, 0.2, 0.3], "ft")
        bag.gripper_command("/gripper/command", 5_000_000_000, 0.02, 30.0)
        markers = rng.normal(size=(2, 5, 2))  # planar displacements: z is written as 0
        for i, m in enumerate(markers):
            bag.markers("/tactile/left/markers", 6_000_000_000 + i, m, "left")
        bag.pose("/objects/block/pose", 7_000_000_000, [0.1, 0.2, 0.3], [0.5, 0.5, -0.5, 0.5])  # w, x, y, z
    data = read_bag(tmp_path / "run")
    js = data["/joint_states"]
    assert js.names == list(arm.joint_names) + ["gripper_opening"]
    np.testing.assert_array_equal(js.arrays["position"][:4, :7], states)
    np.testing.assert_array_equal(js.arrays["velocity"][:4, :7], states * 2)
    assert np.isnan(js.arrays["position"][4, 0]) and js.arrays["effort"][4, 7] == 12.0
    np.testing.assert_allclose(js.stamps[:2], [2.0, 2.01])
    np.testing.assert_array_equal(data["/tactile/left"].arrays["images"], images)
    np.testing.assert_array_equal(data["/tactile/rgb"].arrays["images"][0], rgb)
    assert data["/tactile/left"].messages[0].header.frame_id == "left"
    np.testing.assert_array_equal(data["/ft"].arrays["force"], [[1, 2, 3]])
    np.testing.assert_array_equal(data["/tactile/left/markers"].arrays["positions"], np.dstack([markers, np.zeros((2, 5))]))
    pose = data["/objects/block/pose"]
    assert pose.msgtype == "geometry_msgs/msg/PoseStamped" and pose.messages[0].header.frame_id == "world"
    assert pose.messages[0].pose.orientation.w == 0.5 and pose.messages[0].pose.orientation.y == -0.5  # ROS order x, y, z, w
    np.testing.assert_array_equal(pose.arrays["position"], [[0.1, 0.2, 0.3]])
    np.testing.assert_array_equal(pose.arrays["orientation"], [[0.5, 0.5, -0.5, 0.5]])  # back in w, x, y, z
    cmd = data["/arm/joint_trajectory"].messages[0]
    assert list(cmd.joint_names) == list(arm.joint_names)
    np.testing.assert_array_equal([p.positions for p in cmd.points], traj.positions)
    assert [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in cmd.points] == pytest.approx(traj.times)
    assert data["/gripper/command"].arrays["position"].tolist() == [0.02]
    t, q = joint_series(data, arm.joint_names)
    np.testing.assert_allclose(t, [0, 0.01, 0.02, 0.03])
    np.testing.assert_array_equal(q, states)
    t, g = joint_series(data, ["gripper_opening"])
    assert g.tolist() == [[0.04]]
    with pytest.raises(KeyError, match="never carried joints \\['wrist'\\]"):
        joint_series(data, ["wrist"])


def test_existing_recording_is_never_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        BagRecorder(tmp_path / "run")
