"""A Robotiq 2F-style parallel gripper over Modbus RTU (115200 8N1, slave 9).

Registers (3 each, big-endian bytes):
- output, written at 1000 (0x03E8): action request (rACT bit 0, rGTO bit 3, rATR bit 4),
  two reserved bytes, position request (0 open .. 255 closed), speed, force (0..255);
- input, read at 2000 (0x07D0): gripper status (gACT bit 0, gGTO bit 3, gSTA bits 4-5,
  gOBJ bits 6-7), reserved, fault status (gFLT low nibble), position request echo,
  position, current (x10 mA).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from robot.serial.modbus import ModbusClient
from robot.serial.port import ReconnectingPort, SerialLinkError

SLAVE = 9
OUTPUT_REGISTERS = 0x03E8
INPUT_REGISTERS = 0x07D0
ACT, GTO, ATR = 0x01, 0x08, 0x10

FAULTS = {
    0x05: "action delayed: activation (reactivation) must complete first",
    0x07: "the activation bit must be set before acting",
    0x08: "maximum operating temperature exceeded",
    0x09: "no communication for at least 1 second",
    0x0A: "under minimum operating voltage",
    0x0B: "automatic release in progress",
    0x0C: "internal fault",
    0x0D: "activation fault: check that nothing blocks the fingers",
    0x0E: "overcurrent triggered",
    0x0F: "automatic release completed",
}
OBJECT = {0: "moving", 1: "stopped opening (contact)", 2: "stopped closing (object held)", 3: "at requested position"}


class GripperFault(SerialLinkError):
    pass


@dataclass(frozen=True)
class GripperStatus:
    activated: bool  # gSTA == 3
    moving_requested: bool  # gGTO
    object_state: int  # gOBJ, see OBJECT
    fault: int  # gFLT
    requested: int  # 0..255
    position: int  # 0..255
    current_ma: float

    @property
    def stopped(self) -> bool:
        return self.object_state != 0

    @property
    def holding(self) -> bool:
        return self.object_state in (1, 2)

    @classmethod
    def decode(cls, data: bytes) -> GripperStatus:
        status, _, fault, requested, position, current = data[:6]
        return cls((status >> 4) & 3 == 3, bool(status & GTO), status >> 6, fault & 0x0F, requested, position,
                   current * 10.0)


class SerialGripper:
    """Opening in metres, speed and force as fractions of the gripper's range."""

    def __init__(self, url: str, stroke: float = 0.085, baud: int = 115200, timeout: float = 0.1,
                 retries: int = 2, reconnect_timeout: float = 2.0) -> None:
        self.stroke = stroke
        self.port = ReconnectingPort(url, baud, reconnect_timeout)
        self.bus = ModbusClient(self.port, SLAVE, timeout, retries)

    def opening_to_position(self, opening: float) -> int:
        if not 0 <= opening <= self.stroke:
            raise ValueError(f"gripper opening {opening} m is outside [0, {self.stroke}] m")
        return round((1 - opening / self.stroke) * 255)

    def position_to_opening(self, position: int) -> float:
        return (1 - position / 255) * self.stroke

    def status(self) -> GripperStatus:
        return GripperStatus.decode(self.bus.read_input_registers(INPUT_REGISTERS, 3))

    def _check_fault(self, s: GripperStatus) -> None:
        # 0x05 and 0x07 are notices that clear once activation completes; 0x08 and up are faults.
        if s.fault >= 0x08:
            raise GripperFault(f"gripper on {self.port.url} reports fault 0x{s.fault:02X}: "
                               f"{FAULTS.get(s.fault, 'unknown fault')}")

    def activate(self, timeout: float = 5.0) -> GripperStatus:
        """Reset, then activate and wait until the gripper reports activation complete."""
        self.bus.write_registers(OUTPUT_REGISTERS, bytes(6))
        self.bus.write_registers(OUTPUT_REGISTERS, bytes([ACT, 0, 0, 0, 0, 0]))
        return self._wait(lambda s: s.activated, timeout, "activation")

    def move(self, opening: float, speed: float = 1.0, force: float = 0.5) -> None:
        """Start moving to ``opening`` [m]; returns at once (see ``wait_stopped``)."""
        for name, v in (("speed", speed), ("force", force)):
            if not 0 <= v <= 1:
                raise ValueError(f"gripper {name} {v} is outside [0, 1]")
        self.bus.write_registers(OUTPUT_REGISTERS, bytes([ACT | GTO, 0, 0, self.opening_to_position(opening),
                                                          round(speed * 255), round(force * 255)]))

    def stop(self) -> None:
        """Stop the fingers where they are (clears rGTO)."""
        self.bus.write_registers(OUTPUT_REGISTERS, bytes([ACT, 0, 0, 0, 0, 0]))

    def wait_stopped(self, timeout: float = 5.0) -> GripperStatus:
        return self._wait(lambda s: s.moving_requested and s.stopped, timeout, "motion")

    def _wait(self, done, timeout: float, what: str) -> GripperStatus:
        deadline = time.monotonic() + timeout
        while True:
            s = self.status()
            self._check_fault(s)
            if done(s):
                return s
            if time.monotonic() >= deadline:
                raise GripperFault(f"gripper on {self.port.url}: {what} not finished within {timeout} s "
                                   f"(status {OBJECT[s.object_state]}, fault 0x{s.fault:02X})")
            time.sleep(0.02)

    def close(self) -> None:
        self.port.close()
