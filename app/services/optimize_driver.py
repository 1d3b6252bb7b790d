"""Drives an optimization on the simulation thread, one iteration at a time (no Qt).

The optimization itself is a generator of iteration reports (``app.services.optimize``);
this driver pulls it on the simulation thread, hands every report to a callback, and checks
a cancel token between iterations, so Stop takes effect within one iteration and Resume
continues the same generator's run object where it stopped.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from app.services.sim_thread import CancelToken, SimulationThread


@dataclass(frozen=True)
class Outcome:
    iterations: int  # reports delivered by this start
    cancelled: bool
    seconds: float


class OptimizeDriver:
    def __init__(self, sim_thread: SimulationThread) -> None:
        self._thread = sim_thread
        self._token: CancelToken | None = None
        self._future: Future | None = None
        self.delivered = 0  # reports pulled by the current start, counted on the simulation thread

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    def start(
        self,
        reports: Callable[[], Iterator[Any]],
        on_report: Callable[[Any], None],
        on_done: Callable[[Outcome], None],
        on_error: Callable[[BaseException], None],
    ) -> Future:
        """Run ``reports()`` on the simulation thread; callbacks run there too."""
        if self.running:
            raise RuntimeError("an optimization is already running; stop it first")
        token = CancelToken()
        self._token = token
        self.delivered = 0

        def job() -> None:
            started, count = time.perf_counter(), 0
            try:
                generator = reports()
                for report in generator:
                    count += 1
                    self.delivered = count
                    on_report(report)
                    if token.cancelled:
                        generator.close()
                        break
            except Exception as exc:  # reported to the user, never swallowed
                on_error(exc)
                return
            on_done(Outcome(iterations=count, cancelled=token.cancelled, seconds=time.perf_counter() - started))

        self._future = self._thread.submit(job)
        return self._future

    def stop(self) -> None:
        """Ask the running optimization to stop after its current iteration."""
        if self._token is not None:
            self._token.cancel()


def optimizer_for(method: str) -> str:
    """The sim.optim optimizer behind a scene's ``task.optimizer.method`` (the scene model
    validates the same names); ValueError if none."""
    from sim.optim.optimizers import OPTIMIZERS

    if method not in OPTIMIZERS:
        raise ValueError(f"optimizer {method!r} is not implemented; pick one of {sorted(OPTIMIZERS)}")
    return method


def why_not_optimizable(scene) -> str:
    """'' when the scene's task and optimizer exist, else what is missing (cheap: no world built)."""
    from sim.tasks.registry import task_definition

    try:
        task_definition(scene.task.kind)
        optimizer_for(scene.task.optimizer.method)
    except (KeyError, ValueError) as exc:
        return str(exc.args[0]) if exc.args else str(exc)
    return ""
