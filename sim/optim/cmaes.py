"""CMA-ES (the `cma` package) over normalised parameters, one generation per iteration.

Samples the simulator rejects rank last, the farthest from the mean the worst, so a
generation with failures draws the search in around the mean. The first generation also
evaluates the start itself (not told to the strategy), so the best found is never worse
than the start.

Resuming never unpickles anything: the strategy is rebuilt from its seed and the stored
fitness values of every past generation are told again (the samples are regenerated from the
same seeded stream), which reproduces its state exactly without re-running the objective.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from sim.optim.problem import IterationReport, Problem


@dataclass(frozen=True)
class CMAESSettings:
    sigma0: float = 0.2  # initial step size in units of the parameter range
    popsize: int | None = None  # None: cma's default 4 + 3 ln(n)
    infeasible_penalty: float = 1.0  # weight of the squared distance (range units) to the feasible set

    def __post_init__(self) -> None:
        if not self.sigma0 > 0 or (self.popsize is not None and self.popsize < 2):
            raise ValueError(f"invalid CMA-ES settings: {self}")


class CMAES:
    name = "cmaes"

    def __init__(self, problem: Problem, settings: CMAESSettings | None = None, seed: int = 0, x0=None, iteration: int = 0):
        self.problem, self.settings, self.seed = problem, settings or CMAESSettings(), seed
        self._scale = problem.upper - problem.lower
        self._start = problem.feasible(problem.x0 if x0 is None else x0)
        self._history: list[list[float]] = []
        self._es = self._fresh()
        self.iteration, self.first_iteration = iteration, iteration
        self.elapsed, self.evaluations = 0.0, 0
        self.best_loss, self.best_params = math.inf, self._start

    def _fresh(self):
        rng = np.random.default_rng(self.seed)
        opts = {
            "seed": self.seed + 1,  # cma seeds numpy's global stream with it; sampling uses rng
            "randn": lambda *shape: rng.standard_normal(shape),
            "verbose": -9,
            "tolfun": 0,
            "tolx": 0,
            "tolflatfitness": 10**9,
            "tolstagnation": 10**9,
        }
        if self.settings.popsize:
            opts["popsize"] = self.settings.popsize
        import cma  # here, not at the top: it loads scipy.stats, about 1.5 s of every command's start

        state = np.random.get_state()
        try:
            return cma.CMAEvolutionStrategy(np.zeros(len(self._start)), self.settings.sigma0, opts)
        finally:
            np.random.set_state(state)

    def _candidate(self, z: np.ndarray) -> tuple[np.ndarray, float]:
        raw = self._start + self._scale * np.asarray(z)
        x = self.problem.feasible(raw)
        return x, float(np.sum(((raw - x) / self._scale) ** 2))

    def step(self) -> IterationReport:
        t0 = time.perf_counter()
        first = not self._history
        zs = self._es.ask()
        losses, fitness, xs, failures = [], [], [], []
        for z in zs:
            x, off = self._candidate(z)
            loss, why = self.problem.sample(x)
            xs.append(x)
            losses.append(loss)
            fitness.append(loss + self.settings.infeasible_penalty * off)
            if why:
                failures.append(why)
        finite = [f for f in fitness if math.isfinite(f)]
        worst = max(finite) + abs(max(finite)) + 1.0 if finite else 0.0
        spread = [float(np.linalg.norm(np.asarray(z) - self._es.mean)) for z in zs]
        fitness = [f if math.isfinite(f) else worst + d for f, d in zip(fitness, spread)]
        self._es.tell(zs, fitness)
        self._history.append(fitness)
        self.evaluations += len(zs)
        if first:
            loss, why = self.problem.sample(self._start)
            self.evaluations += 1
            xs.append(self._start)
            losses.append(loss)
            if why:
                failures.append(f"at the start: {why}")
        k = int(np.argmin(losses))
        self.iteration += 1
        if losses[k] < self.best_loss:
            self.best_loss, self.best_params = losses[k], xs[k]
        self.elapsed += time.perf_counter() - t0
        failure = f"{len(failures)} of {len(losses)} evaluations failed, e.g. {failures[0]}" if failures else None
        return IterationReport(self.name, "cmaes", self.iteration, losses[k], self.best_loss, None, xs[k], self.elapsed, self.evaluations, failure)

    def state_dict(self) -> dict:
        return {
            "settings": asdict(self.settings),
            "start": torch.as_tensor(self._start),
            "history": torch.tensor(self._history, dtype=torch.float64),
            "first_iteration": self.first_iteration,
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "evaluations": self.evaluations,
            "best_loss": self.best_loss,
            "best_params": torch.as_tensor(self.best_params),
        }

    def load_state_dict(self, state: dict) -> None:
        self._start = state["start"].numpy().copy()
        self._es = self._fresh()
        self._history = state["history"].tolist()
        for fitness in self._history:
            self._es.tell(self._es.ask(), fitness)
        self.first_iteration, self.iteration = state["first_iteration"], state["iteration"]
        self.elapsed, self.evaluations = state["elapsed"], state["evaluations"]
        self.best_loss, self.best_params = state["best_loss"], state["best_params"].numpy().copy()
