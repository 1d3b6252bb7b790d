"""Each kind of violation is refused with a message naming the joint and the time."""

from dataclasses import replace

import numpy as np
import pytest

from robot.safety import SafetyConfig, check
from tests.robot.conftest import READY, smooth_trajectory


@pytest.fixture
def traj(arm):
    return smooth_trajectory(arm)


def only(report, kind):
    assert not report.passed
    assert report.kinds() == {kind}, report.text()
    return report.violations


def test_smooth_trajectory_passes(arm, traj):
    report = check(arm, traj, READY + 0.005)
    assert report.passed, report.text()
    assert "PASSED" in report.text()


def test_unknown_missing_and_duplicate_joint_names(arm, traj):
    renamed = replace(traj, joint_names=("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "wrist"))
    msgs = [v.message for v in only(check(arm, renamed, READY), "joint_names")]
    assert any("unknown joints ['wrist']" in m for m in msgs) and any("missing joints ['joint7']" in m for m in msgs)
    twice = replace(traj, joint_names=("joint1",) * 7)
    assert any("joints named twice: ['joint1']" in v.message for v in check(arm, twice, READY).violations)


def test_reordered_joint_names_are_understood(arm, traj):
    order = [6, 5, 4, 3, 2, 1, 0]
    shuffled = replace(traj, joint_names=tuple(traj.joint_names[i] for i in order), start=traj.start[order],
                       positions=traj.positions[:, order], velocities=traj.velocities[:, order],
                       accelerations=traj.accelerations[:, order])
    assert check(arm, shuffled, READY).passed


def test_position_limit_with_margin(arm):
    traj = smooth_trajectory(arm, delta=0.3)  # joint4 peaks at -2.056; joint6 at 1.871
    assert check(arm, traj, READY).passed
    start = READY.copy()
    start[3] = -0.3  # joint4 would reach 0.0 > upper -0.0698
    (v,) = only(check(arm, smooth_trajectory(arm, start=start), start), "position")
    assert v.joint == "joint4" and "above the upper limit -0.0698" in v.message and "t=" in v.message
    assert 0.5 < v.time < v.until == 2.0
    # A margin narrows the allowed range.
    (v,) = only(check(arm, traj, READY, SafetyConfig(position_margin=0.75)), "position")
    assert v.joint == "joint4" and "below the lower limit -2.3218 rad at t=0.000.." in v.message


def test_velocity_and_acceleration(arm):
    fast = smooth_trajectory(arm, delta=1.0, duration=0.5)  # peak speed pi rad/s on every joint
    report = check(arm, fast, READY)
    assert report.kinds() == {"velocity", "acceleration"}, report.text()
    vel = [v for v in report.violations if v.kind == "velocity"]
    assert {v.joint for v in vel} == set(arm.joint_names)
    assert all(0 < v.time < 0.5 and "rad/s exceeds the limit" in v.message for v in vel)
    # Understated velocity fields do not hide the motion between points.
    lying = replace(fast, velocities=fast.velocities * 0, accelerations=fast.accelerations * 0)
    assert any("velocity between points" in v.message for v in check(arm, lying, READY).violations)


def test_rate_margin(arm):
    traj = smooth_trajectory(arm, delta=1.0, duration=2.0)  # peak pi/4 = 0.785 rad/s
    assert check(arm, traj, READY).passed
    report = check(arm, traj, READY, SafetyConfig(rate_margin=0.65))  # 0.76 rad/s on joints 1-4, 0.91 on 5-7
    assert {v.joint for v in report.violations if v.kind == "velocity"} == set(arm.joint_names[:4])


def test_jerk(arm):
    traj = smooth_trajectory(arm, points=2001)  # 1 ms apart
    qdd = traj.accelerations.copy()
    qdd[999, 0] += 10.0  # a 10 rad/s^2 step within 1 ms on joint1 (jerk 1e4 > 7500)
    (v,) = only(check(arm, replace(traj, accelerations=qdd), READY), "jerk")
    assert v.joint == "joint1" and "t=1.000..1.001 s" in v.message


def test_timing_first_point_and_order(arm, traj):
    t = traj.times.copy()
    t[0] = 0.0
    (v,) = only(check(arm, replace(traj, times=t), READY), "timing")
    assert "first point at t=0.000 s" in v.message
    t = traj.times.copy()
    t[5] = t[4]
    (v,) = only(check(arm, replace(traj, times=t), READY), "timing")
    assert "point 5 at t=0.500 s is not after point 4" in v.message


def test_final_velocity_must_be_zero(arm, traj):
    qd = traj.velocities.copy()
    qd[-1, 2] = 0.01
    (v,) = only(check(arm, replace(traj, velocities=qd), READY), "final_velocity")
    assert v.joint == "joint3" and "t=2.000 s" in v.message


def test_workspace_and_table(arm, traj):
    small = SafetyConfig(workspace_max=(0.2, 1.0, 1.5))  # the tool is at x = 0.307
    (v,) = only(check(arm, traj, READY, small), "workspace")
    assert "t=0.000..2.000 s" in v.message
    high_table = SafetyConfig(table_z=0.45)  # the tool (z ~ 0.49) dips below 0.45 as the arm moves
    report = check(arm, traj, READY, high_table)
    assert report.kinds() == {"table"}
    assert all("below the table" in v.message and v.time is not None for v in report.violations)


def test_start_state_must_match_measured(arm, traj):
    measured = READY.copy()
    measured[1] += 0.02
    (v,) = only(check(arm, traj, measured), "start_state")
    assert v.joint == "joint2" and "at t=0.000 s" in v.message
    assert "start state not checked" in check(arm, traj, None).notes[0]


def test_nan_is_refused(arm, traj):
    q = traj.positions.copy()
    q[3, 6] = np.nan
    (v,) = only(check(arm, replace(traj, positions=q), READY), "not_finite")
    assert v.joint == "joint7" and "point 3" in v.message
