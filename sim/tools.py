"""Kinematic tools: from per-step actions to every collider's pose at every step (torch).

Written in torch so the gradient a rollout returns for collider poses flows back to the
actions, and from there to keyframes or any other parameterization of the motion.
A pose is 7 numbers: position (3) and quaternion w, x, y, z (4).
"""

from __future__ import annotations

import numpy as np
import torch

from sim.spec import WorldSpec


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate v (..., 3) by the quaternion q (..., 4), normalised first."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v + w * t + torch.cross(u, t, dim=-1)


def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def collider_poses(spec: WorldSpec, actions: torch.Tensor) -> torch.Tensor:
    """(steps + 1, colliders, 7) poses: row 0 is the initial pose, row k the pose after step k.

    ``actions`` is (steps, tools, 8); a tool's initial pose comes from its spec."""
    steps = spec.settings.steps
    if tuple(actions.shape) != (steps, len(spec.tools), 8):
        raise ValueError(f"actions must have shape {(steps, len(spec.tools), 8)}, got {tuple(actions.shape)}")
    dtype = actions.dtype
    index = {c.name: i for i, c in enumerate(spec.colliders)}
    static = torch.tensor(
        np.array([[*c.position, *c.rotation] for c in spec.colliders], np.float64).reshape(-1, 7), dtype=dtype
    )
    columns = [static[i].expand(steps + 1, 7) for i in range(len(spec.colliders))]
    for t, tool in enumerate(spec.tools):
        init = torch.tensor(tool.initial_action(), dtype=dtype)[None]
        act = torch.cat([init, actions[:, t]], dim=0)  # (steps + 1, 8)
        pos, quat, opening = act[:, :3], act[:, 3:7], act[:, 7:8]
        for slot, name in enumerate(tool.colliders):
            local_pos = static[index[name], :3].expand_as(pos)
            local_rot = static[index[name], 3:].expand_as(quat)
            if tool.kind == "parallel_jaw":
                side = 1.0 if slot == 0 else -1.0
                offset = torch.zeros_like(pos)
                offset = offset + torch.tensor([1.0, 0.0, 0.0], dtype=dtype) * side * (opening / 2 + tool.finger_half[0])
                local_pos = local_pos + offset
            columns[index[name]] = torch.cat(
                [pos + quat_rotate(quat, local_pos), quat_mul(quat / quat.norm(dim=-1, keepdim=True), local_rot)], dim=-1
            )
    if not columns:
        return torch.zeros(steps + 1, 0, 7, dtype=dtype)
    return torch.stack(columns, dim=1)


def collider_poses_np(spec: WorldSpec, actions: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return collider_poses(spec, torch.as_tensor(np.asarray(actions, np.float64))).numpy()
