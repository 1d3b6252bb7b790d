"""An emulated Robotiq 2F-style gripper speaking Modbus RTU (see robot.serial.gripper).

It activates after ``activation_time``, moves its fingers at a speed set by the speed
request, stops on an object placed at ``object_position`` (0..255) and reports it held.
Faults for rehearsal: ``corrupt_crc`` (next replies carry a bad CRC), ``garble`` (next
replies are noise), ``silent`` (stops answering), ``fault`` (a gFLT code), unplug/replug.
"""

from __future__ import annotations

import os
import struct
import time

from robot.serial.emulators.pty_device import PtyDevice
from robot.serial.gripper import ACT, GTO, INPUT_REGISTERS, OUTPUT_REGISTERS, SLAVE
from robot.serial.modbus import READ_INPUT_REGISTERS, WRITE_MULTIPLE_REGISTERS, crc_ok, with_crc

FULL_SPEED = 255 / 0.3  # position units per second at speed 255 (a full stroke in 0.3 s)


class RobotiqEmulator(PtyDevice):
    def __init__(self, link, activation_time: float = 0.05) -> None:
        self.activation_time = activation_time
        self.output = bytearray(6)
        self.position = 0.0
        self.status_code = 0  # gSTA
        self.object_state = 0
        self.fault = 0
        self.object_position: int | None = None
        self.corrupt_crc = 0
        self.garble = 0
        self.silent = False
        self.requests = 0
        self._activated_at: float | None = None
        self._last = time.monotonic()
        self._buf = bytearray()
        super().__init__(link)

    # ------------------------------------------------------------ wire

    def received(self, data: bytes) -> None:
        self._buf += data
        while self._buf:
            n = self._frame_length()
            if n is None or len(self._buf) < n:
                return
            frame, self._buf = bytes(self._buf[:n]), self._buf[n:]
            if frame[0] != SLAVE or not crc_ok(frame):
                self._buf.clear()  # a real device drops the frame and waits for silence
                return
            self.requests += 1
            if not self.silent:
                self._reply(self._handle(frame))

    def _frame_length(self) -> int | None:
        if len(self._buf) < 2:
            return None
        if self._buf[1] == READ_INPUT_REGISTERS:
            return 8
        if self._buf[1] == WRITE_MULTIPLE_REGISTERS:
            return None if len(self._buf) < 7 else 9 + self._buf[6]
        self._buf.clear()
        return None

    def _reply(self, body: bytes) -> None:
        frame = with_crc(body)
        if self.garble:
            self.garble -= 1
            frame = os.urandom(len(frame))
        elif self.corrupt_crc:
            self.corrupt_crc -= 1
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        self.write(frame)

    def _handle(self, frame: bytes) -> bytes:
        function = frame[1]
        address, count = struct.unpack(">HH", frame[2:6])
        if function == READ_INPUT_REGISTERS:
            if address != INPUT_REGISTERS or count != 3:
                return bytes([SLAVE, function | 0x80, 2])
            return bytes([SLAVE, function, 6]) + self._input_registers()
        if address != OUTPUT_REGISTERS or count != 3 or frame[6] != 6:
            return bytes([SLAVE, function | 0x80, 2])
        self._write_output(frame[7:13])
        return frame[:6]

    # ------------------------------------------------------------ device

    def _input_registers(self) -> bytes:
        act, gto = self.output[0] & ACT, self.output[0] & GTO
        status = act | gto | (self.status_code << 4) | (self.object_state << 6)
        fault = self.fault or (0x07 if gto and not act else 0)
        return bytes([status, 0, fault, self.output[3], round(self.position), 0x20 if self.object_state == 2 else 0])

    def _write_output(self, data: bytes) -> None:
        was_active = self.output[0] & ACT
        self.output[:] = data
        if not data[0] & ACT:
            self.status_code, self._activated_at, self.object_state = 0, None, 0
        elif not was_active:
            self.status_code, self._activated_at = 1, time.monotonic() + self.activation_time
        if data[0] & GTO:
            self.object_state = 0  # a new goal: moving

    def tick(self) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        if self.status_code == 1 and self._activated_at is not None and now >= self._activated_at:
            self.status_code = 3
        if self.status_code != 3 or not self.output[0] & GTO or self.object_state != 0 or self.fault >= 0x08:
            return
        target = self.output[3]
        step = max(self.output[4], 1) / 255 * FULL_SPEED * dt
        new = self.position + max(-step, min(step, target - self.position))
        obj = self.object_position
        if obj is not None and target > obj and self.position <= obj <= new:
            self.position, self.object_state = float(obj), 2  # closing onto the object
        elif obj is not None and target < obj and new <= obj <= self.position:
            self.position, self.object_state = float(obj), 1
        else:
            self.position = new
            if abs(new - target) < 1e-9:
                self.object_state = 3


if __name__ == "__main__":
    import sys

    from robot.serial.emulators.pty_device import serve

    serve(RobotiqEmulator(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ttyDeftGripper"))
