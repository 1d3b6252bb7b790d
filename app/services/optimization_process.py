"""Optimizations run in a worker process, so the studio's interpreter never runs them.

Binding a task and iterating an optimizer are long stretches of Python (torch, Taichi) that
hold the interpreter lock; on the studio's simulation thread they froze the event loop for
about 300 ms at a time. Here a spawned process (the only safe start method next to Qt, Taichi
and torch threads) takes jobs from one queue and streams messages back through another,
which the UI polls with a timer. Stop sets a shared event that the worker checks after every
iteration; the run folder (``app.services.optimize``) holds the state Resume continues from.

Messages the worker sends, as tuples whose first item names them:
``("report", job, row, positions, finished_at)``: one iteration (``row``: the report without
its parameters; ``positions``: (T, 3) tool path of its parameters; ``finished_at``: time.time()),
``("preview", job, tool, dt, positions)``: the best motion so far, when the job ends,
``("done", job, Outcome)``, ``("unavailable", job, why)`` and ``("failed", job, why)``;
and, answering ``check``, ``("availability", 0, task kind, optimizer method, why)`` ('' when fine).
A process that could not be started is one ``("failed", job, why)`` from ``poll`` (job 0 when
it was started ahead of any job); the next start tries again.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.popen_spawn_posix  # noqa: F401  (imported now, not at the first Optimize:
import multiprocessing.queues  # noqa: F401  PySide's import hook reads the source of every module
import multiprocessing.synchronize  # noqa: F401  imported later, which stalled the event loop ~0.3 s)
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Job:
    job: int
    scene_text: str
    scene_path: str | None
    out_dir: str  # the run folder; a resumed job names the folder of the run it continues
    iterations: int
    resume: bool


@dataclass(frozen=True)
class Check:
    """Whether a scene's task and optimizer exist: asked of the worker, since the task
    registry imports torch and the suite, which on a studio thread held the interpreter lock
    for up to a second at a time while the user pressed Optimize."""

    scene_text: str
    scene_path: str | None


@dataclass(frozen=True)
class Outcome:
    iterations: int  # reports delivered by this job
    cancelled: bool
    seconds: float
    iterations_done: int  # over the whole run, resumes included
    best_loss: float
    solved: bool


class OptimizationProcess:
    """The studio's side of one worker process: start jobs, stop them, poll their messages.

    Nothing here blocks the caller: the process is spawned and each job handed over on a
    launcher thread (spawning waits on the new interpreter's start, seconds on a busy machine).
    """

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._process = None
        self._jobs = self._messages = self._stop = None
        self._next_job = 0
        self._lock = threading.Lock()  # one launch at a time
        self._launcher: threading.Thread | None = None
        self._stop_requested = False
        self.running_job: int | None = None  # the job whose "done"/"failed" has not arrived yet
        self._checks_lock = threading.Lock()  # guards the queue's creation against check()
        self._early_checks: list[Check] = []  # asked before the process started
        self.checks_pending = 0  # availability checks not answered yet
        self._launch_error: str | None = None  # why the process could not start, until poll() reports it

    @property
    def running(self) -> bool:
        return self.running_job is not None

    @property
    def _launching(self) -> bool:
        return self._launcher is not None and self._launcher.is_alive()

    def start(self, scene_text: str, scene_path: Path | None, out_dir: Path, iterations: int, resume: bool) -> int:
        """Queue a job; returns its number (messages carry it)."""
        if self.running:
            raise RuntimeError("an optimization is already running; stop it first")
        self._next_job += 1
        self.running_job = self._next_job
        self._stop_requested = False
        job = Job(self._next_job, scene_text, str(scene_path) if scene_path else None, str(out_dir), iterations, resume)
        if self._launcher is not None:
            self._launcher.join()  # a prestart in flight: one process, one launch at a time
        self._launcher = threading.Thread(target=self._launch, args=(job,), name="deft-optimizer-launch", daemon=True)
        self._launcher.start()
        return job.job

    def check(self, scene_text: str, scene_path: Path | None) -> None:
        """Ask whether the scene's task and optimizer exist; answered by an "availability"
        message (in order with jobs; one asked before the process starts waits for it)."""
        request = Check(scene_text, str(scene_path) if scene_path else None)
        self.checks_pending += 1
        with self._checks_lock:
            if self._jobs is None:
                self._early_checks.append(request)
                return
            self._jobs.put(request)

    def prestart(self) -> None:
        """Start the worker process ahead of the first job: spawning still holds the studio's
        interpreter lock for a few hundred milliseconds, which is better spent while idle than
        when the user presses Optimize."""
        if self._launching or (self._process is not None and self._process.is_alive()):
            return
        self._launcher = threading.Thread(target=self._launch, args=(None,), name="deft-optimizer-launch", daemon=True)
        self._launcher.start()

    def _launch(self, job: Job | None) -> None:
        with self._lock:
            if self._process is None or not self._process.is_alive():
                try:
                    self._start_process()
                except Exception as exc:  # no process: poll() says why, once
                    with self._checks_lock:
                        self._jobs = self._messages = self._stop = None  # later checks wait for a start
                    self._launch_error = f"could not start the optimization process: {type(exc).__name__}: {exc}"
                    return
            if job is None:
                return
            self._stop.clear()
            if self._stop_requested:  # Stop pressed while the process was starting
                self._stop.set()
            self._jobs.put(job)

    def _start_process(self) -> None:
        ctx = self._context
        with self._checks_lock:
            self._jobs, self._messages, self._stop = ctx.Queue(), ctx.Queue(), ctx.Event()
            for request in self._early_checks:
                self._jobs.put(request)
            self._early_checks = []
        process = ctx.Process(target=serve, args=(self._jobs, self._messages, self._stop), name="deft-optimizer", daemon=True)
        process.start()
        self._process = process

    def stop(self) -> None:
        """Ask the running job to end after its current iteration."""
        self._stop_requested = True
        if self._stop is not None:
            self._stop.set()

    def poll(self, limit: int = 50) -> list[tuple]:
        """Messages that arrived (at most ``limit``, so one poll stays short). A process that
        could not start, or died while it owed answers, is one ``failed`` message (job 0 when no
        job was running); the jobs and checks after it start a new process."""
        if self._launching:
            return []
        if self._launch_error is not None:
            why, self._launch_error = self._launch_error, None
            return [self._lost(why)]
        out: list[tuple] = []
        if self._messages is None:
            return out
        while len(out) < limit:
            try:
                out.append(self._messages.get_nowait())
            except queue.Empty:
                break
        for message in out:
            if message[0] in ("done", "failed", "unavailable") and message[1] == self.running_job:
                self.running_job = None
            elif message[0] == "availability":
                self.checks_pending -= 1
        if not out and (self.running or self.checks_pending) and not self._process.is_alive():
            code = self._process.exitcode
            self._close_queues()
            self._process = None
            out.append(self._lost(f"the optimization process exited (code {code})"))
        return out

    def _lost(self, why: str) -> tuple:
        """The failure of the job (or checks) that a lost process owed."""
        job, self.running_job = self.running_job or 0, None
        self.checks_pending = 0
        return ("failed", job, why)

    def _close_queues(self) -> None:
        with self._checks_lock:
            for q in (self._jobs, self._messages):
                q.cancel_join_thread()  # unread messages must not hold the studio's exit
                q.close()
            self._jobs = self._messages = self._stop = None

    def shutdown(self, timeout: float = 3.0) -> None:
        """Stop the job and the process; a worker stuck inside an iteration is terminated."""
        self.stop()
        if self._launcher is not None:
            self._launcher.join()  # a launch in flight finishes, so its process is ended below
        if self._process is None:
            return
        if self._process.is_alive():
            self._jobs.put(None)
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout)
        self._close_queues()
        self._process = None
        self.running_job = None


def serve(jobs, messages, stop) -> None:
    """The worker's loop (runs in the spawned process): one job at a time until ``None``."""
    held = None  # the last OptimizationRun: Resume of the same folder continues it in memory
    while (job := _next_job(jobs)) is not None:
        if isinstance(job, Check):
            messages.put(("availability", 0, *_availability(job)))
            continue
        try:
            held = _run_job(job, held, messages, stop)
        except Exception as exc:  # reported to the user, never swallowed
            messages.put(("failed", job.job, f"{type(exc).__name__}: {exc}"))


def _next_job(jobs):
    """The next job, or None when the studio is gone: a studio that crashed never sends the
    final None, and the worker holds its own end of the queue, so it would wait forever."""
    studio = multiprocessing.parent_process()
    while True:
        try:
            return jobs.get(timeout=1.0)
        except queue.Empty:
            if studio is not None and not studio.is_alive():
                return None


def _availability(check: Check) -> tuple[str, str, str]:
    from app.scene.io import SceneError, scene_from_text
    from app.services.optimize_driver import why_not_optimizable

    try:
        scene = scene_from_text(check.scene_text, "studio document", check.scene_path)
    except SceneError as exc:
        return "", "", str(exc)
    kind, method = scene.task.kind, scene.task.optimizer.method
    try:
        return kind, method, why_not_optimizable(scene)
    except Exception as exc:  # a task module that fails to load: shown as the reason, the worker lives on
        return kind, method, f"{type(exc).__name__}: {exc}"


def _run_job(job: Job, held, messages, stop):
    from app.scene.io import SceneError, scene_from_text
    from app.services.optimize import OptimizationRun, RunFolderError
    from app.services.optimize_driver import optimizer_for
    from app.services.optimize_tasks import TaskSetupError, bind_scene_task
    from app.services.previews import motion_positions

    started = time.perf_counter()
    out_dir = Path(job.out_dir)
    if job.resume and held is not None and held.out_dir == out_dir:
        run = held
    else:
        try:
            scene = scene_from_text(job.scene_text, "studio document", job.scene_path)
            task = bind_scene_task(scene)
            if job.resume:
                run = OptimizationRun.resume(task, out_dir)
            else:
                run = OptimizationRun(task, out_dir, optimizer_for(scene.task.optimizer.method))
        except (SceneError, TaskSetupError, RunFolderError, ValueError, KeyError) as exc:
            messages.put(("unavailable", job.job, str(exc)))
            return held
    count = 0
    try:
        for report in run.reports(job.iterations):
            count += 1
            messages.put(("report", job.job, report.row(), motion_positions(run.task, report.params), time.time()))
            if stop.is_set():
                break
    finally:  # finished, stopped or failed: preview the best so far
        if run.curve:
            best = np.asarray(run.best_solution()["params"], dtype=float)
            messages.put(("preview", job.job, run.task.tool, float(run.task.parameterization.dt),
                          motion_positions(run.task, best)))
    best = float(run.best_loss)
    messages.put(("done", job.job, Outcome(count, stop.is_set(), time.perf_counter() - started,
                                           run.iterations_done, best, bool(run.curve) and run.solved)))
    return run
