"""Scene document (app.scene.model) -> sim.spec.WorldSpec.

Cloth bodies become shells, kinematic bodies with primitive shapes static colliders, the
trajectory's tool a kinematic tool driven by per-step actions interpolated from the
keyframes. What this simulator does not handle yet (URDF arms, triangle-mesh colliders,
FEM/MPM/dynamic rigid bodies of the volumetric systems) is listed in ``skipped`` with the
reason, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.compile.trajectory import interpolation_matrix, keyframe_values
from app.scene.model import Body, ClothShape, Gripper, KinematicRigid, Scene, ThinShell
from app.compile.volumetric import VOLUMETRIC_KINDS, mesh_loader as _mesh_loader, volumetric_bodies
from sim.geometry import sheet, transform_points
from sim.spec import ColliderSpec, Settings, ShellMaterial, ShellSpec, ToolSpec, WorldSpec

FINGER_FRICTION = 1.0  # the gripper model carries no material; rubber-like pads
FINGER_STIFFNESS = 1e4  # N/m per vertex in contact
_SHELL_FIELDS = ("density", "thickness", "youngs_modulus", "poisson_ratio", "bending_stiffness",
                 "yield_angle", "damping", "friction", "contact_stiffness")


@dataclass(frozen=True)
class CompiledScene:
    spec: WorldSpec
    keyframe_weights: np.ndarray | None  # (steps, keyframes): actions = W @ keyframe values
    keyframes: np.ndarray | None  # (keyframes, 8)
    skipped: tuple[str, ...] = field(default_factory=tuple)  # "entity: why" for each unsimulated entity


def _half_size(body: Body) -> tuple[float, float, float] | None:
    s = body.shape
    return {
        "box": lambda: tuple(0.5 * v for v in s.size),
        "sphere": lambda: (s.radius, 0.0, 0.0),
        "cylinder": lambda: (s.radius, 0.5 * s.height, 0.0),
        "capsule": lambda: (s.radius, 0.5 * s.length, 0.0),
    }.get(s.kind, lambda: None)()


def _shell(body: Body) -> ShellSpec:
    shape: ClothShape = body.shape
    (w, l), (nx, ny) = shape.size, shape.resolution
    verts, tris = sheet(nx, ny, w, l)
    verts = transform_points(verts, body.transform.position, body.transform.rotation)
    mat = ShellMaterial(**{k: getattr(body.material, k) for k in _SHELL_FIELDS})
    return ShellSpec(body.name, verts, tris, mat)


def compile_scene(scene: Scene, scene_path: str | Path | None = None, steps: int | None = None) -> CompiledScene:
    sim = scene.simulation
    steps = steps or sim.horizon
    settings = Settings(dt=sim.dt, steps=steps, gravity=tuple(sim.gravity), precision=sim.precision, backend=sim.backend)
    shells, colliders, tools, skipped = [], [], [], []
    tool_name = scene.trajectory.tool if scene.trajectory else None
    for e in scene.entities:
        if isinstance(e, Gripper):
            half = tuple(0.5 * v for v in e.finger_size)
            fingers = (f"{e.name}.left", f"{e.name}.right")
            colliders += [ColliderSpec(f, "box", half, friction=FINGER_FRICTION, contact_stiffness=FINGER_STIFFNESS)
                          for f in fingers]
            tools.append(ToolSpec(e.name, "parallel_jaw", fingers, e.transform.position, e.transform.rotation,
                                  e.opening, half))
        elif isinstance(e.material, ThinShell):
            shells.append(_shell(e))
        elif isinstance(e.material, KinematicRigid) and _half_size(e) is not None:
            col = ColliderSpec(e.name, e.shape.kind, _half_size(e), e.transform.position, e.transform.rotation,
                               friction=e.material.friction, contact_stiffness=e.material.contact_stiffness)
            if e.name == tool_name:  # a scripted body: the collider sits at the tool frame's origin
                colliders.append(ColliderSpec(col.name, col.shape, col.size, friction=col.friction,
                                              contact_stiffness=col.contact_stiffness))
                tools.append(ToolSpec(e.name, "rigid", (e.name,), e.transform.position, e.transform.rotation))
            else:
                colliders.append(col)
        elif e.material.kind in VOLUMETRIC_KINDS:
            continue  # volumetric hook: compiled below by app.compile.volumetric
        else:
            why = (f"{e.shape.kind} shapes are not colliders yet" if isinstance(e.material, KinematicRigid)
                   else f"{e.material.kind} bodies are not simulated yet")
            skipped.append(f"{e.name}: {why}")
    fem, mpm = volumetric_bodies(scene, sim.dt, _mesh_loader(scene_path))  # volumetric hook
    if not shells and not fem and not mpm:
        raise ValueError(f"scene {scene.name!r} has no cloth, FEM or MPM body to simulate")
    spec = WorldSpec(settings=settings, shells=tuple(shells), colliders=tuple(colliders), tools=tuple(tools),
                     fem_bodies=fem, mpm_bodies=mpm)
    weights = values = None
    if scene.trajectory is not None and scene.trajectory.keyframes:
        slot = [t.name for t in tools].index(tool_name) if tool_name in [t.name for t in tools] else None
        if slot is None:
            raise ValueError(f"trajectory.tool {tool_name!r} is not a gripper or kinematic primitive body")
        values = keyframe_values(scene.trajectory.keyframes)
        weights = interpolation_matrix([k.time for k in scene.trajectory.keyframes], sim.dt, steps,
                                       scene.trajectory.interpolation)
        actions = spec.default_actions()
        actions[:, slot] = weights @ values
        spec = WorldSpec(settings=settings, shells=spec.shells, colliders=spec.colliders, tools=spec.tools,
                         actions=actions, fem_bodies=fem, mpm_bodies=mpm)
    return CompiledScene(spec, weights, values, tuple(skipped))
