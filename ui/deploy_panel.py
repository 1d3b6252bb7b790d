"""Deploy panel: connection status of the lab devices, the pre-flight report (every violated
limit by joint and time), dry-run, arm, execute with a speed scale, a large Stop (also on
Escape, window-wide), and planned against measured joint positions plotted live."""

from __future__ import annotations

import bisect

import numpy as np
from PySide6 import QtCore, QtWidgets

from ui.plots import PlotSlot, pyqtgraph

DEVICES = ("arm controller", "gripper", "tactile sensors")
COLORS = ("#50c8ff", "#ff8c50", "#7ee787", "#ffd21a", "#d2a8ff", "#ff7b72", "#79c0ff", "#f0f0f0")


class StatusLight(QtWidgets.QLabel):
    def set_state(self, connected: bool | None, detail: str) -> None:
        color = {True: "#3fb950", False: "#f85149", None: "#8b949e"}[connected]
        self.setText(f"<span style='color:{color}'>●</span> {detail}")


class DeployPanel(QtWidgets.QWidget):
    connect_requested = QtCore.Signal()
    dry_run_requested = QtCore.Signal()
    arm_requested = QtCore.Signal()
    execute_requested = QtCore.Signal(float)  # speed scale in (0, 1]
    stop_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.lights = {name: StatusLight() for name in DEVICES}
        status = QtWidgets.QFormLayout()
        for name, light in self.lights.items():
            light.set_state(None, "not connected")
            status.addRow(name, light)
        self.connect_button = QtWidgets.QPushButton("Connect")
        self.connect_button.clicked.connect(self.connect_requested)
        connection = QtWidgets.QHBoxLayout()  # Connect beside the lights: the dock is short
        connection.addLayout(status, 1)
        connection.addWidget(self.connect_button, 0, QtCore.Qt.AlignmentFlag.AlignVCenter)

        self.report = QtWidgets.QTableWidget(0, 4)
        self.report.setHorizontalHeaderLabels(["joint", "time [s]", "limit", "what"])
        self.report.horizontalHeader().setStretchLastSection(True)
        self.report.verticalHeader().hide()
        # the table scrolls: on a short dock it gives up height first, so the messages above
        # it keep every wrapped line (they were clipped to one and a half)
        self.report.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Ignored)
        self.report.setMinimumHeight(60)
        self.verdict = QtWidgets.QLabel("pre-flight: not checked yet (Dry-run checks every limit)")
        self.verdict.setWordWrap(True)

        self.dry_run_button = QtWidgets.QPushButton("Dry-run")
        self.dry_run_button.clicked.connect(self.dry_run_requested)
        self.arm_button = QtWidgets.QPushButton("Arm")
        self.arm_button.clicked.connect(self.arm_requested)
        self.speed = QtWidgets.QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, value=0.25, suffix=" ×")
        self.speed.setToolTip("Speed scale applied to the planned trajectory (1 = as planned)")
        self.execute_button = QtWidgets.QPushButton("Execute")
        self.execute_button.clicked.connect(lambda: self.execute_requested.emit(self.speed.value()))
        self.stop_button = QtWidgets.QPushButton("STOP  (Esc)")
        self.stop_button.setMinimumHeight(64)
        self.stop_button.setStyleSheet(
            "QPushButton { background: #d1242f; color: white; font-size: 20px; font-weight: bold; border-radius: 6px; }"
            "QPushButton:pressed { background: #8e1519; }"
        )
        self.stop_button.clicked.connect(self.stop_requested)
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)

        steps = QtWidgets.QHBoxLayout()
        steps.addWidget(self.dry_run_button)
        steps.addWidget(self.arm_button)
        steps.addWidget(QtWidgets.QLabel("speed"))
        steps.addWidget(self.speed)
        steps.addWidget(self.execute_button)

        self.plots = PlotSlot(self._build_plots, self._draw_plan)
        self.planned_curves: list = []
        self.measured_curves: list = []
        self._plan: tuple[list[str], np.ndarray, np.ndarray] = ([], np.zeros(0), np.zeros((0, 0)))

        left = QtWidgets.QVBoxLayout()
        left.addLayout(connection)
        left.addLayout(steps)
        left.addWidget(self.stop_button)
        left.addWidget(self.message)
        left.addWidget(self.verdict)
        left.addWidget(self.report, 1)
        layout = QtWidgets.QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addWidget(self.plots, 1)
        self._measured: list[tuple[float, np.ndarray]] = []
        self.set_armed(False)

    def _build_plots(self):
        self.joint_plot = pyqtgraph().PlotWidget(title="joints: planned (dashed) vs measured [rad]")
        self.joint_plot.setLabel("bottom", "time", units="s")
        # one legend for every plan (clear() empties it): a legend added per plan stayed
        # behind the next one, and their labels overprinted each other. One compact block in
        # the top-right corner, over headroom kept free above the curves.
        self.legend = self.joint_plot.addLegend(offset=(-5, 5), colCount=4, brush=(31, 35, 41, 210))
        self.legend.setVisible(False)  # an empty legend is drawn as a small grey box
        return self.joint_plot

    # ------------------------------------------------------------------ state from the service

    def set_connection(self, device: str, connected: bool | None, detail: str) -> None:
        self.lights[device].set_state(connected, detail)

    def set_armed(self, armed: bool) -> None:
        self.execute_button.setEnabled(armed)
        self.arm_button.setText("Armed" if armed else "Arm")

    def show_preflight(self, ok: bool, violations: list[tuple[str, float, str, str]]) -> None:
        """Every violated limit as (joint, time s, limit, description)."""
        self.report.setRowCount(len(violations))
        for row, (joint, time, limit, what) in enumerate(violations):
            for col, text in enumerate((joint, f"{time:.3f}", limit, what)):
                self.report.setItem(row, col, QtWidgets.QTableWidgetItem(text))
        self.verdict.setText(
            "pre-flight: every limit holds" if ok else f"pre-flight: {len(violations)} violation(s); fix them before arming"
        )
        self.verdict.setStyleSheet(f"color: {'#3fb950' if ok else '#f85149'};")

    def show_message(self, text: str) -> None:
        self.message.setText(text)

    def show_plan(self, joint_names: list[str], times: np.ndarray, positions: np.ndarray) -> None:
        """The planned joint positions (T, J) over time, drawn dashed."""
        self._plan, self._measured = (list(joint_names), np.asarray(times), np.asarray(positions)), []
        if self.plots.ready:
            self._draw_plan()

    def _draw_plan(self) -> None:
        """The plan and what was measured of it so far (on a change of plan and when the plots are built)."""
        pg = pyqtgraph()
        joint_names, times, positions = self._plan
        self.joint_plot.clear()
        self.planned_curves, self.measured_curves = [], []
        self.legend.setVisible(bool(joint_names))
        for j, name in enumerate(joint_names):
            color = COLORS[j % len(COLORS)]
            dashed = pg.mkPen(color, width=1, style=QtCore.Qt.PenStyle.DashLine)
            self.planned_curves.append(self.joint_plot.plot(times, positions[:, j], pen=dashed))
            self.measured_curves.append(self.joint_plot.plot([], [], pen=pg.mkPen(color, width=2), name=name))
        if positions.size:
            low, high = float(positions.min()), float(positions.max())
            span = max(high - low, 0.1)
            self.joint_plot.setYRange(low - 0.05 * span, high + 0.5 * span, padding=0)
        self._draw_measured()

    def add_measured(self, time: float, positions: np.ndarray) -> None:
        """One measured joint state (from the arm's joint_states), drawn live in time order
        (callbacks on several ROS threads can deliver two states out of order)."""
        bisect.insort(self._measured, (time, np.asarray(positions, dtype=float)), key=lambda m: m[0])
        self._draw_measured()

    def _draw_measured(self) -> None:
        if not self._measured:
            return
        t = np.array([m[0] for m in self._measured])
        q = np.array([m[1] for m in self._measured])
        for j, curve in enumerate(self.measured_curves[: q.shape[1]]):
            curve.setData(t, q[:, j])

