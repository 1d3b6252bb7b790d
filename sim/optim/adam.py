"""Projected Adam with gradient-norm clipping and warmup + cosine decay.

The update is written out (Kingma & Ba's, with bias correction, as torch.optim.Adam computes
it) rather than taken from torch.optim: constructing any torch.optim optimizer imports
torch._dynamo, 1.4 s of every optimization's start on the 2-core machine."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from sim.optim.problem import FailedEvaluation, IterationReport, OptimizationError, Problem

EPS = 1e-8  # added to the second moment's root, torch.optim.Adam's default


@dataclass(frozen=True)
class AdamSettings:
    lr: float = 0.05  # in units of the parameter range (upper - lower): scale-free across tasks
    betas: tuple[float, float] = (0.9, 0.999)
    clip_norm: float = 1.0  # on the gradient in range units
    warmup: int = 3
    horizon: int = 100  # iterations over which the rate decays
    final_lr_ratio: float = 0.1
    init_noise: float = 0.02  # seed-dependent start jitter (range units), so seeds differ
    backtrack: float = 0.0  # undo a step whose loss exceeds this many times the best (0: never)

    def __post_init__(self) -> None:
        if not (self.lr > 0 and self.clip_norm > 0 and self.horizon >= 1 and self.warmup >= 0 and (self.backtrack == 0 or self.backtrack > 1)):
            raise ValueError(f"invalid Adam settings: {self}")

    def rate(self, iteration: int) -> float:
        """Learning rate of the 0-based iteration: linear warmup, then cosine to the floor."""
        if iteration < self.warmup:
            return self.lr * (iteration + 1) / (self.warmup + 1)
        frac = min(1.0, (iteration - self.warmup) / max(1, self.horizon - self.warmup))
        floor = self.lr * self.final_lr_ratio
        return floor + 0.5 * (self.lr - floor) * (1 + math.cos(math.pi * frac))


class Adam:
    """Adam runs in normalised coordinates z = (x - lower) / (upper - lower), so one learning
    rate suits metres, radians and gripper openings alike; x is projected after every step.

    A step whose evaluation fails (the simulator rejects the parameters) is reported as a
    failed iteration with an infinite loss; the next point is halfway back to the last one
    that evaluated, the moment estimates restart (their momentum carried the step there)
    and every later step is half as long. With ``backtrack`` set, a step that lands above
    backtrack x the best loss so far (over a cliff of a rough loss, into another basin) is
    undone the same way, back to the best point: its gradient, from the other basin, is
    not used."""

    name = "adam"

    def __init__(self, problem: Problem, settings: AdamSettings | None = None, seed: int = 0, x0=None, iteration: int = 0):
        self.problem, self.settings, self.seed = problem, settings or AdamSettings(), seed
        self._scale = problem.upper - problem.lower
        start = problem.x0 if x0 is None else np.asarray(x0, dtype=np.float64)
        if self.settings.init_noise > 0:
            start = start + self.settings.init_noise * self._scale * np.random.default_rng(seed).standard_normal(start.shape)
        start = problem.feasible(start)
        self._z = torch.tensor((start - problem.lower) / self._scale)
        self._moments: tuple[int, torch.Tensor, torch.Tensor] | None = None  # (steps, first, second) since a restart
        self.iteration, self.local_iteration = iteration, 0
        self.elapsed, self.evaluations = 0.0, 0
        self.best_loss, self.best_params = math.inf, start
        self._last_good: torch.Tensor | None = None  # z of the last evaluation that succeeded
        self.step_scale = 1.0  # halved by every failed evaluation

    def _x(self, z: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.problem.lower) + torch.as_tensor(self._scale) * z

    def step(self) -> IterationReport:
        t0 = time.perf_counter()
        x_leaf = self._x(self._z).requires_grad_(True)
        params = x_leaf.detach().numpy().copy()
        try:
            loss, grad_x = self.problem.value_and_grad(x_leaf)
        except FailedEvaluation as exc:
            return self._failed(t0, params, exc.message)
        if self.settings.backtrack and loss > self.settings.backtrack * self.best_loss:
            return self._back_to_best(t0, params, loss)
        self._last_good = self._z
        grad = grad_x * torch.as_tensor(self._scale)
        grad_norm = float(grad.norm())
        self._update(grad * min(1.0, self.settings.clip_norm / max(grad_norm, 1e-300)),
                     self.step_scale * self.settings.rate(self.local_iteration))
        x = self.problem.feasible(self._x(self._z).numpy())
        self._z = torch.as_tensor((x - self.problem.lower) / self._scale)
        self.iteration += 1
        self.local_iteration += 1
        self.evaluations += 1
        if loss < self.best_loss:
            self.best_loss, self.best_params = loss, params
        self.elapsed += time.perf_counter() - t0
        return IterationReport(self.name, "adam", self.iteration, loss, self.best_loss, grad_norm, params, self.elapsed, self.evaluations)

    def _update(self, g: torch.Tensor, lr: float) -> None:
        b1, b2 = self.settings.betas
        t, m, v = self._moments or (0, torch.zeros_like(g), torch.zeros_like(g))
        t, m, v = t + 1, b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        self._moments = (t, m, v)
        self._z = self._z - lr / (1 - b1**t) * m / ((v / (1 - b2**t)).sqrt() + EPS)

    def _failed(self, t0: float, params: np.ndarray, why: str) -> IterationReport:
        if self._last_good is None:
            raise OptimizationError(f"the objective fails at the starting parameters, so there is nothing to back off to: {why}")
        self._back_off(0.5 * (self._last_good + self._z))
        return self._undone(t0, params, math.inf, why)

    def _back_to_best(self, t0: float, params: np.ndarray, loss: float) -> IterationReport:
        self._back_off(torch.as_tensor((self.best_params - self.problem.lower) / self._scale))
        return self._undone(t0, params, loss, f"loss above {self.settings.backtrack:g} x the best: back to the best point")

    def _back_off(self, z: torch.Tensor) -> None:
        """Go to z with steps half as long and fresh moment estimates."""
        x = self.problem.feasible(self._x(z).numpy())
        self._z = torch.as_tensor((x - self.problem.lower) / self._scale)
        self.step_scale *= 0.5
        self._moments = None

    def _undone(self, t0: float, params: np.ndarray, loss: float, why: str) -> IterationReport:
        self.iteration += 1
        self.local_iteration += 1
        self.evaluations += 1
        self.elapsed += time.perf_counter() - t0
        return IterationReport(self.name, "adam", self.iteration, loss, self.best_loss, None, params, self.elapsed, self.evaluations, why)

    def state_dict(self) -> dict:
        return {
            "settings": asdict(self.settings),
            "z": self._z,
            "adam": self._moments,
            "iteration": self.iteration,
            "local_iteration": self.local_iteration,
            "elapsed": self.elapsed,
            "evaluations": self.evaluations,
            "best_loss": self.best_loss,
            "best_params": torch.as_tensor(self.best_params),
            "last_good": self._last_good,
            "step_scale": self.step_scale,
        }

    def load_state_dict(self, state: dict) -> None:
        self._z = state["z"].detach().clone()
        self._moments = _moments(state["adam"])
        self.iteration, self.local_iteration = state["iteration"], state["local_iteration"]
        self.elapsed, self.evaluations = state["elapsed"], state["evaluations"]
        self.best_loss, self.best_params = state["best_loss"], state["best_params"].numpy().copy()
        # runs saved before failed steps were kept had neither
        self._last_good, self.step_scale = state.get("last_good"), state.get("step_scale", 1.0)


def _moments(saved):
    """Adam's moments as saved: ours, or torch.optim.Adam's state dict (runs saved before
    the update was written out)."""
    if not isinstance(saved, dict):
        return saved
    st = saved["state"].get(0)
    return None if st is None else (int(st["step"]), st["exp_avg"].clone(), st["exp_avg_sq"].clone())
