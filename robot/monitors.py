"""Tactile and force feedback during execution: monitors that stop motion on excessive
force or slip, and a controller that holds a target grip force by adjusting the opening.

Monitors are plain objects fed samples (``update``) and answer a ``Trip`` when motion must
stop; ``MotionGuard`` feeds them from live streams and calls its stop function once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trip:
    monitor: str
    reason: str
    time: float  # [s] of the sample that tripped
    value: float

    def __str__(self) -> str:
        return f"{self.monitor} at t={self.time:.3f} s: {self.reason}"


class ForceLimit:
    """Trips when the force magnitude exceeds ``max_force`` [N]."""

    kind = "force"

    def __init__(self, max_force: float) -> None:
        if not max_force > 0:
            raise ValueError(f"max_force {max_force} must be positive")
        self.max_force = max_force

    def update(self, t: float, wrench: np.ndarray) -> Trip | None:
        f = float(np.linalg.norm(wrench[:3]))
        if f > self.max_force:
            return Trip("force limit", f"force {f:.2f} N exceeds {self.max_force:g} N", t, f)
        return None


class ShearSlip:
    """Trips when the tangential force exceeds ``friction`` times the normal force (the
    contact is at the edge of sliding), once the normal force (along ``normal``) is at
    least ``min_normal`` [N]."""

    kind = "force"

    def __init__(self, friction: float, min_normal: float = 0.5, normal: int = 2) -> None:
        self.friction, self.min_normal, self.normal = friction, min_normal, normal

    def update(self, t: float, wrench: np.ndarray) -> Trip | None:
        fn = abs(float(wrench[self.normal]))
        ft = float(np.linalg.norm(np.delete(np.asarray(wrench[:3], dtype=float), self.normal)))
        if fn >= self.min_normal and ft > self.friction * fn:
            return Trip("slip (force)", f"shear {ft:.2f} N exceeds {self.friction:g} x normal {fn:.2f} N", t, ft / fn)
        return None


class ImageSlip:
    """Trips when the contact patch in a tactile image moves more than ``max_shift`` pixels
    from where it first appeared (the object slides across the pad). Contact is where the
    image is ``contact_level`` above the first image seen (the unloaded pad)."""

    kind = "image"

    def __init__(self, max_shift: float = 3.0, contact_level: float = 30.0, min_pixels: int = 10) -> None:
        self.max_shift, self.contact_level, self.min_pixels = max_shift, contact_level, min_pixels
        self._baseline: np.ndarray | None = None
        self._anchor: np.ndarray | None = None

    def update(self, t: float, image: np.ndarray) -> Trip | None:
        gray = np.asarray(image, dtype=float)
        gray = gray.mean(axis=2) if gray.ndim == 3 else gray
        if self._baseline is None:
            self._baseline = gray
            return None
        contact = gray - self._baseline > self.contact_level
        if contact.sum() < self.min_pixels:
            self._anchor = None  # contact lost: a new touch gets a new anchor
            return None
        weight = (gray - self._baseline) * contact
        ys, xs = np.indices(gray.shape)
        centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
        if self._anchor is None:
            self._anchor = centroid
            return None
        shift = float(np.linalg.norm(centroid - self._anchor))
        if shift > self.max_shift:
            return Trip("slip (tactile)", f"contact moved {shift:.1f} px (more than {self.max_shift:g})", t, shift)
        return None


class MotionGuard:
    """Feeds monitors from live streams; the first trip calls ``stop`` (once, on a thread
    of its own so a stream callback never waits on the controller)."""

    def __init__(self, stop: Callable[[], object], monitors: list) -> None:
        self.stop = stop
        self.monitors = monitors
        self.tripped: Trip | None = None
        self.stopped = threading.Event()
        self._lock = threading.Lock()

    def force(self, t: float, wrench: np.ndarray) -> None:
        self._feed("force", t, wrench)

    def image(self, t: float, image: np.ndarray) -> None:
        self._feed("image", t, image)

    def sensor_failed(self, error: Exception) -> None:
        """The stream feeding the monitors broke: without them, motion must not go on."""
        self._trip(Trip("sensor failure", str(error), time.monotonic(), float("nan")))

    def _feed(self, kind: str, t: float, sample) -> None:
        if self.tripped is not None:
            return
        for m in self.monitors:
            if m.kind == kind and (trip := m.update(t, sample)) is not None:
                self._trip(trip)
                return

    def _trip(self, trip: Trip) -> None:
        with self._lock:
            if self.tripped is not None:
                return
            self.tripped = trip
        threading.Thread(target=self._stop, daemon=True).start()

    def _stop(self) -> None:
        try:
            self.stop()
        finally:
            self.stopped.set()


class GripForceHold:
    """Holds ``target`` [N] of grip force by moving the opening [m] against the force error
    each update (integral action: the opening itself integrates the error, so a steady
    grip has no force offset). Against a contact of stiffness k [N/m] the error shrinks by
    (1 - k * gain) per update: stable for k * gain < 2, fastest near 1."""

    def __init__(self, target: float, opening_range: tuple[float, float], gain: float = 1e-4,
                 max_step: float = 2e-3) -> None:
        if not target > 0:
            raise ValueError(f"target grip force {target} must be positive")
        self.target, self.range, self.gain, self.max_step = target, opening_range, gain, max_step

    def update(self, force: float, opening: float) -> float:
        """The next opening, given the measured grip force and the present opening."""
        step = float(np.clip(self.gain * (self.target - force), -self.max_step, self.max_step))
        return float(np.clip(opening - step, *self.range))  # too little force: close


def hold_grip_force(hold: GripForceHold, read_force: Callable[[], float], read_opening: Callable[[], float],
                    command: Callable[[float], object], duration: float, period: float = 0.01) -> list[tuple[float, float]]:
    """Run ``hold`` for ``duration`` s; returns the (time, force) samples it acted on."""
    out = []
    t0 = time.monotonic()
    while (now := time.monotonic()) - t0 < duration:
        force = read_force()
        command(hold.update(force, read_opening()))
        out.append((now - t0, force))
        time.sleep(period)
    return out
