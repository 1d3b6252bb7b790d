"""Joins the window to the Qt-free services: simulations run on the one simulation thread
and come back as queued Qt signals; optimizations, and the check whether a scene's task can
be optimized, run in a worker process whose messages a timer polls, so the GUI thread only
ever draws numpy copies and never waits on Taichi or torch. Work on the simulation thread
holds the interpreter lock for long stretches (imports, Taichi's start: up to a second at a
time, sampled), so nothing goes there while an optimization runs unless the user asks."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from app.scene.io import scene_to_text
from app.services.frames import Run
from app.services.optimization_process import OptimizationProcess, Outcome
from app.services.previews import path_run
from app.services.sim_thread import Cancelled, CancelToken, shared_simulation_thread
from app.services.simulation import SimulationUnavailable, runtime_message, simulate_scene, warm_up
from ui import heap, plots
from ui.geometry import pose_matrix


PREVIEW_INTERVAL_MS = 333  # the viewport follows an optimization's best path 3x/s
POLL_INTERVAL_MS = 30  # how often the worker's messages are read while it optimizes
WARM_UP_DELAY_MS = 300  # after the window's first frame
HEAP_SETTLE_LIMIT_MS = 30_000  # garbage collection is back on by then, warm or not (ui.heap)


class StudioBridge(QtCore.QObject):
    # emitted from the simulation thread; Qt queues them to the GUI thread
    simulation_done = QtCore.Signal(object, object)  # Run, ["entity: why not simulated"]
    simulation_failed = QtCore.Signal(str)
    simulation_progress = QtCore.Signal(int, int)  # step, steps
    simulator_ready = QtCore.Signal(str)  # where kernels run, or why they cannot

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.sim_thread = shared_simulation_thread()
        self.optimizer = OptimizationProcess()
        self.window = None
        self._opt_folder: Path | None = None  # the run Resume continues
        self._opt_scene_text = None  # the document the run was started from
        self._rest_pose = np.eye(4)  # the tool's orientation in previews of the running job
        self.delivered = 0  # reports of the current start that reached the window
        self.report_times: list[float] = []  # time.time() at which the worker finished each of them
        self._runs_dir = Path(tempfile.mkdtemp(prefix="deft-studio-runs-"))
        self._started = 0
        self._warmed = False
        self._warm_up_waiting = False  # the simulator's start, put off until an optimization ends
        self._unchecked_edit = False  # an edit made while optimizing, checked when the job ends
        self._shut_down = False
        self._sim_token: CancelToken | None = None
        self._latest_path = None
        self._preview_timer = QtCore.QTimer(self, singleShot=True, interval=PREVIEW_INTERVAL_MS)
        self._preview_timer.timeout.connect(self._show_latest_path)
        self._poll_timer = QtCore.QTimer(self, interval=POLL_INTERVAL_MS)
        self._poll_timer.timeout.connect(self._poll)

    # ------------------------------------------------------------------ window wiring

    def connect_window(self, window) -> None:
        self.window = window
        panel = window.optimize_panel
        self.simulator_ready.connect(lambda message: window.statusBar().showMessage(message, 10_000))
        self.simulator_ready.connect(self._settle_heap)
        self.simulation_done.connect(self._on_simulation_done)
        self.simulation_failed.connect(self._on_simulation_failed)
        self.simulation_progress.connect(lambda k, n: window.statusBar().showMessage(f"simulating: step {k}/{n}"))

    def document_replaced(self, scene) -> None:
        self._opt_folder = None
        self._check_optimizable(scene)
        if self._warmed:
            return
        # the first time, after the first frame: loading torch and Taichi on the simulation
        # thread would otherwise compete with the GUI thread for the interpreter lock
        self._warmed = True
        self.window.statusBar().showMessage("starting the simulator (the first start compiles kernels)…")

        def start() -> None:
            if self._shut_down:
                return
            self.optimizer.prestart()
            plots.preload()
            QtCore.QTimer.singleShot(HEAP_SETTLE_LIMIT_MS, heap.settle)
            self._warm_up_waiting = True
            if not self.optimizer.running:
                self._start_warm_up()

        QtCore.QTimer.singleShot(WARM_UP_DELAY_MS, start)

    def _start_warm_up(self) -> None:
        if self._warm_up_waiting:
            self._warm_up_waiting = False
            scene = self.window.scene
            self.sim_thread.submit(self._warm_up, scene.simulation.backend, scene.simulation.precision)

    def _settle_heap(self, *_) -> None:
        """Once the simulator and the plots are imported, what they made lives as long as
        the window: out of the collector's way (ui.heap)."""
        if plots.imported():
            heap.settle()
        else:
            QtCore.QTimer.singleShot(plots.IMPORT_POLL_MS, self._settle_heap)

    def _check_optimizable(self, scene) -> None:
        """Asked of the worker process (answered in ``_on_availability``); while it
        optimizes, the panel's state stands until the job ends."""
        self._unchecked_edit = self.optimizer.running  # checked when the job ends
        if self.optimizer.running or self._shut_down:
            return
        self.optimizer.check(scene_to_text(scene), self.window.path)
        self._poll_timer.start()

    def _on_availability(self, kind: str, method: str, why: str) -> None:
        task = self.window.scene.task
        if (task.kind, task.optimizer.method) == (kind, method) and not self.optimizer.running:
            self.window.optimize_panel.set_available(not why, why)

    def document_edited(self, scene) -> None:
        """Edits make runs of the old document stale; a stopped optimization can no longer resume."""
        self._check_optimizable(scene)
        if self._opt_folder is not None and not self.optimizer.running:
            if scene_to_text(scene) != self._opt_scene_text:
                self._opt_folder = None
                self.window.optimize_panel.set_running(False, can_resume=False)

    def runtime_message(self) -> str:
        return runtime_message()

    # ------------------------------------------------------------------ simulation

    def simulate(self, scene, path) -> None:
        if self._sim_token is not None:
            self.window.statusBar().showMessage("a simulation is already running (Stop simulation ends it)")
            return
        self._warm_up_waiting = False  # the simulation starts Taichi itself
        scene = scene.model_copy(deep=True)  # the simulation thread must not see later edits
        token = self._sim_token = CancelToken()
        self.window.statusBar().showMessage("simulating…")

        def job() -> None:
            try:
                run, skipped = simulate_scene(scene, path, token, lambda k, n: self.simulation_progress.emit(k, n))
            except Cancelled:
                self.simulation_failed.emit("stopped")
                return
            except SimulationUnavailable as exc:
                self.simulation_failed.emit(f"not available: {exc}")
                return
            except Exception as exc:  # a blow-up names its step and entity; shown as is
                self.simulation_failed.emit(f"{type(exc).__name__}: {exc}")
                return
            self.simulation_done.emit(run, list(skipped))

        self.sim_thread.submit(job)

    def _warm_up(self, backend: str, precision: str) -> None:
        try:
            self.simulator_ready.emit(f"simulator ready: {warm_up(backend, precision)}")
        except Exception as exc:  # the studio still edits and optimizes kinematic tasks
            self.simulator_ready.emit(f"simulator not available: {type(exc).__name__}: {exc}")

    def stop_simulation(self) -> None:
        if self._sim_token is not None:
            self._sim_token.cancel()

    def _on_simulation_done(self, run: Run, skipped: list) -> None:
        self._sim_token = None
        self._on_run(run)
        if skipped:
            self.window.statusBar().showMessage(f"simulation: {len(run)} frames; not simulated: {'; '.join(skipped)}")

    def _on_simulation_failed(self, why: str) -> None:
        self._sim_token = None
        self.window.statusBar().showMessage(f"simulation {why}")

    def _on_run(self, run: Run) -> None:
        self.window.set_run(run)
        self.window.statusBar().showMessage(f"{run.kind}: {len(run)} frames on the timeline")

    # ------------------------------------------------------------------ optimization

    def optimize(self, scene, path, resume: bool) -> None:
        panel = self.window.optimize_panel
        if self.optimizer.running:
            return
        if resume and self._opt_folder is None:
            panel.finish("nothing to resume: start an optimization first", can_resume=False)
            return
        text = scene_to_text(scene)
        if not resume:
            self._opt_scene_text = text
            self._started += 1
            self._opt_folder = self._runs_dir / f"run-{self._started}"
        self._rest_pose = _tool_rest_pose(scene)
        self.delivered, self.report_times = 0, []
        self.optimizer.start(text, path, self._opt_folder, scene.task.optimizer.iterations, resume)
        plots.pause_building_ahead(True)
        panel.begin(scene.task.optimizer.iterations, fresh=not resume)
        self.window.viewport.set_draft(True)  # previews must not freeze the window
        self.window.statusBar().showMessage("optimizing…")
        self._poll_timer.start()

    def stop_optimization(self) -> None:
        self.optimizer.stop()

    def _poll(self) -> None:
        # jobs run one at a time and a start waits for the last one's end: every message is the current job's
        for kind, _job, *rest in self.optimizer.poll():
            getattr(self, f"_on_{kind}")(*rest)
        if not self.optimizer.running and not self.optimizer.checks_pending:
            self._poll_timer.stop()

    def _on_report(self, row: dict, positions: np.ndarray, finished_at: float) -> None:
        self.delivered += 1
        self.report_times.append(finished_at)
        self.window.optimize_panel.add_report(row)
        self._latest_path = positions
        if not self._preview_timer.isActive():
            self._preview_timer.start()

    def _show_latest_path(self) -> None:
        """The viewport follows the optimization a few times a second, not at every report:
        a render costs more than an iteration of a small task."""
        if self._latest_path is not None:
            self.window.viewport.show_preview_path(self._latest_path)

    def _on_preview(self, tool: str, dt: float, positions: np.ndarray) -> None:
        self._on_run(path_run(tool, dt, positions, self._rest_pose))

    def _on_unavailable(self, why: str) -> None:
        self._opt_folder = None
        self.window.optimize_panel.set_available(False, why)
        self.window.statusBar().showMessage(f"optimization not available: {why}")
        self._start_warm_up()

    def _on_failed(self, why: str) -> None:
        self._finish_optimization(f"failed: {why}", can_resume=True)

    def _on_done(self, outcome: Outcome) -> None:
        verdict = "solved" if outcome.solved else "not solved yet"
        how = "stopped" if outcome.cancelled else "finished"
        self._finish_optimization(
            f"{how}: {verdict}, best loss {outcome.best_loss:.4g} after {outcome.iterations_done} iterations", can_resume=True
        )

    def _finish_optimization(self, message: str, can_resume: bool) -> None:
        plots.pause_building_ahead(False)
        self.window.viewport.set_draft(False)
        self.window.optimize_panel.finish(message, can_resume=can_resume and self._opt_folder is not None)
        self.window.statusBar().showMessage(f"optimization {message}")
        self._start_warm_up()
        if self._unchecked_edit:
            self._check_optimizable(self.window.scene)

    def shutdown(self) -> None:
        """Stop this window's jobs; the shared simulation thread lives on for the process."""
        self._shut_down = True
        self._poll_timer.stop()
        plots.pause_building_ahead(False)
        self.optimizer.shutdown()
        self.stop_simulation()


def _tool_rest_pose(scene) -> np.ndarray:
    name = scene.trajectory.tool if scene.trajectory else (scene.grippers()[0].name if scene.grippers() else None)
    if name is None:
        return np.eye(4)
    return pose_matrix(scene.entity(name).transform)
