"""Measures how long the Qt event loop goes without running (the UI's longest freeze)."""

from __future__ import annotations

import time

from PySide6 import QtCore


class StallProbe(QtCore.QObject):
    """A fast timer; the longest gap between its ticks, minus its period, is the worst stall."""

    def __init__(self, period_ms: int = 5, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._period = period_ms / 1000.0
        self._timer = QtCore.QTimer(self)
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.setInterval(period_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self.longest_stall_s = 0.0
        self.ticks = 0
        self.stalls: list[float] = []  # every gap beyond the period, seconds
        self.longest_stall_end = 0.0  # perf_counter() when the longest stall ended

    def start(self) -> None:
        self.longest_stall_s = 0.0
        self.ticks = 0
        self.stalls = []
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        self._timer.stop()
        return self.longest_stall_s

    def _tick(self) -> None:
        now = time.perf_counter()
        stall = max(0.0, now - self._last - self._period)
        self.stalls.append(stall)
        if stall > self.longest_stall_s:
            self.longest_stall_s, self.longest_stall_end = stall, now
        self._last = now
        self.ticks += 1
