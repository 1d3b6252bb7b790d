"""What every optimizer works on (a Problem) and what it yields (IterationReports)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from sim.errors import SimulationError


class OptimizationError(RuntimeError):
    """The run cannot go on (a malformed objective, or no parameters to fall back to)."""


class FailedEvaluation(OptimizationError):
    """The objective failed at these parameters (the simulator raised, or the loss or its
    gradient is not finite): optimizers record it as a failed step and back off."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# what a failed evaluation looks like from inside the objective
EVALUATION_FAILURES = (SimulationError, FailedEvaluation)


@dataclass
class Problem:
    """Minimise loss(x) over flat float64 vectors x kept inside a feasible set.

    loss maps a float64 tensor to a differentiable scalar tensor. project maps a vector onto
    the feasible set (default: clip to [lower, upper]); lower/upper must be finite, they
    also set the scale sampling optimizers explore. evaluate is an optional forward-only
    loss (a rollout without its tape) used by sampling optimizers.
    """

    loss: Callable[[torch.Tensor], torch.Tensor]
    x0: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    project: Callable[[np.ndarray], np.ndarray] | None = None
    evaluate: Callable[[np.ndarray], float] | None = None

    def __post_init__(self) -> None:
        self.x0 = np.asarray(self.x0, dtype=np.float64).reshape(-1)
        self.lower = np.broadcast_to(np.asarray(self.lower, dtype=np.float64), self.x0.shape).copy()
        self.upper = np.broadcast_to(np.asarray(self.upper, dtype=np.float64), self.x0.shape).copy()
        if not (np.all(np.isfinite(self.lower)) and np.all(np.isfinite(self.upper)) and np.all(self.lower < self.upper)):
            raise ValueError("problem bounds must be finite with lower < upper in every coordinate")

    @classmethod
    def from_parameterization(cls, param, loss: Callable[[torch.Tensor], torch.Tensor], x0=None, evaluate=None) -> "Problem":
        lower, upper = param.bounds()
        return cls(loss=loss, x0=param.hold() if x0 is None else x0, lower=lower, upper=upper, project=param.project, evaluate=evaluate)

    def feasible(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return self.project(x) if self.project else np.clip(x, self.lower, self.upper)

    def value(self, x: np.ndarray) -> float:
        """The loss without a tape; inf where the evaluation fails (see sample)."""
        return self.sample(x)[0]

    def sample(self, x: np.ndarray) -> tuple[float, str | None]:
        """(loss, None), or (inf, why) where the simulator rejects x or the loss is not
        finite: sampling optimizers rank such samples last."""
        try:
            if self.evaluate is not None:
                value = float(self.evaluate(x))
            else:
                with torch.no_grad():
                    value = float(self.loss(torch.as_tensor(x, dtype=torch.float64)))
        except SimulationError as exc:
            return math.inf, f"simulation failed: {exc}"
        if not math.isfinite(value):
            return math.inf, f"the loss is {value}"
        return value, None

    def value_and_grad(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Loss and gradient at the leaf tensor x (its .grad is overwritten). Raises
        FailedEvaluation where the simulator rejects x or the result is not finite."""
        x.grad = None
        try:
            out = self.loss(x)
            if out.ndim != 0:
                raise OptimizationError(f"the loss must be a scalar, got shape {tuple(out.shape)}")
            value = float(out.detach())
            if not math.isfinite(value):
                raise FailedEvaluation(f"the loss is {value} at these parameters")
            out.backward()
        except SimulationError as exc:
            raise FailedEvaluation(f"simulation failed: {exc}") from exc
        if x.grad is None:
            raise OptimizationError("the loss does not depend on the parameters (no gradient)")
        if not torch.all(torch.isfinite(x.grad)):
            raise FailedEvaluation("the loss gradient is not finite at these parameters")
        return value, x.grad


@dataclass(frozen=True)
class IterationReport:
    optimizer: str
    phase: str  # which stage produced it ("adam", "cmaes")
    iteration: int  # 1-based, counted over the whole run, resumes included
    loss: float  # loss of this iteration's evaluated parameters (best sample for CMA-ES)
    best_loss: float
    grad_norm: float | None  # before clipping; None where no gradient was taken
    params: np.ndarray  # the parameters whose loss is reported
    wall_time: float  # seconds spent optimizing so far, resumes included
    evaluations: int  # objective evaluations so far
    failure: str | None = None  # why this iteration was undone: its evaluation(s) failed (loss inf) or it climbed too far

    def row(self) -> dict:
        """The report without its parameters, for loss curves and progress displays."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "params"}


def settings_from(cls, values: dict | None):
    """Build a settings dataclass from a mapping, naming any unknown key."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} setting(s) {unknown}; known: {sorted(names)}")
    return cls(**values)
