"""Tactile panel: for one pad at a time, the tactile image with marker displacement arrows,
the pressure map, and total normal and shear force over the run with a cursor that follows
the timeline. The same views take frames from a real sensor stream."""

from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from app.services.frames import Run, TactileFrame
from ui.plots import PlotSlot, pyqtgraph

ARROW_GAIN = 5.0  # marker displacements are a few pixels; drawn this many times longer


class TactilePanel(QtWidgets.QWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.pad_box = QtWidgets.QComboBox()
        self.pad_box.currentTextChanged.connect(lambda _: self._redraw())
        self.source = QtWidgets.QLabel("source: no run yet")
        self.message = QtWidgets.QLabel("no tactile pads in this scene")
        self.message.setWordWrap(True)

        self.plots = PlotSlot(self._build_plots, self._redraw)

        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("pad"))
        top.addWidget(self.pad_box, 1)
        top.addWidget(self.source)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(self.plots, 1)

        self.run: Run | None = None
        self.index = 0
        self._live: dict[str, TactileFrame] = {}

    def _build_plots(self) -> QtWidgets.QWidget:
        pg = pyqtgraph()
        self.image_view = pg.PlotWidget(title="tactile image + marker flow")
        self.image_view.setAspectLocked(True)
        self.image_view.invertY(True)
        self.image_item = pg.ImageItem()
        self.image_view.addItem(self.image_item)
        self.markers = pg.ScatterPlotItem(size=5, brush=pg.mkBrush("#ffd21a"), pen=None)
        self.arrows = pg.PlotDataItem(pen=pg.mkPen("#ff5050", width=2), connect="pairs")
        self.image_view.addItem(self.arrows)
        self.image_view.addItem(self.markers)

        self.pressure_view = pg.PlotWidget(title="pressure [Pa]")
        self.pressure_view.setAspectLocked(True)
        self.pressure_view.invertY(True)
        self.pressure_item = pg.ImageItem()
        self.pressure_view.addItem(self.pressure_item)
        # the scale beside the map: without it a colour says nothing about pascals
        self.pressure_bar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), interactive=False, label="Pa")
        self.pressure_bar.setImageItem(self.pressure_item, insert_in=self.pressure_view.getPlotItem())

        self.force_plot = pg.PlotWidget(title="total force [N]")
        self.force_plot.addLegend(offset=(5, 5))
        self.force_plot.setLabel("bottom", "time", units="s")
        self.normal_curve = self.force_plot.plot(pen=pg.mkPen("#50c8ff", width=2), name="normal")
        self.shear_curve = self.force_plot.plot(pen=pg.mkPen("#ff8c50", width=2), name="shear")
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ff5050"))
        self.force_plot.addItem(self.cursor)
        views = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(views)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.image_view, 1)
        row.addWidget(self.pressure_view, 1)
        row.addWidget(self.force_plot, 2)
        return views

    def set_pads(self, names: list[str]) -> None:
        current = self.pad_box.currentText()
        self.pad_box.blockSignals(True)
        self.pad_box.clear()
        self.pad_box.addItems(names)
        if current in names:
            self.pad_box.setCurrentText(current)
        self.pad_box.blockSignals(False)
        self.message.setText("" if names else "no tactile pads in this scene: add a gripper with pads from the palette")
        self._redraw()

    def set_run(self, run: Run | None) -> None:
        self.run, self.index = run, 0
        self.source.setText(f"source: {run.kind}" if run is not None else "source: no run yet")
        self._redraw()

    def show_index(self, index: int) -> None:
        """Follow the timeline to frame ``index`` of the run."""
        self.index = index
        self._redraw()

    def show_live(self, pad: str, frame: TactileFrame) -> None:
        """A frame from a real sensor stream (ROS 2 or serial)."""
        self._live[pad] = frame
        self.source.setText("source: live sensor stream")
        if pad == self.pad_box.currentText() and self.plots.ready:
            self._draw_frame(frame)

    def _redraw(self) -> None:
        """Draw the chosen pad at the current frame (once the plots exist: they are built
        from this state when the panel is first shown)."""
        pad = self.pad_box.currentText()
        if self.run is None or not pad or len(self.run) == 0:
            if self.plots.ready:
                self._draw_frame(self._live.get(pad))
                self.normal_curve.setData([], [])
                self.shear_curve.setData([], [])
            return
        frame = self.run[min(self.index, len(self.run) - 1)]
        if pad not in frame.tactile:
            self.message.setText(f"{pad}: the {self.run.kind} recorded no tactile output for this pad")
        if not self.plots.ready:
            return
        t, normal, shear = self.run.tactile_forces(pad)
        self.normal_curve.setData(t, normal)
        self.shear_curve.setData(t, shear)
        self.cursor.setValue(frame.time)
        self._draw_frame(frame.tactile.get(pad))

    def _draw_frame(self, frame: TactileFrame | None) -> None:
        if frame is None:
            self.image_item.clear()
            self.pressure_item.clear()
            self.markers.setData([], [])
            self.arrows.setData([], [])
            return
        if frame.image is not None:
            self.image_item.setImage(np.swapaxes(np.asarray(frame.image), 0, 1), levels=(0, 1))
        if frame.pressure is not None:
            pressure = np.asarray(frame.pressure)
            self.pressure_item.setImage(pressure.T)
            self.pressure_bar.setLevels((0.0, max(float(pressure.max()), 1e-9)))
        if frame.markers is not None and frame.marker_displacement is not None:
            rest = np.asarray(frame.markers)
            moved = rest + ARROW_GAIN * np.asarray(frame.marker_displacement)
            self.markers.setData(rest[:, 0], rest[:, 1])
            pairs = np.empty((2 * len(rest), 2))
            pairs[0::2], pairs[1::2] = rest, moved
            self.arrows.setData(pairs[:, 0], pairs[:, 1])
