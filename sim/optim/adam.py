"""Projected Adam (torch.optim.Adam) with gradient-norm clipping and warmup + cosine decay."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from sim.optim.problem import IterationReport, Problem


@dataclass(frozen=True)
class AdamSettings:
    lr: float = 0.05  # in units of the parameter range (upper - lower): scale-free across tasks
    betas: tuple[float, float] = (0.9, 0.999)
    clip_norm: float = 1.0  # on the gradient in range units
    warmup: int = 3
    horizon: int = 100  # iterations over which the rate decays
    final_lr_ratio: float = 0.1
    init_noise: float = 0.02  # seed-dependent start jitter (range units), so seeds differ

    def __post_init__(self) -> None:
        if not (self.lr > 0 and self.clip_norm > 0 and self.horizon >= 1 and self.warmup >= 0):
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
    rate suits metres, radians and gripper openings alike; x is projected after every step."""

    name = "adam"

    def __init__(self, problem: Problem, settings: AdamSettings | None = None, seed: int = 0, x0=None, iteration: int = 0):
        self.problem, self.settings, self.seed = problem, settings or AdamSettings(), seed
        self._scale = problem.upper - problem.lower
        start = problem.x0 if x0 is None else np.asarray(x0, dtype=np.float64)
        if self.settings.init_noise > 0:
            start = start + self.settings.init_noise * self._scale * np.random.default_rng(seed).standard_normal(start.shape)
        start = problem.feasible(start)
        self._z = torch.tensor((start - problem.lower) / self._scale, requires_grad=True)
        self._opt = torch.optim.Adam([self._z], lr=self.settings.lr, betas=self.settings.betas)
        self.iteration, self.local_iteration = iteration, 0
        self.elapsed, self.evaluations = 0.0, 0
        self.best_loss, self.best_params = math.inf, start

    def _x(self, z: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.problem.lower) + torch.as_tensor(self._scale) * z

    def step(self) -> IterationReport:
        t0 = time.perf_counter()
        self._opt.zero_grad()
        x_leaf = self._x(self._z.detach()).requires_grad_(True)
        loss, grad_x = self.problem.value_and_grad(x_leaf)
        grad = grad_x * torch.as_tensor(self._scale)
        grad_norm = float(grad.norm())
        self._z.grad = grad * min(1.0, self.settings.clip_norm / max(grad_norm, 1e-300))
        params = x_leaf.detach().numpy().copy()
        for group in self._opt.param_groups:
            group["lr"] = self.settings.rate(self.local_iteration)
        self._opt.step()
        with torch.no_grad():
            x = self.problem.feasible(self._x(self._z).numpy())
            self._z.copy_(torch.as_tensor((x - self.problem.lower) / self._scale))
        self.iteration += 1
        self.local_iteration += 1
        self.evaluations += 1
        if loss < self.best_loss:
            self.best_loss, self.best_params = loss, params
        self.elapsed += time.perf_counter() - t0
        return IterationReport(self.name, "adam", self.iteration, loss, self.best_loss, grad_norm, params, self.elapsed, self.evaluations)

    def state_dict(self) -> dict:
        return {
            "settings": asdict(self.settings),
            "z": self._z.detach().clone(),
            "adam": self._opt.state_dict(),
            "iteration": self.iteration,
            "local_iteration": self.local_iteration,
            "elapsed": self.elapsed,
            "evaluations": self.evaluations,
            "best_loss": self.best_loss,
            "best_params": torch.as_tensor(self.best_params),
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self._z.copy_(state["z"])
        self._opt.load_state_dict(state["adam"])
        self.iteration, self.local_iteration = state["iteration"], state["local_iteration"]
        self.elapsed, self.evaluations = state["elapsed"], state["evaluations"]
        self.best_loss, self.best_params = state["best_loss"], state["best_params"].numpy().copy()
