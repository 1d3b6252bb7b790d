"""Force/slip monitors and grip-force holding: analytic cases, then against emulated
serial devices and a lab-sim execution."""

import time

import numpy as np
import pytest

from robot.monitors import ForceLimit, GripForceHold, ImageSlip, MotionGuard, ShearSlip, hold_grip_force
from robot.serial.emulators.force_sensor import ForceSensorEmulator
from robot.serial.emulators.robotiq import RobotiqEmulator
from robot.serial.force_stream import FORCE, SensorStream
from robot.serial.gripper import SerialGripper


def test_force_limit():
    m = ForceLimit(20.0)
    assert m.update(0.0, np.array([0, 12, 15.9, 0, 0, 0])) is None  # 19.98 N
    trip = m.update(0.5, np.array([0, 12, 16.1, 0, 0, 0]))
    assert trip.value == pytest.approx(np.hypot(12, 16.1)) and "exceeds 20 N" in str(trip) and "t=0.500" in str(trip)


def test_shear_slip_at_the_friction_cone():
    m = ShearSlip(friction=0.5, min_normal=1.0)
    assert m.update(0, np.array([2.4, 3.2, -8.0, 0, 0, 0])) is None  # shear 4 N = 0.5 x 8 N: on the cone
    assert m.update(0, np.array([3.0, 0.0, 0.5, 0, 0, 0])) is None  # too light a touch to judge
    trip = m.update(1.0, np.array([3.0, 3.0, -8.0, 0, 0, 0]))
    assert trip is not None and trip.value == pytest.approx(np.hypot(3, 3) / 8)


def blob(x, y, shape=(48, 64), base=40):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (base + 150 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 4.0**2))).astype(np.uint8)


def test_image_slip_tracks_the_contact_patch():
    m = ImageSlip(max_shift=3.0)
    assert m.update(0.0, np.full((48, 64), 40, np.uint8)) is None  # unloaded pad: the baseline
    assert m.update(0.1, blob(30, 20)) is None  # first contact: the anchor
    assert m.update(0.2, blob(32, 21)) is None  # 2.2 px: holding
    trip = m.update(0.3, blob(34, 20))
    assert trip is not None and trip.value == pytest.approx(4.0, abs=0.1) and "slip" in trip.monitor


def test_guard_stops_once():
    calls = []
    guard = MotionGuard(lambda: calls.append(time.monotonic()), [ForceLimit(5.0)])
    guard.force(0.0, np.zeros(6))
    guard.force(0.1, np.array([0, 0, 6.0, 0, 0, 0]))
    guard.force(0.2, np.array([0, 0, 9.0, 0, 0, 0]))
    assert guard.stopped.wait(1.0) and len(calls) == 1 and guard.tripped.value == 6.0


def test_guard_stops_when_its_sensor_fails():
    calls = []
    guard = MotionGuard(lambda: calls.append(1), [ForceLimit(5.0)])
    guard.sensor_failed(TimeoutError("sensor on /dev/x sent no valid frame for 1 s"))
    assert guard.stopped.wait(1.0) and calls == [1]
    assert guard.tripped.monitor == "sensor failure" and "no valid frame" in guard.tripped.reason


def test_grip_hold_converges_on_a_spring_contact():
    stiffness, width = 4000.0, 0.03  # N/m, object width
    hold = GripForceHold(target=10.0, opening_range=(0.0, 0.085), gain=1.5e-4)
    opening = 0.05
    forces = []
    for _ in range(40):
        force = stiffness * max(0.0, width - opening)
        forces.append(force)
        opening = hold.update(force, opening)
    assert forces[-1] == pytest.approx(10.0, rel=1e-3)
    assert max(forces) < 15.0  # k * gain = 0.6: no big overshoot


def test_grip_hold_with_serial_gripper_and_force_sensor(tmp_path):
    """A closed loop over two emulated serial devices: the force sensor feels a soft object
    (4000 N/m, 3 cm wide) squeezed by the emulated gripper's fingers."""
    stroke, stiffness, width = 0.085, 4000.0, 0.03
    with RobotiqEmulator(tmp_path / "ttyGripper") as grip_dev, ForceSensorEmulator(tmp_path / "ttyForce") as ft_dev:
        ft_dev.wrench = lambda t: np.array([0, 0, stiffness * max(0.0, width - (1 - grip_dev.position / 255) * stroke),
                                            0, 0, 0])
        gripper = SerialGripper(grip_dev.path, stroke=stroke)
        stream = SensorStream(ft_dev.path, timeout=2.0)  # generous: the machine may be loaded
        try:
            gripper.activate(1.0)
            gripper.move(0.05)
            gripper.wait_stopped(1.0)

            hold = GripForceHold(target=10.0, opening_range=(0.0, stroke), gain=1e-4)
            samples = hold_grip_force(hold, lambda: float(stream.latest(FORCE).values[2]), lambda: gripper.position_to_opening(gripper.status().position),
                                      lambda o: gripper.move(o, speed=0.5), duration=1.5)
        finally:
            gripper.close()
            stream.close()
    late = np.array([f for t, f in samples if t > 1.0])
    # One position count of the gripper is 0.33 mm, i.e. 1.3 N on this object.
    assert len(late) > 10 and np.all(np.abs(late - 10.0) <= 1.5), late
