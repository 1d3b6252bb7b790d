"""The ROS 2 link against `deft lab-sim` running in another process over loopback."""

import time
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("control_msgs.action", reason="control_msgs not built (scripts/build_ros_interfaces.sh)")

from robot.execution import Arming, GateRefused, NotArmed, send_checked  # noqa: E402
from robot.kinematics import forward, matrix_to_quat  # noqa: E402
from robot.recording import BagRecorder, read_bag  # noqa: E402
from robot.ros2.link import LabTopics, RosLink  # noqa: E402
from robot.safety import SafetyConfig  # noqa: E402
from robot.trajectory import ToolTrajectory, joint_trajectory_through, tool_to_joint  # noqa: E402
from tests.robot.ros_fixtures import lab_sim_process  # noqa: E402

pytestmark = pytest.mark.ros
TOPICS = LabTopics(joint_names=tuple(f"joint{i}" for i in range(1, 8)), tactile_topics={"left": "/tactile/left"})


@pytest.fixture(scope="module")
def lab():
    """The lab-sim, started once more if a link does not discover its controller: once, a
    lab-sim printed it was serving yet no link found it for minutes (every test here, and
    every rerun, errored in its setup)."""
    for attempt in (1, 2):
        with lab_sim_process() as proc:
            with RosLink(TOPICS, node_name="probe") as probe:
                found = probe.wait_for_controller(20.0)
            if found or attempt == 2:  # (not found twice: the link fixture below says so)
                yield proc
                return


@pytest.fixture(scope="module")
def link(lab):
    with RosLink(TOPICS) as link:
        assert link.wait_for_controller(20.0)
        link.joint_state(20.0)  # generous: discovery on a loaded 2-core machine can take seconds
        yield link


def move_from(start, delta=0.2, duration=1.0, points=11):
    times = np.linspace(0, duration, points)
    s = 0.5 - 0.5 * np.cos(np.pi * times / duration)
    return joint_trajectory_through(TOPICS.joint_names, times, start + np.outer(s, np.full(7, delta)))


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def settled_state(link, messages=5, timeout=10.0):
    """The joint state once ``messages`` joint states in a row report the same positions
    and zero velocity."""
    seen = []
    link.state_listeners.append(lambda stamp, q: seen.append((q, link.joint_velocity())))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.01)
            last = seen[-messages:]
            if len(last) == messages and all(np.array_equal(q, last[0][0]) and not np.any(v) for q, v in last):
                return last[0][0]
    finally:
        link.state_listeners.clear()
    raise AssertionError("the arm did not come to rest")


def test_optimized_trajectory_passes_gate_executes_with_feedback(link, arm):
    q0 = settled_state(link)
    start = forward(arm, q0)
    times = np.linspace(0, 1.0, 11)
    positions = start[:3, 3] + np.outer(np.sin(np.pi * times / 2), [0.0, 0.05, -0.05])
    tool = ToolTrajectory(times, positions, np.tile(matrix_to_quat(start[:3, :3]), (11, 1)), np.full(11, 0.08))
    mapping = tool_to_joint(arm, tool, seed=q0)
    assert mapping.ok
    arming = Arming()
    arming.arm()
    ex, report = send_checked(link, arm, mapping.trajectory, arming)
    assert report.passed and not arming.armed  # armed for one motion only
    outcome = ex.wait(5.0)
    assert outcome.ok, outcome
    assert 3 <= len(ex.feedback) <= 30  # 20 Hz over about 1 s (fewer reach a heavily loaded machine)
    times = [fb.time for fb in ex.feedback]
    assert all(a < b for a, b in zip(times, times[1:])) and times[0] < 0.5 < times[-1]
    for fb in ex.feedback:
        np.testing.assert_allclose(fb.error, fb.desired - fb.actual, atol=1e-12)
    q1 = settled_state(link)
    np.testing.assert_allclose(q1, mapping.trajectory.positions[-1], atol=0.02)
    np.testing.assert_allclose(forward(arm, q1)[:3, 3], positions[-1], atol=2e-3)


@pytest.mark.parametrize("spoil", ["joint_names", "position", "velocity", "timing", "final_velocity",
                                   "start_state", "table", "jerk"])
def test_gate_violation_refused_and_nothing_moves(link, arm, spoil):
    q0 = settled_state(link)
    traj = move_from(q0)
    config = SafetyConfig()
    if spoil == "joint_names":
        traj = replace(traj, joint_names=traj.joint_names[:-1] + ("wrist",))
    elif spoil == "position":
        traj = move_from(q0, delta=3.0, duration=10.0)
    elif spoil == "velocity":
        traj = move_from(q0, delta=1.0, duration=0.5)
    elif spoil == "timing":
        times = traj.times.copy()
        times[4] = times[3]
        traj = replace(traj, times=times)
    elif spoil == "final_velocity":
        traj = replace(traj, velocities=traj.velocities + 0.1)
    elif spoil == "start_state":
        traj = move_from(q0 + 0.05)
    elif spoil == "table":
        config = SafetyConfig(table_z=0.6)
    elif spoil == "jerk":
        traj = move_from(q0, points=1001)  # 1 ms apart
        qdd = traj.accelerations.copy()
        qdd[500, 3] += 10.0  # a 10 rad/s^2 step within 1 ms: jerk 1e4 > 6250 rad/s^3
        traj = replace(traj, accelerations=qdd)
    arming = Arming()
    arming.arm()
    with pytest.raises(GateRefused) as refused:
        send_checked(link, arm, traj, arming, config)
    report = refused.value.report
    assert spoil in report.kinds(), report.text()
    named = [v for v in report.violations if v.kind == spoil]
    if spoil not in ("joint_names", "timing", "table"):
        assert all(v.joint in TOPICS.joint_names and "t=" in v.message for v in named), report.text()
    if spoil in ("timing", "table"):
        assert all("t=" in v.message for v in named)
    assert arming.armed  # still armed: nothing was sent
    assert link.active is None or link.active.outcome is not None  # no goal in flight
    time.sleep(0.15)
    np.testing.assert_array_equal(link.joint_state(), q0)
    np.testing.assert_array_equal(link.joint_velocity(), 0.0)


def test_unarmed_robot_does_not_move(link, arm):
    q0 = settled_state(link)
    with pytest.raises(NotArmed, match="not armed"):
        send_checked(link, arm, move_from(q0), Arming())
    time.sleep(0.15)
    np.testing.assert_array_equal(link.joint_state(), q0)


def test_cancel_stops_motion_within_100_ms(link):
    q0 = settled_state(link)
    states = []  # (controller's stamp, positions): when the arm really stopped, whatever the load here
    link.state_listeners.append(lambda stamp, q: states.append((stamp, q)))
    try:
        # a long motion, cancelled once the arm has moved 0.02 rad (after 1.7 s): a starved
        # client hears of that late, but not so late that the motion has already ended
        ex = link.execute(move_from(q0, delta=0.3, duration=10.0))
        wait_until(lambda: states and np.max(np.abs(states[-1][1] - q0)) > 0.02, timeout=8.0)
        t_request = time.time()  # the controller stamps joint states with the same system clock
        latency = ex.cancel()
        deadline = time.monotonic() + 3
        while sum(stamp > t_request + 0.1 for stamp, _ in states) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        link.state_listeners.clear()
    # The requirement is on the arm: no change of position later than 100 ms after the
    # request (the controller's own stamps). A change happened somewhere between two samples,
    # so each is dated by the earlier one: a loaded machine can starve the controller's loop
    # (CI saw 250 ms between its samples), and a change seen across the deadline may have
    # ended before it; one seen between two samples both past the deadline cannot have. The
    # client's acknowledgement also crosses this process's executor, which a loaded machine
    # can delay, so it only has to arrive.
    assert latency < 1.0
    moving = [before for (_, q), (before, prev) in zip(states[1:], states) if not np.array_equal(q, prev)]
    assert moving and moving[-1] < t_request + 0.1  # no change of position began after 100 ms
    after = [q for stamp, q in states if stamp > t_request + 0.1]
    assert len(after) >= 20 and np.max(np.abs(after[0] - q0)) > 0.01  # it had moved before the cancel
    outcome = ex.wait(2.0)
    assert outcome.status == "canceled", outcome


def test_preemption(link):
    q0 = settled_state(link)
    first = link.execute(move_from(q0, delta=0.3, duration=3.0))
    wait_until(lambda: len(first.feedback) >= 3)
    second = link.execute(move_from(link.joint_state(), delta=-0.1, duration=0.5))
    assert first.wait(3.0).status == "preempted"
    assert second.wait(3.0).ok


def test_rejected_goal_is_reported(link, lab):
    q0 = settled_state(link)
    bad = replace(move_from(q0), joint_names=TOPICS.joint_names[:-1] + ("wrist",))
    outcome = link.execute(bad).wait(3.0)
    assert outcome.status == "rejected" and "rejected the goal" in outcome.message
    deadline = time.monotonic() + 2
    while not any("unknown joints ['wrist']" in line for line in lab.log) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any("unknown joints ['wrist']" in line for line in lab.log)


def test_path_and_goal_tolerance_violations(link):
    from std_msgs.msg import String

    stuck = link.runtime.node.create_publisher(String, "/lab_sim/stuck_joints", 10)
    try:
        stuck.publish(String(data="joint3"))
        time.sleep(0.2)
        q0 = settled_state(link)
        outcome = link.execute(move_from(q0, delta=0.2, duration=1.0), path_tolerance=0.05).wait(3.0)
        assert outcome.status == "aborted" and outcome.error_code == -4
        assert "path tolerance violated" in outcome.message and "joint3" in outcome.message
        q0 = settled_state(link)
        outcome = link.execute(move_from(q0, delta=0.2, duration=0.5), goal_time_tolerance=0.2).wait(3.0)
        assert outcome.status == "aborted" and outcome.error_code == -5
        assert "goal tolerance violated" in outcome.message and "joint3" in outcome.message
    finally:
        stuck.publish(String(data=""))
        time.sleep(0.1)


def test_topic_fallback_moves_the_arm(link):
    q0 = settled_state(link)
    traj = move_from(q0, delta=0.1, duration=0.5)
    link.send_topic(traj)
    time.sleep(0.2)
    np.testing.assert_allclose(settled_state(link), traj.positions[-1], atol=1e-6)


def test_gripper_holds_object_and_tactile_images_arrive(link):
    result = link.grip(0.08, timeout=3.0)
    assert result.reached_goal and not result.stalled
    wait_until(lambda: "left" in link.tactile and link.tactile["left"].max() < 100)
    relaxed = link.tactile["left"].copy()
    result = link.grip(0.0, max_effort=20.0, timeout=3.0)
    assert result.stalled and result.position == pytest.approx(0.03) and result.effort == 20.0
    wait_until(lambda: link.gripper_opening == pytest.approx(0.03) and link.tactile["left"].max() > relaxed.max() + 50)
    assert link.tactile["left"].shape == (48, 64)


def test_simulated_tactile_images_are_published(link):
    got = []
    with RosLink(replace(TOPICS, tactile_topics={"sim": "/deft/sim/tactile/left"}), node_name="listener") as other:
        other.tactile_listeners.append(lambda name, im: got.append(im))
        image = np.arange(48 * 64, dtype=np.uint8).reshape(48, 64)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            link.publish_tactile("/deft/sim/tactile/left", image)
            time.sleep(0.05)
    assert got and np.array_equal(got[0], image)


def test_execution_is_recorded_and_reads_back(tmp_path, lab):
    received = []
    with BagRecorder(tmp_path / "run") as bag, RosLink(TOPICS, recorder=bag, node_name="recording") as rec:
        rec.state_listeners.append(lambda stamp, q: received.append((stamp, q)))
        assert rec.wait_for_controller(10.0)
        q0 = rec.joint_state(5.0)
        traj = move_from(q0, delta=0.1, duration=0.5)
        assert rec.execute(traj).wait(3.0).ok
        rec.grip(0.05, timeout=3.0)
        time.sleep(0.1)
        rec.state_listeners.clear()
    data = read_bag(tmp_path / "run")
    js = data["/joint_states"]
    columns = [js.names.index(n) for n in TOPICS.joint_names]
    arm_rows = ~np.isnan(js.arrays["position"][:, columns[0]])
    stamps, recorded = js.stamps[arm_rows], js.arrays["position"][arm_rows][:, columns]
    assert len(received) > 20 and len(recorded) >= len(received)
    for stamp, q in received:  # every joint state the link saw is in the bag, unchanged
        i = int(np.argmin(np.abs(stamps - stamp)))
        assert abs(stamps[i] - stamp) < 1e-6
        np.testing.assert_array_equal(recorded[i], q)
    assert np.all(np.diff(stamps) > 0)
    cmd = data[TOPICS.command_topic].messages[0]
    np.testing.assert_array_equal([p.positions for p in cmd.points], traj.positions)
    assert data[TOPICS.gripper_action].arrays["position"].tolist() == [0.05]
    assert "gripper_opening" in js.names and data["/tactile/left"].arrays["images"].shape[1:] == (48, 64)


def _silence_report(ex, t_kill: float, elapsed: float) -> str:
    """What a late fault report needs to be understood: when feedback last came, and how
    regularly before."""
    received = np.array([f.received for f in ex.feedback])
    if not len(received):
        return f"{ex.outcome} {elapsed:.3f} s after the kill, without any feedback before it"
    gaps = np.diff(received[-11:])
    return (f"{ex.outcome} {elapsed:.3f} s after the kill; the last of {len(received)} feedbacks came "
            f"{t_kill - received[-1]:+.3f} s before it; recent gaps {np.round(gaps, 3).tolist()} s")


def test_killed_controller_is_a_fault_within_a_second(lab):
    topics = replace(TOPICS, controller="doomed_controller", joint_states_topic="/doomed/joint_states",
                     tactile_topics={})
    with lab_sim_process("--controller", topics.controller, "--joint-states-topic", topics.joint_states_topic) as doomed:
        with RosLink(topics, node_name="doomed") as other:
            assert other.wait_for_controller(10.0)
            # Long enough that the kill lands mid-motion even when this machine is slow.
            ex = other.execute(move_from(other.joint_state(5.0), delta=0.3, duration=20.0))
            deadline = time.monotonic() + 5
            while len(ex.feedback) < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            doomed.kill()
            t_kill = time.monotonic()
            outcome = ex.wait(5.0)
            elapsed = time.monotonic() - t_kill
    assert outcome.status == "fault" and "stopped responding" in outcome.message, _silence_report(ex, t_kill, elapsed)
    assert elapsed < 1.0, _silence_report(ex, t_kill, elapsed)


def test_a_controller_with_slow_feedback_is_not_taken_for_dead_until_six_of_its_periods_pass(lab):
    """At 3 Hz (a low action_monitor_rate) feedback comes every 0.33 s, longer than the
    0.3 s a 20 Hz controller may stay quiet: its motions still succeed, and once it is
    killed the silence it is allowed is six of its own periods."""
    topics = replace(TOPICS, controller="slow_controller", joint_states_topic="/slow/joint_states", tactile_topics={})
    with lab_sim_process("--controller", topics.controller, "--joint-states-topic", topics.joint_states_topic,
                         "--feedback-rate", "3") as slow:
        with RosLink(topics, node_name="slow") as client:
            assert client.wait_for_controller(10.0)
            ex = client.execute(move_from(client.joint_state(5.0), delta=0.1, duration=2.0))
            assert ex.wait(10.0).ok
            assert 2 <= len(ex.feedback) <= 8  # 3 Hz over 2 s, fewer on a starved machine (20 Hz: about 40)
            ex = client.execute(move_from(client.joint_state(5.0), delta=0.1, duration=20.0))
            wait_until(lambda: len(ex.feedback) >= 4)
            allowed = ex.allowed_silence()
            slow.kill()
            t_kill = time.monotonic()
            outcome = ex.wait(10.0)
            elapsed = time.monotonic() - t_kill
    assert 1.6 < allowed < 2.6  # six periods of 0.33 s
    assert outcome.status == "fault" and f"no feedback for {allowed:.2f} s" in outcome.message, \
        _silence_report(ex, t_kill, elapsed)
    # the last feedback came up to one period before the kill
    assert allowed - 0.4 < elapsed < allowed + 1.0, _silence_report(ex, t_kill, elapsed)


def test_force_monitor_stops_the_motion(link, tmp_path):
    """A serial force sensor (emulated) feels a rising force during the motion; the guard
    cancels the execution once it passes 10 N."""
    import threading

    from robot.monitors import ForceLimit, MotionGuard
    from robot.serial.emulators.force_sensor import ForceSensorEmulator
    from robot.serial.force_stream import FORCE, SensorStream

    q0 = settled_state(link)
    traj = move_from(q0, delta=0.3, duration=3.0)
    with ForceSensorEmulator(tmp_path / "ttyForce") as sensor:
        stream = SensorStream(sensor.path, timeout=2.0)  # generous: this machine may be loaded
        ex = link.execute(traj)
        t_start = time.monotonic()
        sensor.wrench = lambda t: np.array([0, 0, 20.0 * (time.monotonic() - t_start), 0, 0, 0])  # 10 N at 0.5 s
        guard = MotionGuard(lambda: ex.cancel(), [ForceLimit(10.0)])

        def feed():
            while not guard.stopped.is_set() and time.monotonic() - t_start < 5:
                s = stream.read()
                if s.kind == FORCE:
                    guard.force(s.time, s.values)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        outcome = ex.wait(5.0)
        feeder.join(2)
        stream.close()
    assert guard.tripped is not None and "exceeds 10 N" in guard.tripped.reason
    assert outcome.status == "canceled"
    stopped = settled_state(link)
    assert 0.005 < np.max(np.abs(stopped - q0)) < 0.25  # it moved (0.02 rad by 0.5 s) and stopped before the end
