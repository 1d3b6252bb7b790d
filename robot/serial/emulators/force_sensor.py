"""An emulated serial force/tactile sensor streaming frames (see robot.serial.force_stream).

``wrench`` (settable, or a function of time) is sent at ``rate`` Hz, with a tactile frame
every ``tactile_every`` force frames. Faults: ``noise`` (bytes of garbage before the next
frames), ``corrupt`` (next frames with a bad checksum), ``drop`` (sequence numbers skipped),
``silent`` (stops streaming), unplug/replug.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from robot.serial.emulators.pty_device import PtyDevice
from robot.serial.force_stream import FORCE, TACTILE, encode_frame, force_payload, tactile_payload


class ForceSensorEmulator(PtyDevice):
    def __init__(self, link, rate: float = 500.0, tactile_every: int = 10, taxels: tuple[int, int] = (4, 4)) -> None:
        self.rate = rate
        self.tactile_every = tactile_every
        self.taxels = taxels
        self.wrench: np.ndarray | Callable[[float], np.ndarray] = np.zeros(6)
        self.noise = 0
        self.corrupt = 0
        self.drop = 0
        self.silent = False
        self.sent = 0
        self._seq = 0
        self._t0 = time.monotonic()
        self._next = self._t0
        super().__init__(link)

    def current_wrench(self, t: float) -> np.ndarray:
        return np.asarray(self.wrench(t) if callable(self.wrench) else self.wrench, dtype=float)

    def tick(self) -> None:
        now = time.monotonic()
        while now >= self._next:
            self._next += 1.0 / self.rate
            if self.silent:
                continue
            t = self._next - self._t0
            w = self.current_wrench(t)
            frames = [(FORCE, force_payload(w))]
            if self.sent % self.tactile_every == 0:
                pressure = np.clip(np.full(self.taxels, abs(w[2]) * 10), 0, 255)
                frames.append((TACTILE, tactile_payload(pressure)))
            for kind, payload in frames:
                self._seq += self.drop  # frames "lost" on the wire: a gap in the sequence numbers
                self.drop = 0
                frame = encode_frame(kind, self._seq, int(t * 1e6), payload)
                self._seq += 1
                if self.noise:
                    frame = os.urandom(self.noise).replace(b"\xa5", b"\x00") + frame
                    self.noise = 0
                if self.corrupt:
                    self.corrupt -= 1
                    frame = frame[:-1] + bytes([frame[-1] ^ 0x55])
                self.write(frame)
            self.sent += 1


if __name__ == "__main__":
    import sys

    from robot.serial.emulators.pty_device import serve

    serve(ForceSensorEmulator(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ttyDeftForce"))
