"""Joins the deploy panel to app.services.deploy and the ROS 2 link.

Planning (inverse kinematics over the whole trajectory) and talking to the lab block, so
they run on a deploy worker thread (never the simulation thread: deploying must not wait
for an optimization). Results and link callbacks come back as queued signals.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6 import QtCore

from app.services.sim_thread import SimulationThread

CONNECT_TIMEOUT_S = 5.0


def violation_rows(report) -> list[tuple[str, float, str, str]]:
    """(joint or kind, time s, limit, message) for the panel's table, one per violation."""
    rows = []
    for v in report.violations:
        limit = f"{v.kind} {v.limit:.4g}" if v.limit is not None else v.kind
        rows.append((v.joint or v.kind, v.time if v.time is not None else 0.0, limit, v.message))
    return rows


class DeployController(QtCore.QObject):
    planned = QtCore.Signal(object, object)  # DeployPlan, SafetyReport
    executing = QtCore.Signal(object, float)  # the DeployPlan sent to the arm, its speed scale
    failed = QtCore.Signal(str)
    connected = QtCore.Signal(object, str)  # RosLink or None, detail
    measured = QtCore.Signal(float, object)  # stamp s, joint positions
    finished = QtCore.Signal(str)
    tactile_image = QtCore.Signal(str, object)  # sensor name, image from the real pad (uint8 or float)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.panel = window.deploy_panel
        self.worker = SimulationThread(name="deft-deploy")
        self.link = None
        self.plan = None
        self.execution = None
        self._t0 = 0.0
        self._arming = None
        p = self.panel
        p.dry_run_requested.connect(self.dry_run)
        p.arm_requested.connect(self.arm)
        p.execute_requested.connect(self.execute)
        p.stop_requested.connect(self.stop)
        p.connect_requested.connect(self.connect_lab)
        self.planned.connect(self._show_plan)
        self.executing.connect(self._show_execution)
        self.failed.connect(lambda why: p.show_message(why))
        self.connected.connect(self._on_connected)
        self.measured.connect(lambda t, q: p.add_measured(t, q))
        self.finished.connect(self._on_finished)
        self.tactile_image.connect(self._on_tactile_image)

    @property
    def arming(self):
        """Created on first use: robot.execution loads scipy, which the first frame need not wait for."""
        if self._arming is None:
            from robot.execution import Arming

            self._arming = Arming()
        return self._arming

    def _measured_state(self):
        return self.link.joint_state(1.0) if self.link is not None else None

    def dry_run(self) -> None:
        """Plan and check the scene's trajectory without moving anything."""
        from app.services.deploy import DeployError, plan, preflight

        scene, path, speed = self.window.scene.model_copy(deep=True), self.window.path, self.panel.speed.value()
        self.panel.show_message("dry-run: planning the joint trajectory and checking every limit…")

        def job() -> None:
            try:
                measured = self._measured_state()
                p = plan(scene, path, speed=speed, measured=measured)
                self.planned.emit(p, preflight(p, measured))
            except (DeployError, ValueError, TimeoutError) as exc:
                self.failed.emit(f"not available: {exc}")

        self.worker.submit(job)

    def _show_plan(self, plan, report) -> None:
        self.plan = plan
        traj = plan.trajectory
        self.panel.show_plan(list(traj.joint_names), np.asarray(traj.times), np.asarray(traj.positions))
        self.panel.show_preflight(report.passed, violation_rows(report))
        notes = "; ".join(report.notes)
        self.panel.show_message(f"dry-run done: {traj.duration:.2f} s of motion" + (f" ({notes})" if notes else ""))

    def _show_execution(self, plan, speed: float) -> None:
        """The plot shows what runs: execution re-plans from the measured state at its own speed."""
        self.plan = plan
        traj = plan.trajectory
        self.panel.show_plan(list(traj.joint_names), np.asarray(traj.times), np.asarray(traj.positions))
        self.panel.show_message(f"executing {traj.duration:.2f} s of motion at speed {speed:g} (Stop or Esc halts it)")

    def arm(self) -> None:
        if self.plan is None:
            self.panel.show_message("dry-run first: arming needs a checked plan")
            return
        if self.link is None:
            self.panel.show_message("connect to the lab first: nothing to arm")
            return
        self.arming.arm()
        self.panel.set_armed(True)
        self.panel.show_message("armed for one motion: Execute sends it, Stop or Esc halts it")

    def execute(self, speed: float) -> None:
        from app.services.deploy import DeployError, execute_plan, plan

        if self.link is None or not self.arming.armed:
            self.panel.show_message("not armed: connect, dry-run and arm first")
            return
        scene, path, link = self.window.scene.model_copy(deep=True), self.window.path, self.link

        def job() -> None:
            try:
                measured = link.joint_state(2.0)
                p = plan(scene, path, speed=speed, measured=measured)
                self.executing.emit(p, speed)
                self._t0 = time.time()  # the plan's clock: 0 when the goal goes out (stamps are wall time)
                outcome, gripper_errors = execute_plan(link, p, self.arming, measured)
            except (DeployError, RuntimeError, TimeoutError, ValueError) as exc:
                self.finished.emit(f"not executed: {exc}")
                return
            extra = f"; gripper: {'; '.join(gripper_errors)}" if gripper_errors else ""
            self.finished.emit(f"execution: {outcome}{extra}")

        self.panel.set_armed(False)
        self.worker.submit(job)

    def stop(self) -> None:
        """Stop motion now: cancel the running goal (from the GUI thread, not queued behind it)."""
        self.arming.disarm()
        self.panel.set_armed(False)
        active = getattr(self.link, "active", None) if self.link is not None else None
        if active is not None:
            took = active.cancel()
            self.panel.show_message(f"STOPPED: cancel acknowledged in {took * 1000:.0f} ms")
        else:
            self.panel.show_message("stop: nothing is moving")

    def connect_lab(self) -> None:
        from app.services.deploy import lab_topics

        topics = lab_topics(self.window.scene)
        self.panel.set_connection("arm controller", None, f"connecting to {topics.controller}…")

        def job() -> None:
            try:
                from robot.ros2.link import RosLink

                link = RosLink(topics)
            except (ImportError, RuntimeError, OSError) as exc:
                self.connected.emit(None, f"ROS 2 not available here ({exc})")
                return
            if not link.wait_for_controller(CONNECT_TIMEOUT_S):
                link.close()
                self.connected.emit(None, f"no controller answers on {topics.action} within {CONNECT_TIMEOUT_S:g} s")
                return
            link.state_listeners.append(self._on_state)
            link.tactile_listeners.append(lambda name, image: self.tactile_image.emit(name, np.array(image)))
            self.connected.emit(link, f"{topics.controller} answering")

        self.worker.submit(job)

    def _on_state(self, stamp: float, positions) -> None:
        """ROS thread: measured joints at their message stamp, from the start of the execution."""
        if self._t0:
            self.measured.emit(stamp - self._t0, np.array(positions))

    def _on_connected(self, link, detail: str) -> None:
        self.link = link
        self.panel.set_connection("arm controller", link is not None, detail)
        if link is not None:
            scene = self.window.scene
            self.panel.set_connection("gripper", None, f"{scene.lab.gripper_topic} (checked on first grip)")
            topics = ", ".join(scene.lab.tactile_topics.values()) or "none configured"
            self.panel.set_connection("tactile sensors", None, f"subscribed: {topics}")

    def _on_tactile_image(self, name: str, image) -> None:
        """A real pad's image shown in the tactile panel, as the simulated ones are."""
        from app.services.frames import TactileFrame, frozen

        scale = 255.0 if np.asarray(image).dtype == np.uint8 else 1.0
        self.window.tactile_panel.show_live(name, TactileFrame(image=frozen(np.asarray(image) / scale)))

    def _on_finished(self, message: str) -> None:
        self._t0 = 0.0
        self.panel.show_message(message)

    def shutdown(self) -> None:
        if self.link is not None:
            self.link.close()
        self.worker.shutdown(wait=False)
