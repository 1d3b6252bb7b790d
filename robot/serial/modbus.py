"""Modbus RTU framing: CRC-16/MODBUS and the two functions a Robotiq-style gripper uses
(0x04 read input registers, 0x10 write multiple registers)."""

from __future__ import annotations

import struct
import time

from robot.serial.port import ChecksumError, DeviceTimeout, FrameError, PortReconnected, ReconnectingPort, SerialLinkError

READ_INPUT_REGISTERS = 0x04
WRITE_MULTIPLE_REGISTERS = 0x10
EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
              6: "device busy"}


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (reflected polynomial 0xA001, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + struct.pack("<H", crc16(frame))  # low byte first


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and struct.unpack("<H", frame[-2:])[0] == crc16(frame[:-2])


class ModbusException(SerialLinkError):
    pass


class ModbusClient:
    """Request/response over a ``ReconnectingPort``: each exchange has a deadline and is
    retried (``retries`` more times) after a timeout, a CRC error, a garbled reply or a
    reconnect; the last error is raised if none succeeds."""

    def __init__(self, port: ReconnectingPort, slave: int, timeout: float = 0.1, retries: int = 2) -> None:
        self.port = port
        self.slave = slave
        self.timeout = timeout
        self.retries = retries
        self.errors: dict[str, int] = {}

    def read_input_registers(self, address: int, count: int) -> bytes:
        reply = self._exchange(struct.pack(">BBHH", self.slave, READ_INPUT_REGISTERS, address, count), 2 * count)
        return reply[3:-2]

    def write_registers(self, address: int, data: bytes) -> None:
        if len(data) % 2:
            raise ValueError("register data must be an even number of bytes")
        n = len(data) // 2
        self._exchange(struct.pack(">BBHHB", self.slave, WRITE_MULTIPLE_REGISTERS, address, n, len(data)) + data, None)

    def _exchange(self, request: bytes, read_bytes: int | None) -> bytes:
        last: SerialLinkError | None = None
        for _ in range(self.retries + 1):
            try:
                self.port.discard_input()  # stale bytes of an earlier, failed exchange
                self.port.write(with_crc(request))
                return self._reply(request, read_bytes)
            except (DeviceTimeout, ChecksumError, FrameError, PortReconnected) as e:
                self.errors[type(e).__name__] = self.errors.get(type(e).__name__, 0) + 1
                last = e
        assert last is not None
        raise type(last)(f"{last} (after {self.retries + 1} tries)") from last

    def _reply(self, request: bytes, read_bytes: int | None) -> bytes:
        deadline = time.monotonic() + self.timeout
        what = f"Modbus slave {self.slave} function 0x{request[1]:02x}"
        head = self.port.read_exact(2, deadline, what)
        if head[0] != self.slave:
            raise FrameError(f"{what} on {self.port.url}: reply from slave {head[0]} (garbled frame)")
        if head[1] == request[1] | 0x80:
            body = head + self.port.read_exact(3, deadline, what)
            if not crc_ok(body):
                raise ChecksumError(f"{what} on {self.port.url}: CRC mismatch in exception reply")
            raise ModbusException(f"{what} on {self.port.url}: device answered exception {body[2]} "
                                  f"({EXCEPTIONS.get(body[2], 'unknown')})")
        if head[1] != request[1]:
            raise FrameError(f"{what} on {self.port.url}: reply has function 0x{head[1]:02x} (garbled frame)")
        if read_bytes is None:
            frame = head + self.port.read_exact(6, deadline, what)
            if not crc_ok(frame):
                raise ChecksumError(f"{what} on {self.port.url}: CRC mismatch in reply")
            if frame[2:6] != request[2:6]:
                raise FrameError(f"{what} on {self.port.url}: write echo {frame[2:6].hex()} != {request[2:6].hex()}")
            return frame
        frame = head + self.port.read_exact(1, deadline, what)
        if frame[2] != read_bytes:
            raise FrameError(f"{what} on {self.port.url}: reply announces {frame[2]} bytes (expected {read_bytes})")
        frame += self.port.read_exact(read_bytes + 2, deadline, what)
        if not crc_ok(frame):
            raise ChecksumError(f"{what} on {self.port.url}: CRC mismatch in reply")
        return frame
