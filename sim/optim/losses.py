"""Differentiable loss terms (torch). Each returns a scalar tensor; inputs are SI quantities.

Tasks combine these with weights; every term has a float64 finite-difference test.
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def _smooth_norm(v: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """|v| with a finite gradient at 0 (sqrt(|v|^2 + eps^2) - eps)."""
    return torch.sqrt((v * v).sum(-1) + eps * eps) - eps


def _check_points(name: str, p: torch.Tensor) -> None:
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, dim) array of points, got shape {tuple(p.shape)}")


def chamfer(a: torch.Tensor, b: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Symmetric Chamfer distance: mean squared distance to the nearest point of the other
    set, both ways (m^2). Rows are processed in chunks so memory stays chunk * len(other)."""
    _check_points("a", a)
    _check_points("b", b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"point sets differ in dimension: {a.shape[1]} vs {b.shape[1]}")

    def one_way(p, q):
        mins = [torch.cdist(p[i : i + chunk], q).pow(2).min(dim=1).values for i in range(0, len(p), chunk)]
        return torch.cat(mins).mean()

    return one_way(a, b) + one_way(b, a)


def position_target(points: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Squared distance of the (weighted) centroid of points (a body or a region) to target."""
    _check_points("points", points)
    if weights is None:
        centroid = points.mean(0)
    else:
        centroid = (weights[:, None] * points).sum(0) / weights.sum()
    return ((centroid - target) ** 2).sum()


def pose_target(points: torch.Tensor, rest: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of points to their rest positions carried to the target pose:
    rest centred at its centroid, rotated by `rotation` (3x3), moved to `translation`.
    Zero exactly when the region sits rigidly at the target pose."""
    _check_points("points", points)
    if rest.shape != points.shape:
        raise ValueError(f"rest {tuple(rest.shape)} and points {tuple(points.shape)} must match")
    goal = (rest - rest.mean(0)) @ rotation.T + translation
    return ((points - goal) ** 2).sum(-1).mean()


def force_target(forces: torch.Tensor, target: float | torch.Tensor) -> torch.Tensor:
    """Mean squared deviation (N^2) of force magnitudes (a series of scalars or vectors) from target."""
    mag = forces.abs() if forces.ndim == 1 else _smooth_norm(forces)
    return ((mag - target) ** 2).mean()


def tactile_target(reading: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared difference of a tactile reading (marker displacements, depth or force
    image) from a target reading of the same shape, optionally over a mask."""
    if reading.shape != target.shape:
        raise ValueError(f"tactile reading {tuple(reading.shape)} and target {tuple(target.shape)} differ in shape")
    sq = (reading - target) ** 2
    if mask is None:
        return sq.mean()
    m = mask.to(sq.dtype).expand_as(sq)
    return (sq * m).sum() / m.sum().clamp_min(_EPS)


def slip(tangential: torch.Tensor, normal: torch.Tensor, friction: float | torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Mean squared excess of tangential force over the friction cone, mu * f_n * (1 - margin):
    zero while every contact sticks with the margin, growing as contacts head out of the cone."""
    if tangential.shape[:-1] != normal.shape:
        raise ValueError(f"tangential {tuple(tangential.shape)} needs one normal per row, got {tuple(normal.shape)}")
    excess = _smooth_norm(tangential) - friction * normal.clamp_min(0.0) * (1.0 - margin)
    return torch.relu(excess).pow(2).mean()


def smoothness(motion: torch.Tensor, dt: float) -> torch.Tensor:
    """Mean squared acceleration ((units/s^2)^2) of a (steps + 1, channels) motion."""
    if motion.shape[0] < 3:
        return motion.new_zeros(())
    acc = (motion[2:] - 2 * motion[1:-1] + motion[:-2]) / (dt * dt)
    return (acc**2).sum(-1).mean()


def effort(actions: torch.Tensor) -> torch.Tensor:
    """Mean squared action (velocity, torque or joint command) per step."""
    return (actions**2).sum(-1).mean() if actions.ndim > 1 else (actions**2).mean()
