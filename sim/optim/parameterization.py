"""Trajectory parameterizations: flat float64 parameter vectors <-> a motion over the horizon.

A motion is a (steps + 1, channels) tensor of a controlled body's coordinates at every step
(for example x, y, z and gripper opening). Each parameterization decodes differentiably
(torch) and projects a parameter vector onto its feasible set (numpy), so every optimizer
can keep the workspace box, channel speed limits and gripper range as hard bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from sim.optim.bspline import basis_matrix, clamped_knots, derivative_scales


@dataclass(frozen=True)
class SpeedLimit:
    """The Euclidean norm of these channels' rates (units per second) stays <= max_speed."""

    channels: tuple[int, ...]
    max_speed: float

    def __post_init__(self) -> None:
        if not self.max_speed > 0:
            raise ValueError(f"max_speed must be positive, got {self.max_speed}")


@dataclass(frozen=True)
class Channels:
    """Named coordinates of the controlled body with their box bounds and speed limits."""

    names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    speed_limits: tuple[SpeedLimit, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.lower) != n or len(self.upper) != n:
            raise ValueError(f"{n} channels need {n} lower and upper bounds, got {len(self.lower)} and {len(self.upper)}")
        for name, lo, hi in zip(self.names, self.lower, self.upper):
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"channel {name!r}: bounds must be finite with lower < upper, got [{lo}, {hi}]")
        for limit in self.speed_limits:
            bad = [c for c in limit.channels if not 0 <= c < n]
            if bad:
                raise ValueError(f"speed limit names channels {bad} outside 0..{n - 1}")

    @property
    def size(self) -> int:
        return len(self.names)

    def clip(self, points: np.ndarray) -> np.ndarray:
        return np.clip(points, np.asarray(self.lower), np.asarray(self.upper))

    def limit_steps(self, deltas: np.ndarray, max_time: np.ndarray) -> np.ndarray:
        """Scale each row of deltas so that every speed group moves at most max_speed * max_time."""
        deltas = deltas.copy()
        for limit in self.speed_limits:
            idx = list(limit.channels)
            norm = np.linalg.norm(deltas[:, idx], axis=1)
            allowed = limit.max_speed * max_time
            scale = np.where(norm > allowed, allowed / np.maximum(norm, 1e-300), 1.0)
            deltas[:, idx] *= scale[:, None]
        return deltas


class Parameterization:
    """Base: size, decode (torch, differentiable), project (numpy), bounds and a start vector."""

    channels: Channels
    steps: int
    dt: float
    start: np.ndarray

    @property
    def size(self) -> int:
        raise NotImplementedError

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def project(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def hold(self) -> np.ndarray:
        """Parameters that keep the body still at its start."""
        raise NotImplementedError

    def motion(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.decode(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()

    def _check(self, x, n: int) -> None:
        if x.shape[-1] != n:
            raise ValueError(f"{type(self).__name__} takes {n} parameters, got {x.shape[-1]}")


def _check_common(channels: Channels, steps: int, dt: float, start) -> np.ndarray:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    start = np.asarray(start, dtype=np.float64)
    if start.shape != (channels.size,):
        raise ValueError(f"start needs {channels.size} coordinates ({', '.join(channels.names)}), got shape {start.shape}")
    outside = [n for n, v, lo, hi in zip(channels.names, start, channels.lower, channels.upper) if not lo <= v <= hi]
    if outside:
        raise ValueError(f"start lies outside the bounds of channels {outside}")
    return start


class PerStepActions(Parameterization):
    """One velocity per step and channel; the motion integrates them from the start."""

    def __init__(self, channels: Channels, steps: int, dt: float, start):
        self.channels, self.steps, self.dt = channels, steps, dt
        self.start = _check_common(channels, steps, dt, start)

    @property
    def size(self) -> int:
        return self.steps * self.channels.size

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, self.size)
        vel = x.reshape(self.steps, self.channels.size)
        start = torch.as_tensor(self.start, dtype=x.dtype)
        return torch.cat([start[None], start + torch.cumsum(vel * self.dt, dim=0)])

    def project(self, x: np.ndarray) -> np.ndarray:
        """Walk the steps: limit each step's speed, then keep the position inside the box."""
        self._check(x, self.size)
        vel = np.asarray(x, dtype=np.float64).reshape(self.steps, self.channels.size)
        steps = self.channels.limit_steps(vel * self.dt, np.full(self.steps, self.dt))
        pos = self.start.copy()
        out = np.empty_like(vel)
        for t in range(self.steps):
            nxt = self.channels.clip(pos + steps[t])  # shrinks every component: speeds still hold
            out[t] = (nxt - pos) / self.dt
            pos = nxt
        return out.reshape(-1)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        vmax = np.asarray(self.channels.upper) - np.asarray(self.channels.lower)
        vmax = vmax / self.dt
        for limit in self.channels.speed_limits:
            vmax[list(limit.channels)] = np.minimum(vmax[list(limit.channels)], limit.max_speed)
        return np.tile(-vmax, self.steps), np.tile(vmax, self.steps)

    def hold(self) -> np.ndarray:
        return np.zeros(self.size)


class SplineKeyframes(Parameterization):
    """Keyframes as control points of a clamped cubic B-spline sampled at every step.

    The first keyframe is the fixed start; the others are the parameters. Boxing the
    keyframes boxes the whole curve, and limiting consecutive keyframe differences limits
    the speed everywhere (convex-hull property), so the bounds are exact, not penalties.
    """

    def __init__(self, channels: Channels, steps: int, dt: float, start, keyframes: int, degree: int = 3):
        self.channels, self.steps, self.dt = channels, steps, dt
        self.start = _check_common(channels, steps, dt, start)
        if keyframes < 2:
            raise ValueError(f"keyframes must be >= 2 (start included), got {keyframes}")
        self.keyframes = keyframes
        self.degree = min(degree, keyframes - 1)
        s = np.linspace(0.0, 1.0, steps + 1)
        self._basis = torch.as_tensor(basis_matrix(keyframes, self.degree, s))
        # Longest time each keyframe difference may take at max speed: duration / scale.
        self._step_time = steps * dt / derivative_scales(keyframes, self.degree)

    @property
    def size(self) -> int:
        return (self.keyframes - 1) * self.channels.size

    def control_points(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, self.size)
        rest = x.reshape(self.keyframes - 1, self.channels.size)
        return torch.cat([torch.as_tensor(self.start, dtype=x.dtype)[None], rest])

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return self._basis.to(x.dtype) @ self.control_points(x)

    def project(self, x: np.ndarray) -> np.ndarray:
        self._check(x, self.size)
        pts = self.channels.clip(np.asarray(x, dtype=np.float64).reshape(self.keyframes - 1, -1))
        out = np.empty_like(pts)
        prev = self.start
        for j in range(len(pts)):
            # The limited point lies between two points of the box, so it stays inside.
            prev = prev + self.channels.limit_steps((pts[j] - prev)[None], self._step_time[j : j + 1])[0]
            out[j] = prev
        return out.reshape(-1)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.keyframes - 1
        return np.tile(self.channels.lower, n), np.tile(self.channels.upper, n)

    def hold(self) -> np.ndarray:
        return np.tile(self.start, self.keyframes - 1)

    def keyframe_times(self) -> np.ndarray:
        """Greville abscissae: the time each keyframe (control point) mostly influences."""
        knots = clamped_knots(self.keyframes, self.degree)
        g = np.array([knots[j + 1 : j + self.degree + 1].mean() for j in range(self.keyframes)])
        return g * self.steps * self.dt


class ThroughKinematics(Parameterization):
    """A joint-space parameterization whose motion is mapped through differentiable forward
    kinematics (a torch callable (steps + 1, joints) -> (steps + 1, outputs)); the app passes
    the robot's FK here, since sim must not import robot."""

    def __init__(self, joints: Parameterization, fk: Callable[[torch.Tensor], torch.Tensor]):
        self.joints, self.fk = joints, fk
        self.channels, self.steps, self.dt = joints.channels, joints.steps, joints.dt
        self.start = joints.start

    @property
    def size(self) -> int:
        return self.joints.size

    def joint_motion(self, x: torch.Tensor) -> torch.Tensor:
        return self.joints.decode(x)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return self.fk(self.joints.decode(x))

    def project(self, x: np.ndarray) -> np.ndarray:
        return self.joints.project(x)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.joints.bounds()

    def hold(self) -> np.ndarray:
        return self.joints.hold()
