"""Optimization panel: the scene's task, loss terms and optimizer settings (edited through
the undo stack like any field), start/stop/resume, and the live loss and gradient-norm
curves with iteration count, elapsed time and ETA."""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtWidgets

from ui.inspector import Inspector
from ui.plots import PlotSlot, count_axis, log_axis, pyqtgraph

# Curves and progress are redrawn at most this often while reports stream in: each redraw
# repaints both plots, and a small task reports faster than the window needs to follow.
REDRAW_INTERVAL_MS = 250


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes}:{sec:02d}"


class OptimizePanel(QtWidgets.QWidget):
    start_requested = QtCore.Signal()
    stop_requested = QtCore.Signal()
    resume_requested = QtCore.Signal()

    def __init__(self, apply, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = Inspector(apply)
        self.start_button = QtWidgets.QPushButton("Optimize", toolTip="Start a new optimization (Ctrl+Shift+O)")
        self.stop_button = QtWidgets.QPushButton("Stop", toolTip="Stop after the current iteration")
        self.resume_button = QtWidgets.QPushButton("Resume", toolTip="Continue the stopped optimization")
        self.start_button.clicked.connect(self.start_requested)
        self.stop_button.clicked.connect(self.stop_requested)
        self.resume_button.clicked.connect(self.resume_requested)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.progress = QtWidgets.QLabel("iteration 0   elapsed 0.0 s   ETA –   best loss –")

        self.plots = PlotSlot(self._build_plots, self._redraw)

        buttons = QtWidgets.QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)
        plots = QtWidgets.QVBoxLayout()
        plots.addLayout(buttons)
        plots.addWidget(self.progress)
        plots.addWidget(self.status)
        plots.addWidget(self.plots, 1)
        right = QtWidgets.QWidget()
        right.setLayout(plots)
        split = QtWidgets.QSplitter()
        split.addWidget(self.settings)
        split.addWidget(right)
        split.setStretchFactor(1, 2)
        split.setSizes([420, 900])
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(split)
        self.rows: list[dict] = []
        self._redraw_timer = QtCore.QTimer(self, singleShot=True, interval=REDRAW_INTERVAL_MS)
        self._redraw_timer.timeout.connect(self._redraw)
        self.planned = 0
        self._available = True
        self.set_running(False, can_resume=False)

    def _build_plots(self) -> QtWidgets.QWidget:
        pg = pyqtgraph()
        self.loss_plot = pg.PlotWidget(title="loss", axisItems={"left": log_axis(), "bottom": count_axis()})
        self.loss_plot.setLogMode(y=True)
        self.loss_plot.setLabel("bottom", "iteration")
        self.loss_plot.addLegend(offset=(-10, 10))
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#50c8ff", width=2), name="loss")
        self.best_curve = self.loss_plot.plot(pen=pg.mkPen("#ffd21a", width=1, style=QtCore.Qt.PenStyle.DashLine),
                                              name="best so far")
        self.grad_plot = pg.PlotWidget(title="gradient norm", axisItems={"left": log_axis(), "bottom": count_axis()})
        self.grad_plot.setLogMode(y=True)
        self.grad_plot.setLabel("bottom", "iteration")
        self.grad_plot.setXLink(self.loss_plot)  # the same iterations side by side
        self.grad_curve = self.grad_plot.plot(pen=pg.mkPen("#ff8c50", width=2))
        curves = QtWidgets.QWidget()
        row = QtWidgets.QHBoxLayout(curves)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.loss_plot, 1)
        row.addWidget(self.grad_plot, 1)
        return curves

    def show_task(self, task) -> None:
        self.settings.show_node(task, ("task",), "Task, loss terms and optimizer")

    def set_available(self, available: bool, why: str = "") -> None:
        """Whether optimization can run for this scene; ``why`` says what is missing."""
        self._available = available
        if not available:
            self.status.setText(f"not available: {why}")
        elif self.status.text().startswith("not available"):
            self.status.setText("")  # the last run's outcome stays
        self.set_running(False, can_resume=available and self.resume_button.isEnabled())

    def set_running(self, running: bool, can_resume: bool = False) -> None:
        self.start_button.setEnabled(self._available and not running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(self._available and not running and can_resume)

    def begin(self, planned_iterations: int, fresh: bool) -> None:
        if fresh:
            self.rows = []
            self._redraw()
        self.planned = len(self.rows) + planned_iterations
        self.status.setText("optimizing…")
        self.set_running(True)

    def add_report(self, row: dict) -> None:
        """One iteration report (loss, best_loss, grad_norm, iteration, wall_time)."""
        self.rows.append(row)
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def finish(self, message: str, can_resume: bool) -> None:
        self.status.setText(message)
        self.set_running(False, can_resume=can_resume)
        self._redraw_timer.stop()
        self._redraw()  # every report drawn, without the ETA

    def _redraw(self) -> None:
        if self.plots.ready:
            self._draw_curves()
        if not self.rows:
            self.progress.setText("iteration 0   elapsed 0.0 s   ETA –   best loss –")
            return
        last = self.rows[-1]
        elapsed = float(last["wall_time"])
        per_iteration = elapsed / max(len(self.rows), 1)
        remaining = max(self.planned - len(self.rows), 0)
        self.progress.setText(
            f"iteration {int(last['iteration'])}   elapsed {_clock(elapsed)}   "
            f"ETA {_clock(per_iteration * remaining) if self.stop_button.isEnabled() else '–'}   "
            f"best loss {last['best_loss']:.4g}"
        )

    def _draw_curves(self) -> None:
        if not self.rows:
            for curve in (self.loss_curve, self.best_curve, self.grad_curve):
                curve.setData([], [])
            return
        it = np.array([r["iteration"] for r in self.rows], dtype=float)
        positive = lambda v: np.maximum(np.asarray(v, dtype=float), 1e-300)  # log axes
        self.loss_curve.setData(it, positive([r["loss"] for r in self.rows]))
        self.best_curve.setData(it, positive([r["best_loss"] for r in self.rows]))
        grads = [(i, r["grad_norm"]) for i, r in zip(it, self.rows) if r.get("grad_norm") is not None]
        if grads:
            gi, gv = np.array(grads).T
            self.grad_curve.setData(gi, positive(gv))
