"""Least-squares fitting of a few positive physical parameters with gradients, and their
uncertainty from the Gauss-Newton approximation of the Hessian.

Parameters are fitted as logarithms (they are positive and span decades: moduli, friction,
stiffness), with L-BFGS-B on the exact gradient of 1/2 |r|^2 (one backward pass each).
At the optimum the residual Jacobian comes from central differences (2 p forward runs,
cheap for the handful of parameters calibrated), giving cov(log theta) = s^2 (J^T J)^-1
with s^2 = |r|^2 / (m - p), and by the delta method std(theta) = theta * std(log theta).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import scipy.optimize
import torch


@dataclass(frozen=True)
class FitResult:
    names: tuple[str, ...]
    initial: np.ndarray
    values: np.ndarray
    std: np.ndarray  # one standard deviation, same units as values
    initial_rms: float  # root-mean-square residual before and after the fit
    rms: float
    iterations: int
    evaluations: int
    converged: bool
    message: str

    def table(self) -> list[dict]:
        return [
            {"name": n, "initial": float(i), "value": float(v), "std": float(s), "relative_std": float(s / abs(v)) if v else math.inf}
            for n, i, v, s in zip(self.names, self.initial, self.values, self.std)
        ]


def fit_parameters(
    residuals: Callable[[torch.Tensor], torch.Tensor],
    names: Sequence[str],
    initial: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    max_iter: int = 50,
    fd_step: float = 1e-4,
) -> FitResult:
    """Minimise 1/2 |residuals(theta)|^2 over lower <= theta <= upper (all > 0).

    `residuals` maps a float64 tensor of parameters to a 1-D tensor of weighted residuals
    (simulated minus recorded, divided by each channel's noise scale) and must be
    differentiable with respect to the parameters."""
    theta0 = np.asarray(initial, dtype=np.float64)
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    if not (len(names) == len(theta0) == len(lo) == len(hi)):
        raise ValueError("names, initial, lower and upper must have one entry per parameter")
    bad = [n for n, a, b, c in zip(names, lo, theta0, hi) if not (0 < a <= b <= c)]
    if bad:
        raise ValueError(f"parameters {bad}: need 0 < lower <= initial <= upper")
    evaluations = 0

    def value_and_grad(u: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal evaluations
        evaluations += 1
        log_theta = torch.tensor(u, requires_grad=True)
        r = residuals(torch.exp(log_theta))
        loss = 0.5 * (r * r).sum()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"residuals are not finite at {dict(zip(names, np.exp(u)))}")
        loss.backward()
        return float(loss.detach()), log_theta.grad.numpy().copy()

    def residual_np(u: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return residuals(torch.exp(torch.as_tensor(u))).numpy().copy()

    r0 = residual_np(np.log(theta0))
    result = scipy.optimize.minimize(
        value_and_grad, np.log(theta0), jac=True, method="L-BFGS-B",
        bounds=list(zip(np.log(lo), np.log(hi))), options={"maxiter": max_iter, "ftol": 1e-12, "gtol": 1e-8},
    )
    u = result.x
    r = residual_np(u)
    jac = np.stack([(residual_np(u + fd_step * e) - residual_np(u - fd_step * e)) / (2 * fd_step) for e in np.eye(len(u))], axis=1)
    dof = max(1, len(r) - len(u))
    s2 = float(r @ r) / dof
    cov_log = s2 * np.linalg.pinv(jac.T @ jac)
    theta = np.exp(u)
    return FitResult(
        names=tuple(names), initial=theta0, values=theta, std=theta * np.sqrt(np.clip(np.diag(cov_log), 0, None)),
        initial_rms=float(np.sqrt(np.mean(r0**2))), rms=float(np.sqrt(np.mean(r**2))),
        iterations=int(result.nit), evaluations=evaluations, converged=bool(result.success), message=str(result.message),
    )
