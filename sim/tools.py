"""Kinematic tools: from per-step actions to every collider's pose at every step.

Written once over the array namespace of the actions: torch tensors, so the gradient a
rollout returns for collider poses flows back to the actions (and from there to keyframes
or any other parameterization of the motion); or numpy arrays, so a forward world never
imports torch (about 1.5 s of a warm start). Only operations both spell alike are used.
A pose is 7 numbers: position (3) and quaternion w, x, y, z (4).
"""

from __future__ import annotations

import sys

import numpy as np

from sim.spec import WorldSpec


def _namespace(a):
    """numpy or torch, whichever ``a`` belongs to (torch is imported only if it already was)."""
    return np if isinstance(a, np.ndarray) else sys.modules["torch"]


def _norm(q):
    return ((q * q).sum(-1) ** 0.5)[..., None]


def _cross(xp, u, v):
    return xp.stack([u[..., 1] * v[..., 2] - u[..., 2] * v[..., 1], u[..., 2] * v[..., 0] - u[..., 0] * v[..., 2],
                     u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]], -1)


def quat_rotate(q, v):
    """Rotate v (..., 3) by the quaternion q (..., 4), normalised first."""
    xp = _namespace(q)
    q = q / _norm(q)
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * _cross(xp, u, v)
    return v + w * t + _cross(xp, u, t)


def quat_mul(a, b):
    aw, ax, ay, az = (a[..., k] for k in range(4))
    bw, bx, by, bz = (b[..., k] for k in range(4))
    return _namespace(a).stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def collider_poses(spec: WorldSpec, actions):
    """(steps + 1, colliders, 7) poses: row 0 is the initial pose, row k the pose after step k.

    ``actions`` is (steps, tools, 8), a numpy array or a torch tensor (the poses are of the
    same kind); a tool's initial pose comes from its spec."""
    xp = _namespace(actions)
    steps = spec.settings.steps
    if tuple(actions.shape) != (steps, len(spec.tools), 8):
        raise ValueError(f"actions must have shape {(steps, len(spec.tools), 8)}, got {tuple(actions.shape)}")
    dtype = actions.dtype
    index = {c.name: i for i, c in enumerate(spec.colliders)}
    static = xp.asarray(np.array([[*c.position, *c.rotation] for c in spec.colliders], np.float64).reshape(-1, 7),
                        dtype=dtype)
    columns = [xp.broadcast_to(static[i], (steps + 1, 7)) for i in range(len(spec.colliders))]
    for t, tool in enumerate(spec.tools):
        init = xp.asarray(np.asarray(tool.initial_action(), np.float64), dtype=dtype)[None]
        act = xp.concatenate([init, actions[:, t]], 0)  # (steps + 1, 8)
        pos, quat, opening = act[:, :3], act[:, 3:7], act[:, 7:8]
        for slot, name in enumerate(tool.colliders):
            local_pos = xp.broadcast_to(static[index[name], :3], tuple(pos.shape))
            local_rot = xp.broadcast_to(static[index[name], 3:], tuple(quat.shape))
            if tool.kind == "parallel_jaw":
                side = 1.0 if slot == 0 else -1.0
                along_x = xp.asarray(np.array([1.0, 0.0, 0.0]), dtype=dtype)
                local_pos = local_pos + along_x * side * (opening / 2 + tool.finger_half[0])
            columns[index[name]] = xp.concatenate([pos + quat_rotate(quat, local_pos),
                                                   quat_mul(quat / _norm(quat), local_rot)], -1)
    if not columns:
        return xp.zeros((steps + 1, 0, 7), dtype=dtype)
    return xp.stack(columns, 1)


def collider_poses_np(spec: WorldSpec, actions: np.ndarray) -> np.ndarray:
    return collider_poses(spec, np.asarray(actions, np.float64))


def action_gradient(spec: WorldSpec, actions: np.ndarray, pose_grads: np.ndarray) -> np.ndarray:
    """The gradient w.r.t. the actions (steps, tools, 8) of a loss whose gradient w.r.t. the
    collider poses is ``pose_grads``: (steps + 1, colliders, 7), or (..., 3) for positions only."""
    import torch

    acts = torch.tensor(np.asarray(actions, np.float64), requires_grad=True)
    g = torch.as_tensor(np.asarray(pose_grads, np.float64))
    with torch.enable_grad():  # autograd's backward runs with grad mode off
        poses = collider_poses(spec, acts)[..., : g.shape[-1]]
        # a scalar's backward: backward(grad) imports torch.fx's symbolic shapes and sympy (0.4 s)
        (poses * g).sum().backward()
    return acts.grad.numpy()
