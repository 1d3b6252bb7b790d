"""Keyframes -> per-step tool actions, as a fixed linear map (so keyframe gradients are exact).

Every interpolation is linear in the keyframe values: actions = W @ values, with W a
(steps, keyframes) matrix that depends only on the times. Positions and openings use W
directly; quaternions are interpolated the same way and normalised by the simulator.
Before the first keyframe and after the last the tool holds still.
"""

from __future__ import annotations

import numpy as np

from sim.optim.bspline import basis_matrix


def interpolation_matrix(times: np.ndarray, dt: float, steps: int, kind: str) -> np.ndarray:
    """W[k, j]: weight of keyframe j in the pose reached at the end of step k (t = (k + 1) dt)."""
    times = np.asarray(times, np.float64)
    if len(times) == 0:
        raise ValueError("a trajectory needs at least one keyframe")
    t = np.clip((np.arange(steps) + 1) * dt, times[0], times[-1])
    n = len(times)
    if n == 1:
        return np.ones((steps, 1))
    if kind == "linear":
        eye = np.eye(n)
        return np.stack([np.interp(t, times, eye[j]) for j in range(n)], axis=1)
    if kind == "cubic":  # C2 spline through the keyframes, at rest at both ends
        from scipy.interpolate import CubicSpline  # here: scipy.interpolate takes 0.4 s to import

        return CubicSpline(times, np.eye(n), bc_type="clamped")(t)
    if kind == "bspline":  # keyframes are control points of a clamped B-spline over the span
        return basis_matrix(n, min(3, n - 1), (t - times[0]) / (times[-1] - times[0]))
    raise ValueError(f"interpolation must be linear, cubic or bspline, got {kind!r}")


def keyframe_values(keyframes) -> np.ndarray:
    """(keyframes, 8): position, quaternion w x y z, opening of each keyframe."""
    return np.array([[*k.position, *k.rotation, k.opening] for k in keyframes], np.float64)
