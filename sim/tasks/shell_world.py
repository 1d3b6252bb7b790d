"""A shell world (sim.spec.WorldSpec) from a task context's plain scene data: cloth bodies
become shells, rigid shapes static colliders, the tool a parallel-jaw gripper.

This is the small subset of scene compilation the shell tasks need while the app's scene
compiler is not there; it maps fields one to one and invents nothing but the fingers'
contact parameters (FINGER_FRICTION, FINGER_STIFFNESS).
"""

from __future__ import annotations

import numpy as np

from sim.geometry import sheet, transform_points
from sim.spec import ColliderSpec, Settings, ShellMaterial, ShellSpec, ToolSpec, WorldSpec
from sim.tasks.registry import TaskContext

FINGER_FRICTION = 1.0
FINGER_STIFFNESS = 1e4  # N/m per vertex in contact
SHELL_FIELDS = ("density", "thickness", "youngs_modulus", "poisson_ratio", "bending_stiffness", "yield_angle", "damping", "friction", "contact_stiffness")


def _collider(body: dict) -> ColliderSpec:
    shape, mat, tf = body["shape"], body["material"], body["transform"]
    kind = shape["kind"]
    size = {
        "box": lambda: tuple(0.5 * s for s in shape["size"]),
        "sphere": lambda: (shape["radius"], 0.0, 0.0),
        "cylinder": lambda: (shape["radius"], 0.5 * shape.get("height", 0.0), 0.0),
        "capsule": lambda: (shape["radius"], 0.5 * shape.get("length", 0.0), 0.0),
    }.get(kind)
    if size is None:
        raise ValueError(f"body {body['name']!r}: a {kind!r} shape cannot be a shell task collider")
    return ColliderSpec(body["name"], kind, size(), tuple(tf["position"]), tuple(tf["rotation"]),
                        friction=mat.get("friction", 0.5), contact_stiffness=mat.get("contact_stiffness", 1e4))


def _shell(body: dict) -> ShellSpec:
    shape, mat, tf = body["shape"], body["material"], body["transform"]
    (w, l), (nx, ny) = shape["size"], shape["resolution"]
    verts, tris = sheet(nx, ny, w, l)
    verts = transform_points(verts, tf["position"], tf["rotation"])
    return ShellSpec(body["name"], verts, tris, ShellMaterial(**{k: mat[k] for k in SHELL_FIELDS}))


def shell_world_spec(ctx: TaskContext, finger_size: tuple[float, float, float]) -> WorldSpec:
    shells = tuple(_shell(b) for b in ctx.bodies if b["shape"]["kind"] == "cloth")
    if not shells:
        raise ValueError("a shell task needs at least one cloth body")
    colliders = [_collider(b) for b in ctx.bodies if b["shape"]["kind"] != "cloth"]
    half = tuple(0.5 * s for s in finger_size)
    fingers = (f"{ctx.tool}.left", f"{ctx.tool}.right")
    colliders += [ColliderSpec(f, "box", half, friction=FINGER_FRICTION, contact_stiffness=FINGER_STIFFNESS) for f in fingers]
    start = np.asarray(ctx.tool_start, dtype=np.float64)
    tool = ToolSpec(ctx.tool, "parallel_jaw", fingers, tuple(start[:3]), tuple(ctx.tool_rotation), float(start[3]), half)
    return WorldSpec(settings=Settings(dt=ctx.dt, steps=ctx.horizon), shells=shells, colliders=tuple(colliders), tools=(tool,))
