"""Scene document (app.scene.model) -> sim.spec.WorldSpec.

Cloth bodies become shells, kinematic bodies with primitive shapes static colliders, the
trajectory's tool a kinematic tool driven by per-step actions interpolated from the
keyframes; kinematic mesh bodies become mesh colliders through a signed distance grid baked
from the mesh; dynamic rigid bodies with primitive shapes become sim.rigid bodies. What this
simulator does not handle yet (URDF arms, mesh-shaped dynamic rigid bodies, restitution) is
listed in ``skipped`` with the reason, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.compile.trajectory import interpolation_matrix, keyframe_values
from app.scene.model import Body, ClothShape, DynamicRigid, Gripper, KinematicRigid, Scene, ThinShell
from app.compile.volumetric import VOLUMETRIC_KINDS, mesh_loader as _mesh_loader, volumetric_bodies
from sim.geometry import sheet, transform_points
from sim.rigid.spec import RIGID_SHAPES, RigidBodySpec
from sim.spec import ColliderSpec, Settings, ShellMaterial, ShellSpec, ToolSpec, WorldSpec

SDF_CELLS = 48  # a mesh collider's signed distance grid: cells along the mesh's longest side
FINGER_FRICTION = 1.0  # the gripper model carries no material; rubber-like pads
FINGER_STIFFNESS = 1e4  # N/m per vertex in contact
_SHELL_FIELDS = ("density", "thickness", "youngs_modulus", "poisson_ratio", "bending_stiffness",
                 "yield_angle", "damping", "friction", "contact_stiffness")


@dataclass(frozen=True)
class CompiledScene:
    spec: WorldSpec
    keyframe_weights: np.ndarray | None  # (steps, keyframes): actions = W @ keyframe values
    keyframes: np.ndarray | None  # (keyframes, 8)
    skipped: tuple[str, ...] = field(default_factory=tuple)  # "entity: why" for each unsimulated entity or setting


def _half_size(body: Body) -> tuple[float, float, float] | None:
    s = body.shape
    return {
        "box": lambda: tuple(0.5 * v for v in s.size),
        "sphere": lambda: (s.radius, 0.0, 0.0),
        "cylinder": lambda: (s.radius, 0.5 * s.height, 0.0),
        "capsule": lambda: (s.radius, 0.5 * s.length, 0.0),
    }.get(s.kind, lambda: None)()


def mesh_collider_sdf(body: Body, load_mesh):
    """The signed distance grid of a kinematic mesh body (scaled, in its own frame), baked
    once per mesh file, scale and cell in a process (sim.mesh_sdf)."""
    mesh = load_mesh(body.shape)
    cell = float(np.ptp(mesh.vertices, axis=0).max()) / SDF_CELLS
    return _baked(np.asarray(mesh.vertices, np.float64).tobytes(), np.asarray(mesh.faces, np.int64).tobytes(), cell,
                  f"entity {body.name!r} ({body.shape.path})")


@functools.lru_cache(maxsize=16)
def _baked(vertices: bytes, faces: bytes, cell: float, name: str):
    from sim.mesh_sdf import bake

    return bake(np.frombuffer(vertices).reshape(-1, 3), np.frombuffer(faces, np.int64).reshape(-1, 3), cell, name=name)


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
    shells, colliders, tools, rigid, skipped = [], [], [], [], []
    load_mesh = _mesh_loader(scene_path)
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
        elif isinstance(e.material, KinematicRigid) and (_half_size(e) is not None or e.shape.kind == "mesh"):
            sdf = mesh_collider_sdf(e, load_mesh) if e.shape.kind == "mesh" else None
            col = ColliderSpec(e.name, e.shape.kind, _half_size(e) or (0.0, 0.0, 0.0), e.transform.position,
                               e.transform.rotation, friction=e.material.friction,
                               contact_stiffness=e.material.contact_stiffness, sdf=sdf)
            if e.name == tool_name:  # a scripted body: the collider sits at the tool frame's origin
                colliders.append(dataclasses.replace(col, position=(0.0, 0.0, 0.0), rotation=(1.0, 0.0, 0.0, 0.0)))
                tools.append(ToolSpec(e.name, "rigid", (e.name,), e.transform.position, e.transform.rotation))
            else:
                colliders.append(col)
        elif isinstance(e.material, DynamicRigid) and e.shape.kind in RIGID_SHAPES:
            rigid.append(RigidBodySpec.from_scene(e.model_dump(mode="json")))
            if e.material.restitution > 0:  # sim.rigid's contacts are damped penalty springs: no bounce law
                skipped.append(f"{e.name}: restitution {e.material.restitution:g} is not simulated "
                               "(contacts are damped penalty springs)")
        elif e.material.kind in VOLUMETRIC_KINDS:
            continue  # volumetric hook: compiled below by app.compile.volumetric
        elif isinstance(e.material, DynamicRigid):
            skipped.append(f"{e.name}: a {e.shape.kind} shape cannot be a dynamic rigid body (only {', '.join(RIGID_SHAPES)})")
        else:
            why = (f"{e.shape.kind} shapes are not colliders yet" if isinstance(e.material, KinematicRigid)
                   else f"{e.material.kind} bodies are not simulated yet")
            skipped.append(f"{e.name}: {why}")
    fem, mpm = volumetric_bodies(scene, sim.dt, load_mesh)  # volumetric hook
    if not shells and not fem and not mpm and not rigid:
        raise ValueError(f"scene {scene.name!r} has no cloth, FEM, MPM or dynamic rigid body to simulate")
    spec = WorldSpec(settings=settings, shells=tuple(shells), colliders=tuple(colliders), tools=tuple(tools),
                     fem_bodies=fem, mpm_bodies=mpm, rigid_bodies=tuple(rigid))
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
        spec = dataclasses.replace(spec, actions=actions)
    return CompiledScene(spec, weights, values, tuple(skipped))
