"""Plots built after the start. pyqtgraph's import and its plot widgets cost the studio's start
about a third of a second while the plot panels sit behind the timeline's tab; a PlotSlot
holds a panel's place and builds its plots when the panel is first shown, or earlier, one
slot at a time, once the preload thread has imported pyqtgraph."""

from __future__ import annotations

import importlib
import threading
import time
from typing import Callable

import numpy as np
from PySide6 import QtCore, QtWidgets


_preload: threading.Thread | None = None


def preload() -> None:
    """Import pyqtgraph on a background thread: it takes 0.3-1.7 s (loaded machine), which on
    the GUI thread froze the window when a plot panel was first shown (Optimize shows its
    panel). Its module code interleaves with the event loop; plot slots wait for it
    (``imported``) without blocking the event loop."""
    global _preload
    _preload = threading.Thread(target=importlib.import_module, args=("pyqtgraph",), name="deft-import-plots",
                                daemon=True)
    _preload.start()


def imported() -> bool:
    """Whether ``pyqtgraph()`` returns at once: no import is in flight on the preload thread
    (the GUI thread would wait on the import lock, a stall of up to the whole import)."""
    return _preload is None or not _preload.is_alive()


def pyqtgraph():
    """pyqtgraph, imported and configured (dark plots like the viewport) on first use."""
    import pyqtgraph as pg

    if not getattr(pyqtgraph, "configured", False):
        pg.setConfigOptions(antialias=True, background="#1f2329", foreground="#c8ced6")
        pyqtgraph.configured = True
    return pg


def count_axis():
    """A bottom axis for counts (iterations): whole numbers only, never 2.5."""
    pg = pyqtgraph()

    class CountAxis(pg.AxisItem):
        def tickValues(self, minVal, maxVal, size):
            levels = [(spacing, values) for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
            if not levels:  # a range under two counts
                levels = [(1.0, [float(v) for v in range(int(np.ceil(minVal)), int(np.floor(maxVal)) + 1)])]
            return levels

    return CountAxis("bottom")


def log_axis():
    """A left axis for log plots that labels 1, 2 and 5 of each decade (1-5 and 7 when fewer
    than two of them are in view): pyqtgraph labels every minor tick, and 0.006 to 0.009
    overprint each other."""
    pg = pyqtgraph()

    class LogAxis(pg.AxisItem):
        def logTickStrings(self, values, scale, spacing):
            strings = super().logTickStrings(values, scale, spacing)
            mantissa = [round(10 ** (v - np.floor(v + 1e-9)), 3) for v in values]
            for labelled in ((1, 2, 5), (1, 2, 3, 4, 5, 7)):  # the second for ranges under a decade
                kept = [s if m in labelled else "" for m, s in zip(mantissa, strings)]
                if sum(map(bool, kept)) >= 2:
                    return kept
            return strings

    return LogAxis("left")


IMPORT_POLL_MS = 20
AHEAD_INTERVAL_MS = 250  # after any slot's build, before one is built ahead of its first show
_last_build = 0.0  # time.monotonic() when the last slot was built
_ahead_paused = False


def pause_building_ahead(paused: bool) -> None:
    """Hold building ahead while an optimization runs: a slot takes 50-180 ms of the GUI
    thread, a stall the user would see while watching the run (its own slot is built on
    first show, as always)."""
    global _ahead_paused
    _ahead_paused = paused


class PlotSlot(QtWidgets.QWidget):
    """Where a panel's plots go: ``build()`` makes them (a widget) the first time the slot
    is on screen, then ``built()`` lets the panel draw the state it kept meanwhile."""

    def __init__(self, build: Callable[[], QtWidgets.QWidget], built: Callable[[], None],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._make, self._built = build, built
        self.content: QtWidgets.QWidget | None = None
        self._scheduled = False
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self._ahead = QtCore.QTimer(self, interval=AHEAD_INTERVAL_MS)
        self._ahead.timeout.connect(self._build_ahead)
        self._ahead.start()

    @property
    def ready(self) -> bool:
        return self.content is not None

    def paintEvent(self, event) -> None:
        # the first paint, not the first show: the window shows the docks stacked behind
        # another tab too, it only paints the one in front
        super().paintEvent(event)
        if self.content is None and not self._scheduled:
            self._scheduled = True
            QtCore.QTimer.singleShot(0, self._build)

    def _build_ahead(self) -> None:
        """Build before the first show once pyqtgraph is preloaded, one slot per interval
        (each takes 50-180 ms of the GUI thread): pressing Optimize built the optimization
        plots while the run started, which stalled the window over 100 ms with the rest."""
        if self.content is not None:
            self._ahead.stop()
        elif _preload is not None and not _preload.is_alive() and not _ahead_paused \
                and time.monotonic() - _last_build >= AHEAD_INTERVAL_MS / 1000:
            self._ahead.stop()
            self._build()

    def _build(self) -> None:
        global _last_build
        if not imported():  # come back when the preload thread is done
            QtCore.QTimer.singleShot(IMPORT_POLL_MS, self._build)
        elif self.content is None:
            _last_build = time.monotonic()
            self.content = self._make()
            self.layout().addWidget(self.content)
            self._built()
