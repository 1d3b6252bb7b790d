"""Forward and inverse kinematics of a ``RobotModel``.

One forward-kinematics routine serves numpy (float64, for IK and the safety gate) and
torch (differentiable, so simulator gradients can reach joint trajectories): each joint's
motion is ``I + sin(q) K + (1 - cos(q)) K^2`` (Rodrigues, with K the 4x4 cross-product
matrix of its axis) or ``I + q A`` for a prismatic axis, so only broadcasting and matmul
are used and any leading batch shape works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot.urdf import RobotModel


def _joint_generators(model: RobotModel) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Per chain joint: kind, origin, K (or A for prismatic) and K^2 as 4x4 matrices."""
    cached = model.__dict__.get("_generators")
    if cached is not None:
        return cached
    out = []
    for j in model.chain:
        x, y, z = j.axis
        k = np.zeros((4, 4))
        if j.kind == "prismatic":
            k[:3, 3] = j.axis
        else:
            k[:3, :3] = [[0, -z, y], [z, 0, -x], [-y, x, 0]]
        out.append((j.kind, j.origin, k, k @ k))
    object.__setattr__(model, "_generators", out)
    return out


def link_frames(model: RobotModel, q: Any) -> list[Any]:
    """World-from-frame transforms (..., 4, 4) after every chain joint, for joint
    positions ``q`` (..., dof) given as a numpy array or a torch tensor."""
    is_torch = type(q).__module__.startswith("torch")
    if is_torch:
        import torch

        def const(a: np.ndarray) -> Any:
            return torch.as_tensor(a, dtype=q.dtype, device=q.device)

        xp = torch
    else:
        q = np.asarray(q, dtype=float)
        const, xp = np.asarray, np
    if q.shape[-1] != model.dof:
        raise ValueError(f"expected {model.dof} joint positions {model.joint_names}, got shape {tuple(q.shape)}")
    eye = const(np.eye(4))
    t = eye.expand(*q.shape[:-1], 4, 4) if is_torch else np.broadcast_to(eye, q.shape[:-1] + (4, 4))
    frames = []
    i = 0
    for kind, origin, k, k2 in _joint_generators(model):
        t = t @ const(origin)
        if kind != "fixed":
            qi = q[..., i, None, None]
            i += 1
            if kind == "prismatic":
                t = t @ (eye + qi * const(k))
            else:
                t = t @ (eye + xp.sin(qi) * const(k) + (1 - xp.cos(qi)) * const(k2))
        frames.append(t)
    return frames


def forward(model: RobotModel, q: Any) -> Any:
    """Tool pose (..., 4, 4) in the base frame."""
    return link_frames(model, q)[-1]


def jacobian(model: RobotModel, q: np.ndarray) -> np.ndarray:
    """Geometric Jacobian (6, dof) of the tool: rows vx, vy, vz, wx, wy, wz in the base frame."""
    frames = link_frames(model, q)
    p_tool = frames[-1][:3, 3]
    cols = []
    for j, t in zip(model.chain, frames):
        if j.kind == "fixed":
            continue
        axis = t[:3, :3] @ j.axis
        if j.kind == "prismatic":
            cols.append(np.concatenate([axis, np.zeros(3)]))
        else:
            cols.append(np.concatenate([np.cross(axis, p_tool - t[:3, 3]), axis]))
    return np.stack(cols, axis=1)


# ---------------------------------------------------------------- rotations


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """3x3 rotation of a quaternion (w, x, y, z), normalised first."""
    w, x, y, z = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """Quaternion (w, x, y, z), w >= 0, of a 3x3 rotation."""
    m = np.asarray(r, dtype=float)
    tr = np.trace(m)
    if tr > 0:
        s = 2 * math.sqrt(tr + 1)
        q = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2 * math.sqrt(1 + m[i, i] - m[j, j] - m[k, k])
        v = np.zeros(3)
        v[i] = s / 4
        v[j] = (m[j, i] + m[i, j]) / s
        v[k] = (m[k, i] + m[i, k]) / s
        q = [(m[k, j] - m[j, k]) / s, *v]
    q = np.array(q)
    return q if q[0] >= 0 else -q


def pose_matrix(position: np.ndarray, quat_wxyz: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(quat_wxyz)
    m[:3, 3] = position
    return m


def rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Axis-angle vector (3,) rotating ``current`` onto ``target`` (both 3x3), in the base frame."""
    r = target @ current.T
    angle = math.acos(max(-1.0, min(1.0, (np.trace(r) - 1) / 2)))
    v = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    s = np.linalg.norm(v)
    if angle < 1e-9:
        return 0.5 * v
    if s < 1e-9:  # angle near pi: axis from the symmetric part
        axis = np.sqrt(np.maximum(np.diag(r) + 1, 0) / 2)
        i = int(np.argmax(axis))
        axis = (r[:, i] + np.eye(3)[i]) / math.sqrt(2 * (r[i, i] + 1))
        return angle * axis
    return angle * v / s


# ---------------------------------------------------------------- inverse kinematics


@dataclass(frozen=True)
class IkResult:
    q: np.ndarray
    position_error: float  # [m] distance from the target position
    rotation_error: float  # [rad] angle to the target orientation
    converged: bool


def inverse(
    model: RobotModel,
    target: np.ndarray,
    seed: np.ndarray | None = None,
    *,
    position_tolerance: float = 1e-4,
    rotation_tolerance: float = 1e-3,
    iterations: int = 200,
    restarts: int = 8,
    rng: np.random.Generator | None = None,
) -> IkResult:
    """Joint positions within the URDF limits that put the tool at ``target`` (4x4, base frame).

    Damped least squares from ``seed`` (default: mid-range), each step clamped into the
    joint limits; when it stalls, random restarts within the limits. The best attempt is
    returned with its errors, so callers can report an unreachable pose by how far it is.
    """
    lo, hi = model.limit_array("lower"), model.limit_array("upper")
    lo_f, hi_f = np.where(np.isfinite(lo), lo, -math.pi), np.where(np.isfinite(hi), hi, math.pi)
    rng = rng or np.random.default_rng(0)
    start = np.clip(model.mid_configuration() if seed is None else np.asarray(seed, float), lo_f, hi_f)
    best: IkResult | None = None
    for attempt in range(restarts + 1):
        q = start if attempt == 0 else rng.uniform(lo_f, hi_f)
        result = _dls(model, target, q, lo, hi, position_tolerance, rotation_tolerance, iterations)
        if best is None or _score(result) < _score(best):
            best = result
        if result.converged:
            break
    assert best is not None
    return best


def _score(r: IkResult) -> float:
    return r.position_error + 0.1 * r.rotation_error


def _dls(model, target, q, lo, hi, pos_tol, rot_tol, iterations) -> IkResult:
    damping = 1e-2
    history: list[float] = []
    for _ in range(iterations):
        t = forward(model, q)
        err = np.concatenate([target[:3, 3] - t[:3, 3], rotation_error(t[:3, :3], target[:3, :3])])
        pe, re = float(np.linalg.norm(err[:3])), float(np.linalg.norm(err[3:]))
        if pe <= pos_tol and re <= rot_tol:
            return IkResult(q, pe, re, True)
        history.append(pe + 0.1 * re)
        if len(history) > 20 and history[-21] - history[-1] < 1e-6 * (1 + history[-1]):
            break  # stalled: out of reach, or stuck against a joint limit
        j = jacobian(model, q)
        dq = j.T @ np.linalg.solve(j @ j.T + damping**2 * np.eye(6), err)
        step = float(np.max(np.abs(dq)))
        if step > 0.5:
            dq *= 0.5 / step
        q = np.clip(q + dq, lo, hi)
    t = forward(model, q)
    pe = float(np.linalg.norm(target[:3, 3] - t[:3, 3]))
    re = float(np.linalg.norm(rotation_error(t[:3, :3], target[:3, :3])))
    return IkResult(q, pe, re, pe <= pos_tol and re <= rot_tol)
