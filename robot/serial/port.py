"""A serial port that reopens itself after the device vanishes, and the errors of serial links.

Every read has a deadline, so a device that stops answering ends in ``DeviceTimeout``,
never a hang. A port that disappears (unplugged USB adapter: the OS reports an I/O error)
is reopened by path for up to ``reconnect_timeout`` seconds (udev-style symlinks such as
/dev/serial/by-id/... come back under the same name); if it does not come back,
``PortLost`` says so.
"""

from __future__ import annotations

import termios
import time

import serial

# What pyserial and the OS raise when the device behind a port disappears.
DROPPED = (serial.SerialException, OSError, termios.error)


class SerialLinkError(RuntimeError):
    """Base of every serial device error; the message names the port."""


class DeviceTimeout(SerialLinkError):
    pass


class ChecksumError(SerialLinkError):
    pass


class FrameError(SerialLinkError):
    pass


class PortLost(SerialLinkError):
    """The port is gone and did not come back."""


class PortReconnected(SerialLinkError):
    """The port dropped and was reopened; the exchange in progress was lost and may be retried."""


class ReconnectingPort:
    def __init__(self, url: str, baud: int = 115200, reconnect_timeout: float = 2.0) -> None:
        self.url = url
        self.baud = baud
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self._port: serial.Serial | None = None
        try:
            self._open(deadline=time.monotonic())  # a port that is not there at all is an error at once
        except PortLost as e:
            raise PortLost(f"cannot open serial port {url}: {e.__cause__}") from None

    def _open(self, deadline: float) -> None:
        last = None
        while True:
            try:
                # 8N1; exclusive so a second program cannot interleave frames.
                self._port = serial.serial_for_url(self.url, baudrate=self.baud, bytesize=8, parity="N", stopbits=1,
                                                   timeout=0.01, write_timeout=0.5, exclusive=True)
                return
            except (serial.SerialException, OSError, ValueError) as e:
                last = e
            if time.monotonic() >= deadline:
                raise PortLost(f"serial port {self.url} is gone and did not come back within "
                               f"{self.reconnect_timeout} s ({last})") from last
            time.sleep(0.02)

    def reconnect(self) -> None:
        self.close()
        self._open(deadline=time.monotonic() + self.reconnect_timeout)
        self.reconnects += 1

    def _guard(self, op):
        try:
            return op(self._port)
        except DROPPED as e:
            # Reopen once; the caller retries its exchange on the new port.
            self.reconnect()  # PortLost if it does not come back
            raise PortReconnected(f"serial port {self.url} dropped ({e}) and was reopened") from e

    def write(self, data: bytes) -> None:
        if self._port is None:
            raise PortLost(f"serial port {self.url} is closed")
        self._guard(lambda p: (p.write(data), p.flush()))

    def read_exact(self, n: int, deadline: float, what: str) -> bytes:
        """``n`` bytes, or DeviceTimeout naming ``what`` once ``deadline`` passes."""
        if self._port is None:
            raise PortLost(f"serial port {self.url} is closed")
        buf = bytearray()
        while len(buf) < n:
            if time.monotonic() >= deadline:
                raise DeviceTimeout(f"{what} on {self.url}: got {len(buf)} of {n} bytes before the timeout")
            buf += self._guard(lambda p: p.read(n - len(buf)))
        return bytes(buf)

    def read_available(self, limit: int = 4096) -> bytes:
        if self._port is None:
            raise PortLost(f"serial port {self.url} is closed")
        return self._guard(lambda p: p.read(min(limit, max(1, p.in_waiting))))

    def discard_input(self) -> None:
        if self._port is not None:
            self._guard(lambda p: p.reset_input_buffer())

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except DROPPED:
                pass
            self._port = None
