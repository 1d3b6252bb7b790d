"""Plots built on first show. pyqtgraph's import and its plot widgets cost the studio's start
about a third of a second while the plot panels sit behind the timeline's tab; a PlotSlot
holds a panel's place and builds its plots only when the panel is first shown."""

from __future__ import annotations

from typing import Callable

from PySide6 import QtCore, QtWidgets


def pyqtgraph():
    """pyqtgraph, imported and configured (dark plots like the viewport) on first use."""
    import pyqtgraph as pg

    if not getattr(pyqtgraph, "configured", False):
        pg.setConfigOptions(antialias=True, background="#1f2329", foreground="#c8ced6")
        pyqtgraph.configured = True
    return pg


class PlotSlot(QtWidgets.QWidget):
    """Where a panel's plots go: ``build()`` makes them (a widget) the first time the slot
    is on screen, then ``built()`` lets the panel draw the state it kept meanwhile."""

    def __init__(self, build: Callable[[], QtWidgets.QWidget], built: Callable[[], None],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._make, self._built = build, built
        self.content: QtWidgets.QWidget | None = None
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    @property
    def ready(self) -> bool:
        return self.content is not None

    def paintEvent(self, event) -> None:
        # the first paint, not the first show: the window shows the docks stacked behind
        # another tab too, it only paints the one in front
        super().paintEvent(event)
        if self.content is None:
            QtCore.QTimer.singleShot(0, self._build)

    def _build(self) -> None:
        if self.content is None:
            self.content = self._make()
            self.layout().addWidget(self.content)
            self._built()
