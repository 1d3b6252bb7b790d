"""The Modbus RTU gripper against an emulated device on a pseudo-terminal pair."""

import threading
import time

import pytest

from robot.serial.emulators.robotiq import RobotiqEmulator
from robot.serial.gripper import GripperFault, SerialGripper
from robot.serial.modbus import ModbusException, crc16, with_crc
from robot.serial.port import ChecksumError, DeviceTimeout, FrameError, PortLost


@pytest.fixture
def device(tmp_path):
    with RobotiqEmulator(tmp_path / "ttyGripper") as dev:
        yield dev


@pytest.fixture
def gripper(device):
    g = SerialGripper(device.path, timeout=0.2, retries=2, reconnect_timeout=0.5)
    yield g
    g.close()


def test_crc_matches_the_modbus_check_value():
    assert crc16(b"123456789") == 0x4B37  # CRC-16/MODBUS catalogue check value
    # Reading 3 input registers at 2000 from slave 9, the status request of the 2F manual.
    assert with_crc(bytes.fromhex("090407D00003")).hex().upper() == "090407D00003B1CE"


def test_activate_move_and_hold(gripper, device):
    s = gripper.activate(timeout=1.0)
    assert s.activated and s.fault == 0
    gripper.move(0.0425, speed=1.0, force=0.5)  # half open
    s = gripper.wait_stopped(timeout=1.0)
    assert s.object_state == 3 and gripper.position_to_opening(s.position) == pytest.approx(0.0425, abs=0.0005)
    assert device.output[5] == 128  # force request reached the device
    device.object_position = 200  # an object between the fingers
    gripper.move(0.0, speed=0.5)
    s = gripper.wait_stopped(timeout=1.0)
    assert s.holding and s.position == 200 and s.current_ma > 0


def test_move_before_activation_times_out_with_notice(gripper):
    gripper.move(0.01)
    with pytest.raises(GripperFault, match="motion not finished within 0.1 s"):
        gripper.wait_stopped(timeout=0.1)


def test_bad_requests_are_refused_before_sending(gripper, device):
    with pytest.raises(ValueError, match="opening 0.2 m is outside"):
        gripper.move(0.2)
    with pytest.raises(ValueError, match="force 2 is outside"):
        gripper.move(0.01, force=2)
    assert device.requests == 0


def test_device_fault_is_reported(gripper, device):
    gripper.activate(timeout=1.0)
    device.fault = 0x0E
    gripper.move(0.0)
    with pytest.raises(GripperFault, match="fault 0x0E: overcurrent"):
        gripper.wait_stopped(timeout=1.0)


def test_exception_reply_is_reported(gripper):
    with pytest.raises(ModbusException, match="exception 2 \\(illegal data address\\)"):
        gripper.bus.read_input_registers(0x1234, 3)


def test_crc_error_and_garbled_reply_are_retried(gripper, device):
    device.corrupt_crc = 1
    gripper.status()
    device.garble = 1
    gripper.status()
    assert gripper.bus.errors.get("ChecksumError") == 1
    assert sum(gripper.bus.errors.values()) == 2
    device.corrupt_crc = 10
    with pytest.raises(ChecksumError, match="CRC mismatch .* \\(after 3 tries\\)"):
        gripper.status()
    device.corrupt_crc = 0
    device.garble = 10
    with pytest.raises((FrameError, ChecksumError, DeviceTimeout), match="after 3 tries"):
        gripper.status()


def test_silent_device_times_out_without_hanging(gripper, device):
    device.silent = True
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout, match="Modbus slave 9 function 0x04 on .*ttyGripper.*after 3 tries"):
        gripper.status()
    assert time.monotonic() - t0 < 3 * 0.2 + 1.0  # 3 tries of 200 ms, never a hang
    device.silent = False
    assert gripper.status().fault == 0  # answers again


def test_port_that_comes_back_is_reconnected(gripper, device):
    gripper.activate(timeout=1.0)
    device.unplug()
    threading.Timer(0.1, device.replug).start()
    s = gripper.status()  # the read fails, the port reopens under the same path, the retry succeeds
    assert gripper.port.reconnects == 1 and s.activated


def test_port_that_vanishes_ends_in_port_lost(gripper, device):
    device.unplug()
    t0 = time.monotonic()
    with pytest.raises(PortLost, match="ttyGripper is gone and did not come back within 0.5 s"):
        gripper.status()
    assert time.monotonic() - t0 < 1.5


def test_absent_port_is_named_at_once(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(PortLost, match="cannot open serial port .*ttyNone"):
        SerialGripper(str(tmp_path / "ttyNone"), reconnect_timeout=5.0)
    assert time.monotonic() - t0 < 1.0
