"""A serial force/tactile sensor that streams framed, checksummed messages.

Frame (little-endian)::

    0xA5 0x5A | kind u8 | seq u16 | time_us u32 | length u8 | payload | CRC-16/MODBUS of kind..payload

Kinds: FORCE (6 float32: fx, fy, fz [N], tx, ty, tz [N m]) and TACTILE (rows u8, cols u8,
then rows*cols u8 taxel pressures). The reader resynchronises on the marker after noise,
drops frames with a bad checksum (counted), counts sequence gaps, reopens a port that
drops, and raises ``DeviceTimeout`` when no valid frame arrives in time.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from robot.serial.modbus import crc16
from robot.serial.port import DeviceTimeout, PortReconnected, ReconnectingPort, SerialLinkError

SYNC = b"\xa5\x5a"
FORCE, TACTILE = 1, 2
HEADER = struct.Struct("<BHIB")  # kind, seq, time_us, length


def encode_frame(kind: int, seq: int, time_us: int, payload: bytes) -> bytes:
    body = HEADER.pack(kind, seq & 0xFFFF, time_us & 0xFFFFFFFF, len(payload)) + payload
    return SYNC + body + struct.pack("<H", crc16(body))


def force_payload(wrench: np.ndarray) -> bytes:
    return struct.pack("<6f", *np.asarray(wrench, dtype=float))


def tactile_payload(taxels: np.ndarray) -> bytes:
    taxels = np.asarray(taxels, dtype=np.uint8)
    return bytes(taxels.shape) + taxels.tobytes()


@dataclass(frozen=True)
class SensorSample:
    kind: int
    seq: int
    time: float  # [s] sensor clock
    values: np.ndarray  # FORCE: (6,) wrench; TACTILE: (rows, cols) uint8


@dataclass
class StreamStats:
    frames: int = 0
    bad_checksum: int = 0
    skipped_bytes: int = 0
    lost_frames: int = 0  # from sequence gaps
    reconnects: int = 0
    by_kind: dict[int, int] = field(default_factory=dict)


class SensorStream:
    def __init__(self, url: str, baud: int = 115200, timeout: float = 0.2, reconnect_timeout: float = 2.0) -> None:
        self.port = ReconnectingPort(url, baud, reconnect_timeout)
        self.timeout = timeout
        self.stats = StreamStats()
        self._buf = bytearray()
        self._last_seq: int | None = None

    def read(self) -> SensorSample:
        """The next valid frame; DeviceTimeout if none arrives within ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while True:
            sample = self._parse()
            if sample is not None:
                return sample
            if time.monotonic() >= deadline:
                raise DeviceTimeout(f"sensor on {self.port.url} sent no valid frame for {self.timeout} s "
                                    f"({self.stats.bad_checksum} bad checksums, {self.stats.skipped_bytes} bytes of noise so far)")
            self._fill()

    def latest(self, kind: int = FORCE) -> SensorSample:
        """The newest frame of ``kind`` among what has arrived, skipping the backlog (for
        control loops, which must act on the present); waits for one if none is there."""
        self._fill()
        newest = None
        while (sample := self._parse()) is not None:
            if sample.kind == kind:
                newest = sample
        while newest is None:
            sample = self.read()
            newest = sample if sample.kind == kind else None
        return newest

    def _fill(self) -> int:
        """Read what the port has (waiting briefly); the number of new bytes."""
        try:
            chunk = self.port.read_available()
        except PortReconnected:
            self.stats.reconnects += 1
            self._buf.clear()  # half a frame from before the drop would never complete
            self._last_seq = None
            return 0
        self._buf += chunk
        return len(chunk)

    def _parse(self) -> SensorSample | None:
        buf = self._buf
        while True:
            start = buf.find(SYNC)
            if start < 0:
                keep = 1 if buf.endswith(SYNC[:1]) else 0
                self.stats.skipped_bytes += len(buf) - keep
                del buf[: len(buf) - keep]
                return None
            self.stats.skipped_bytes += start
            del buf[:start]
            if len(buf) < 2 + HEADER.size:
                return None
            kind, seq, time_us, length = HEADER.unpack_from(buf, 2)
            end = 2 + HEADER.size + length + 2
            if len(buf) < end:
                return None
            body = bytes(buf[2:end - 2])
            if struct.unpack_from("<H", buf, end - 2)[0] != crc16(body) or kind not in (FORCE, TACTILE):
                self.stats.bad_checksum += 1
                del buf[:2]  # resynchronise on the next marker
                continue
            del buf[:end]
            values = self._decode(kind, body[HEADER.size:])
            if values is None:
                self.stats.bad_checksum += 1
                continue
            if self._last_seq is not None:
                self.stats.lost_frames += (seq - self._last_seq - 1) & 0xFFFF
            self._last_seq = seq
            self.stats.frames += 1
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
            return SensorSample(kind, seq, time_us * 1e-6, values)

    @staticmethod
    def _decode(kind: int, payload: bytes) -> np.ndarray | None:
        if kind == FORCE:
            return np.array(struct.unpack("<6f", payload)) if len(payload) == 24 else None
        if len(payload) < 2 or len(payload) != 2 + payload[0] * payload[1]:
            return None
        return np.frombuffer(payload[2:], dtype=np.uint8).reshape(payload[0], payload[1]).copy()

    def close(self) -> None:
        self.port.close()


class SensorPump:
    """Reads a ``SensorStream`` on its own thread and hands every sample to ``listeners``
    (a recorder, a motion guard) until stopped; a stream error ends it and is kept in ``error``."""

    def __init__(self, stream: SensorStream, listeners: list, on_error=None) -> None:
        self.stream = stream
        self.listeners = listeners
        self.on_error = on_error  # called with the error that ended the pump
        self.error: Exception | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sensor-pump", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sample = self.stream.read()
            except SerialLinkError as e:
                self.error = e
                if self.on_error is not None:
                    self.on_error(e)
                return
            self.samples += 1
            for listener in list(self.listeners):
                listener(sample)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.stream.timeout + 1.0)
