"""The Qt-free optimization runner: one run of one task, kept in a folder.

``OptimizationRun.reports(n)`` is a generator of iteration reports the studio shows live and
the CLI draws as a progress bar; stopping the loop between two reports is cancelling. After
every iteration the folder holds the optimizer state, the loss curve and the best solution,
so a run killed at any moment (Ctrl-C included) resumes exactly from its last iteration.

Folder layout: state.pt (optimizer state and loss curve, plain tensors: what resume reads),
run.json (what ran, how far, the outcome), curve.csv and curve.json (one row per iteration),
best.json (best parameters and their trajectory as scene keyframes). An iteration whose
evaluation the simulator rejected has an infinite loss and says why in the curve's
"failure" column, as does a gradient step the optimizer undid (Adam's backtrack, finite
loss); run.json counts both and, if the run could not go on, names the error.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from sim.optim.optimizers import DEFAULT_OPTIMIZER, iterate, load_state, make_optimizer, save_state
from sim.optim.problem import IterationReport
from sim.tasks.base import BoundTask

CURVE_FIELDS = ("optimizer", "phase", "iteration", "loss", "best_loss", "grad_norm", "wall_time", "evaluations", "failure")


class RunFolderError(ValueError):
    """A run folder that cannot be resumed (missing files, another task)."""


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class OptimizationRun:
    def __init__(self, task: BoundTask, out_dir: Path | str, optimizer: str = DEFAULT_OPTIMIZER, seed: int = 0, settings: dict | None = None):
        self.task, self.out_dir = task, Path(out_dir)
        if settings is None:
            settings = dict(task.defaults.optimizer_settings.get(optimizer, {}))
        self.optimizer_name, self.seed, self.settings = optimizer, seed, settings
        self.optimizer = make_optimizer(optimizer, task.problem, settings, seed)
        self.curve: list[dict] = []
        self.best: IterationReport | None = None
        self.error: str | None = None  # why the run stopped early, if it could not go on

    @classmethod
    def resume(cls, task: BoundTask, out_dir: Path | str) -> "OptimizationRun":
        out_dir = Path(out_dir)
        if not (out_dir / "state.pt").exists():
            raise RunFolderError(f"{out_dir} holds no resumable run (state.pt is missing)")
        optimizer, extra = load_state(out_dir / "state.pt", task.problem)
        if extra["task"] != task.kind:
            raise RunFolderError(f"{out_dir} holds a run of task {extra['task']!r}, not {task.kind!r}")
        run = cls(task, out_dir, optimizer.name, optimizer.seed, extra["settings"])
        run.optimizer, run.curve = optimizer, extra["curve"]
        return run

    @property
    def iterations_done(self) -> int:
        return len(self.curve)

    @property
    def best_loss(self) -> float:
        return self.optimizer.best_loss

    @property
    def solved(self) -> bool:
        return self.task.success(self.best_loss)

    def reports(self, iterations: int, stop_at_success: bool = True) -> Iterator[IterationReport]:
        """Run up to `iterations` more iterations, saving after each; stop once solved."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if stop_at_success and self.curve and self.solved:
            return
        for report in iterate(self.optimizer, iterations):
            self.curve.append(report.row())
            self._save(report)
            yield report
            if stop_at_success and self.task.success(report.best_loss):
                return

    def _save(self, report: IterationReport) -> None:
        # The curve travels inside the state file, so the two never disagree after a crash.
        save_state(self.out_dir / "state.pt", self.optimizer, {"task": self.task.kind, "settings": self.settings, "curve": self.curve})
        _write_atomic(self.out_dir / "curve.json", json.dumps(self.curve))
        with open(self.out_dir / "curve.csv.tmp", "w", newline="") as f:
            writer = csv.DictWriter(f, CURVE_FIELDS)
            writer.writeheader()
            writer.writerows(self.curve)
        os.replace(self.out_dir / "curve.csv.tmp", self.out_dir / "curve.csv")
        if report.failure is None and report.loss <= self.optimizer.best_loss:
            self._write_best(report)
        _write_atomic(self.out_dir / "run.json", json.dumps(self.summary(), indent=2))

    def record_error(self, message: str) -> None:
        """Note in run.json why the run stopped before its budget."""
        self.error = message
        self.out_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.out_dir / "run.json", json.dumps(self.summary(), indent=2))

    def _write_best(self, report: IterationReport) -> None:
        interpolation, frames = self.task.keyframes(report.params)
        best = {
            "task": self.task.kind,
            "loss": report.loss,
            "iteration": report.iteration,
            "params": report.params.tolist(),
            "trajectory": {"tool": self.task.tool, "interpolation": interpolation, "keyframes": frames},
            "motion": self.task.motion(report.params).tolist(),
        }
        _write_atomic(self.out_dir / "best.json", json.dumps(best))

    def best_solution(self) -> dict:
        try:
            return json.loads((self.out_dir / "best.json").read_text())
        except FileNotFoundError:
            raise RunFolderError(f"{self.out_dir} has no best solution yet (no iteration finished)") from None

    def summary(self) -> dict:
        last = self.curve[-1] if self.curve else {}
        solved_at = next((r for r in self.curve if self.task.success(r["best_loss"])), None)
        return {
            "task": self.task.kind,
            "optimizer": self.optimizer_name,
            "seed": self.seed,
            "settings": self.settings,
            "success_threshold": self.task.defaults.success_threshold,
            "iterations": self.iterations_done,
            "best_loss": float(self.best_loss) if np.isfinite(self.best_loss) else None,
            "solved": bool(self.curve) and self.solved,
            "iterations_to_success": solved_at["iteration"] if solved_at else None,
            "wall_time_to_success": solved_at["wall_time"] if solved_at else None,
            "wall_time": last.get("wall_time", 0.0),
            "evaluations": last.get("evaluations", 0),
            "failed_iterations": sum(1 for r in self.curve if r.get("failure") and not np.isfinite(r["loss"])),
            "backtracked_iterations": sum(1 for r in self.curve if r.get("failure") and np.isfinite(r["loss"])),
            "error": self.error,
        }
