import numpy as np
import pytest

from robot.kinematics import forward, matrix_to_quat
from robot.trajectory import ToolTrajectory, tool_to_joint
from tests.robot.conftest import READY, smooth_trajectory


def line_tool_trajectory(arm, shift=(0.0, 0.1, -0.1), samples=11, duration=2.0):
    start = forward(arm, READY)
    times = np.linspace(0, duration, samples)
    s = 0.5 - 0.5 * np.cos(np.pi * times / duration)
    positions = start[:3, 3] + np.outer(s, shift)
    quats = np.tile(matrix_to_quat(start[:3, :3]), (samples, 1))
    return ToolTrajectory(times, positions, quats, np.linspace(0.08, 0.02, samples))


def test_tool_trajectory_maps_to_joint_trajectory_that_reproduces_it(arm):
    tool = line_tool_trajectory(arm)
    mapping = tool_to_joint(arm, tool, seed=READY)
    assert mapping.ok
    traj = mapping.trajectory
    np.testing.assert_allclose(traj.start, READY, atol=2e-3)  # the IK stays on the seed's branch
    np.testing.assert_allclose(traj.times, tool.times[1:])
    for q, p in zip(traj.positions, tool.positions[1:]):
        np.testing.assert_allclose(forward(arm, q)[:3, 3], p, atol=2e-4)
    np.testing.assert_allclose(traj.velocities[-1], 0.0, atol=1e-12)
    np.testing.assert_allclose(traj.gripper, tool.openings[1:])
    # Spline velocities agree with the positions' central differences in the middle.
    mid = (traj.positions[5] - traj.positions[3]) / (traj.times[5] - traj.times[3])
    np.testing.assert_allclose(traj.velocities[4], mid, atol=0.02)


def test_unreachable_samples_reported_by_time_and_distance(arm):
    tool = line_tool_trajectory(arm, shift=(1.5, 0.0, 0.0), samples=6)
    mapping = tool_to_joint(arm, tool, seed=READY)
    assert not mapping.ok
    times = [u.time for u in mapping.unreachable]
    assert times == sorted(times) and times[-1] == pytest.approx(2.0)
    assert 0 not in times  # the start pose is reachable
    assert mapping.unreachable[-1].position_error > 0.5
    assert "t=2.000 s: tool pose unreachable" in str(mapping.unreachable[-1])


def test_speed_scaling_retimes(arm):
    traj = smooth_trajectory(arm)
    slow = traj.scaled(0.5)
    np.testing.assert_allclose(slow.times, traj.times * 2)
    np.testing.assert_allclose(slow.velocities, traj.velocities * 0.5)
    np.testing.assert_allclose(slow.accelerations, traj.accelerations * 0.25)
    np.testing.assert_array_equal(slow.positions, traj.positions)
    for bad in (0.0, 1.5, -1):
        with pytest.raises(ValueError, match="outside"):
            traj.scaled(bad)


def test_bad_tool_trajectory_is_refused():
    with pytest.raises(ValueError, match="strictly increasing"):
        ToolTrajectory(np.array([0.0, 0.0]), np.zeros((2, 3)), np.tile([1.0, 0, 0, 0], (2, 1)), np.zeros(2))
    with pytest.raises(ValueError, match="quaternions has shape"):
        ToolTrajectory(np.array([0.0, 1.0]), np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2))
