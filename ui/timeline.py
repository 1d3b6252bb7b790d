"""Timeline: play, pause, step, loop and scrub through the frames of the last run, and edit
the trajectory's keyframes in time.

Scrubbing only looks a frame up in the cached run (no re-simulation). Keyframe edits are
requests (signals); the window turns them into undoable commands.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from app.services.frames import Run

KEY_HIT_PX = 7


class KeyframeStrip(QtWidgets.QWidget):
    """Keyframe times as diamonds over the run's time span; drag one to move it in time."""

    key_selected = QtCore.Signal(int)
    key_moved = QtCore.Signal(int, float)  # index, new time (s), on release

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(22)
        self._times: list[float] = []
        self._span = (0.0, 1.0)
        self._cursor = 0.0
        self.selected = -1
        self._dragging: float | None = None

    def set_keys(self, times: list[float], span: tuple[float, float]) -> None:
        self._times = list(times)
        self._span = (span[0], max(span[1], span[0] + 1e-9))
        if self.selected >= len(self._times):
            self.selected = -1
        self.update()

    def set_cursor(self, time: float) -> None:
        self._cursor = time
        self.update()

    def x_of(self, time: float) -> float:
        lo, hi = self._span
        return 8 + (self.width() - 16) * (time - lo) / (hi - lo)

    def time_of(self, x: float) -> float:
        lo, hi = self._span
        return lo + (hi - lo) * min(max((x - 8) / max(self.width() - 16, 1), 0.0), 1.0)

    def paintEvent(self, _event) -> None:
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        mid = self.height() / 2
        painter.setPen(QtGui.QPen(QtGui.QColor("#777"), 1))
        painter.drawLine(QtCore.QPointF(8, mid), QtCore.QPointF(self.width() - 8, mid))
        for i, t in enumerate(self._times):
            shown = self._dragging if (i == self.selected and self._dragging is not None) else t
            x = self.x_of(shown)
            color = QtGui.QColor("#ffd21a" if i == self.selected else "#50c8ff")
            painter.setBrush(color)
            painter.setPen(QtGui.QPen(color.darker(150), 1))
            diamond = QtGui.QPolygonF([QtCore.QPointF(x, mid - 6), QtCore.QPointF(x + 6, mid),
                                       QtCore.QPointF(x, mid + 6), QtCore.QPointF(x - 6, mid)])
            painter.drawPolygon(diamond)
        painter.setPen(QtGui.QPen(QtGui.QColor("#ff5050"), 2))
        x = self.x_of(self._cursor)
        painter.drawLine(QtCore.QPointF(x, 2), QtCore.QPointF(x, self.height() - 2))

    def mousePressEvent(self, event) -> None:
        x = event.position().x()
        hits = [(abs(self.x_of(t) - x), i) for i, t in enumerate(self._times) if abs(self.x_of(t) - x) <= KEY_HIT_PX]
        self.selected = min(hits)[1] if hits else -1
        self._dragging = None
        self.key_selected.emit(self.selected)
        self.update()

    def mouseMoveEvent(self, event) -> None:
        if self.selected >= 0 and event.buttons() & QtCore.Qt.MouseButton.LeftButton:
            self._dragging = self.time_of(event.position().x())
            self.update()

    def mouseReleaseEvent(self, _event) -> None:
        if self.selected >= 0 and self._dragging is not None:
            self.key_moved.emit(self.selected, self._dragging)
        self._dragging = None
        self.update()


class Timeline(QtWidgets.QWidget):
    frame_changed = QtCore.Signal(int)  # index into the current run
    add_key_requested = QtCore.Signal(float)  # time (s)
    move_key_requested = QtCore.Signal(int, float)
    delete_key_requested = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.run: Run | None = None
        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self._advance)

        style = self.style()
        icon = QtWidgets.QStyle.StandardPixmap
        self.play_button = QtWidgets.QToolButton(icon=style.standardIcon(icon.SP_MediaPlay), toolTip="Play / pause (Space)")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._play_toggled)
        self.back_button = QtWidgets.QToolButton(icon=style.standardIcon(icon.SP_MediaSeekBackward), toolTip="Step back (,)")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.step_button = QtWidgets.QToolButton(icon=style.standardIcon(icon.SP_MediaSeekForward), toolTip="Step forward (.)")
        self.step_button.clicked.connect(lambda: self.step(1))
        self.loop_box = QtWidgets.QCheckBox("Loop")
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self._slider_moved)
        self.time_label = QtWidgets.QLabel("no run yet: simulate or optimize to fill the timeline")
        self.time_label.setMinimumWidth(180)

        self.keys = KeyframeStrip()
        self.keys.key_moved.connect(self.move_key_requested)
        self.add_key_button = QtWidgets.QPushButton("Add key", toolTip="Add a keyframe at the current time (K)")
        self.add_key_button.clicked.connect(lambda: self.add_key_requested.emit(self.current_time()))
        self.delete_key_button = QtWidgets.QPushButton("Delete key", toolTip="Delete the selected keyframe")
        self.delete_key_button.clicked.connect(self._delete_selected)

        controls = QtWidgets.QHBoxLayout()
        for w in (self.back_button, self.play_button, self.step_button, self.loop_box):
            controls.addWidget(w)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.time_label)
        key_row = QtWidgets.QHBoxLayout()
        key_row.addWidget(QtWidgets.QLabel("Keyframes"))
        key_row.addWidget(self.keys, 1)
        key_row.addWidget(self.add_key_button)
        key_row.addWidget(self.delete_key_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(key_row)
        layout.addStretch(1)
        self._key_times: list[float] = []
        self._duration = 1.0

    # ------------------------------------------------------------------ content

    def set_run(self, run: Run | None) -> None:
        self.pause()
        self.run = run
        has = run is not None and len(run) > 0
        self.slider.setEnabled(has)
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(run) - 1 if has else 0)
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        if has:
            self._duration = max(self._duration, float(run.times[-1]))
        self._refresh_keys()
        self._update_label()
        if has:
            self.frame_changed.emit(0)

    def set_keyframes(self, times: list[float], duration: float) -> None:
        """Keyframe times (s) and the trajectory's planned duration (s)."""
        self._key_times = list(times)
        self._duration = max(duration, float(self.run.times[-1]) if self.run is not None and len(self.run) else 0.0)
        self._refresh_keys()

    def _refresh_keys(self) -> None:
        self.keys.set_keys(self._key_times, (0.0, max(self._duration, 1e-3)))
        self.keys.set_cursor(self.current_time())

    # ------------------------------------------------------------------ playback

    @property
    def index(self) -> int:
        return self.slider.value()

    def current_time(self) -> float:
        if self.run is None or len(self.run) == 0:
            return 0.0
        return float(self.run[self.index].time)

    def seek(self, index: int) -> None:
        self.slider.setValue(index)

    def step(self, delta: int) -> None:
        if self.run is None or len(self.run) == 0:
            return
        n = len(self.run)
        target = self.index + delta
        if self.loop_box.isChecked():
            target %= n
        self.slider.setValue(min(max(target, 0), n - 1))

    def play(self) -> None:
        self.play_button.setChecked(True)

    def pause(self) -> None:
        self.play_button.setChecked(False)

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def _play_toggled(self, on: bool) -> None:
        icon = QtWidgets.QStyle.StandardPixmap.SP_MediaPause if on else QtWidgets.QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        if on and self.run is not None and len(self.run) > 1:
            dt = float(self.run.times[-1] - self.run.times[0]) / (len(self.run) - 1)
            self._timer.start(max(15, int(1000 * dt)))  # real time, at most ~60 fps
        else:
            self._timer.stop()

    def _advance(self) -> None:
        if self.index >= len(self.run) - 1 and not self.loop_box.isChecked():
            self.pause()
            return
        self.step(1)

    def _slider_moved(self, index: int) -> None:
        self._update_label()
        self.keys.set_cursor(self.current_time())
        self.frame_changed.emit(index)

    def _update_label(self) -> None:
        if self.run is None or len(self.run) == 0:
            self.time_label.setText("no run yet: simulate or optimize to fill the timeline")
            return
        self.time_label.setText(
            f"{self.run.kind}: frame {self.index + 1}/{len(self.run)}  t = {self.current_time():.3f} s"
        )

    def _delete_selected(self) -> None:
        if self.keys.selected >= 0:
            self.delete_key_requested.emit(self.keys.selected)
