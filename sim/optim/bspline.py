"""Clamped uniform B-spline basis matrices.

A clamped (open-uniform) B-spline starts exactly at its first control point and ends at its
last. Its derivative is again a B-spline whose control points are scaled differences of
consecutive control points, so by the convex-hull property bounding those differences
bounds the speed everywhere on the curve, and boxing the control points boxes the curve.
"""

from __future__ import annotations

import numpy as np


def clamped_knots(n_ctrl: int, degree: int) -> np.ndarray:
    if n_ctrl < degree + 1:
        raise ValueError(f"a degree-{degree} B-spline needs at least {degree + 1} control points, got {n_ctrl}")
    inner = np.linspace(0.0, 1.0, n_ctrl - degree + 1)
    return np.concatenate([np.zeros(degree), inner, np.ones(degree)])


def basis_matrix(n_ctrl: int, degree: int, s: np.ndarray) -> np.ndarray:
    """B[i, j] = N_j(s_i): the curve at s is B @ control_points (s in [0, 1])."""
    knots = clamped_knots(n_ctrl, degree)
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    # Degree 0: the half-open span holding s; s == 1 belongs to the last non-empty span.
    n_spans = len(knots) - 1
    basis = np.zeros((len(s), n_spans))
    for j in range(n_spans):
        if knots[j] < knots[j + 1]:
            basis[:, j] = (s >= knots[j]) & (s < knots[j + 1])
    last = max(j for j in range(n_spans) if knots[j] < knots[j + 1])
    basis[s >= 1.0, last] = 1.0
    for p in range(1, degree + 1):  # Cox-de Boor recursion
        nxt = np.zeros((len(s), n_spans - p))
        for j in range(n_spans - p):
            left = knots[j + p] - knots[j]
            right = knots[j + p + 1] - knots[j + 1]
            if left > 0:
                nxt[:, j] += (s - knots[j]) / left * basis[:, j]
            if right > 0:
                nxt[:, j] += (knots[j + p + 1] - s) / right * basis[:, j + 1]
        basis = nxt
    return basis


def derivative_scales(n_ctrl: int, degree: int) -> np.ndarray:
    """c[j]: the derivative curve's j-th control point is c[j] * (P[j+1] - P[j]) (per unit s)."""
    knots = clamped_knots(n_ctrl, degree)
    return np.array([degree / (knots[j + degree + 1] - knots[j + 1]) for j in range(n_ctrl - 1)])
