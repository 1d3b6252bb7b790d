"""The framed force/tactile stream against an emulated sensor on a pseudo-terminal pair."""

import threading
import time

import numpy as np
import pytest

from robot.serial.emulators.force_sensor import ForceSensorEmulator
from robot.serial.force_stream import FORCE, TACTILE, SensorStream, encode_frame, force_payload
from robot.serial.port import DeviceTimeout, PortLost


@pytest.fixture
def device(tmp_path):
    with ForceSensorEmulator(tmp_path / "ttyForce", rate=500) as dev:
        dev.wrench = np.array([0.5, -0.25, 3.0, 0.0, 0.01, 0.0])
        yield dev


@pytest.fixture
def stream(device):
    s = SensorStream(device.path, timeout=1.0, reconnect_timeout=0.5)  # generous: a loaded machine starves the emulator
    yield s
    s.close()


def read_kind(stream, kind, n=1):
    out = []
    while len(out) < n:
        sample = stream.read()
        if sample.kind == kind:
            out.append(sample)
    return out


def test_frame_layout():
    frame = encode_frame(FORCE, 7, 1000, force_payload(np.arange(6)))
    assert frame[:2] == b"\xa5\x5a" and frame[2] == FORCE and frame[3:5] == b"\x07\x00"
    assert frame[9] == 24 and len(frame) == 2 + 8 + 24 + 2


def test_force_and_tactile_samples(stream, device):
    (f,) = read_kind(stream, FORCE)
    np.testing.assert_allclose(f.values, device.wrench, atol=1e-6)
    (t,) = read_kind(stream, TACTILE)
    assert t.values.shape == (4, 4) and np.all(t.values == 30)
    a, b = read_kind(stream, FORCE, 2)
    assert b.time > a.time and stream.stats.bad_checksum == 0


def test_noise_and_bad_checksums_are_skipped(stream, device):
    read_kind(stream, FORCE)
    device.noise, device.corrupt = 37, 3
    deadline = time.monotonic() + 3
    while stream.stats.bad_checksum < 3 and time.monotonic() < deadline:  # past any backlog of good frames
        stream.read()
    assert stream.stats.bad_checksum == 3 and stream.stats.skipped_bytes >= 37
    np.testing.assert_allclose(read_kind(stream, FORCE)[0].values, device.wrench, atol=1e-6)


def test_sequence_gaps_are_counted(stream, device):
    read_kind(stream, FORCE, 2)
    device.drop = 4
    deadline = time.monotonic() + 3
    while stream.stats.lost_frames == 0 and time.monotonic() < deadline:  # past any backlog
        stream.read()
    assert stream.stats.lost_frames == 4


def test_silent_sensor_times_out(stream, device):
    read_kind(stream, FORCE)
    device.silent = True
    stream.timeout = 0.2
    with pytest.raises(DeviceTimeout, match="ttyForce sent no valid frame for 0.2 s"):
        while True:
            stream.read()


def test_sensor_that_comes_back_is_reconnected(stream, device):
    read_kind(stream, FORCE)
    device.unplug()
    threading.Timer(0.1, device.replug).start()
    stream.timeout = 1.0
    deadline = time.monotonic() + 2.0
    while stream.stats.reconnects == 0 and time.monotonic() < deadline:
        stream.read()  # frames read before the drop, then the reopen
    assert stream.stats.reconnects == 1
    (f,) = read_kind(stream, FORCE)
    np.testing.assert_allclose(f.values, device.wrench, atol=1e-6)


def test_sensor_that_vanishes_ends_in_port_lost(stream, device):
    read_kind(stream, FORCE)
    device.unplug()
    with pytest.raises(PortLost, match="ttyForce is gone"):
        while True:
            stream.read()


def test_latest_skips_the_backlog(stream, device):
    device.wrench = lambda t: np.array([t, 0, 0, 0, 0, 0])  # the sensor's clock in fx
    read_kind(stream, FORCE)
    time.sleep(0.1)  # about 50 frames queue up
    newest = stream.latest(FORCE)
    following = read_kind(stream, FORCE)[0]
    assert following.seq - newest.seq <= 4  # nothing much newer was waiting
    assert newest.values[0] == pytest.approx(newest.time, abs=1e-5)
