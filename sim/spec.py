"""The immutable world spec the simulator builds from (compiled from the scene document).

Everything is SI (m, s, kg, Pa, N). A spec is a tree of frozen dataclasses holding numpy
arrays; nothing here touches Taichi, so specs are cheap to build, compare and send between
threads. The volumetric systems (FEM pads, MPM bodies, rigid bodies) add their own spec
dataclasses in their own modules and are listed in ``WorldSpec.fem_bodies``,
``mpm_bodies`` and ``rigid_bodies``; the world builds one system per non-empty list.

Kinematic tools move only as scripted. Each tool owns one or more colliders (a parallel-jaw
gripper owns two finger boxes); colliders not owned by a tool are static (a table). The
trajectory is per-step actions: for every step and every tool, the pose the tool reaches at
the end of the step, as 8 numbers ``(px, py, pz, qw, qx, qy, qz, opening)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.checkpoints import BUDGET_MB, TAPE_BUDGET_MB

ACTION_SIZE = 8  # position (3), quaternion w, x, y, z (4), gripper opening (1)
COLLIDER_SHAPES = ("box", "sphere", "capsule", "cylinder", "plane", "mesh")
TOOL_KINDS = ("rigid", "parallel_jaw")


def _frozen_array(a, dtype, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.array(a, dtype=dtype)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        raise ValueError(f"{what} must have shape (N, {', '.join(map(str, shape_tail))}), got {arr.shape}")
    if dtype is np.float64 and not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or inf")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Settings:
    dt: float = 1e-3
    steps: int = 100
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)
    precision: str = "f64"
    backend: str = "cpu"
    newton_tol: float = 1e-7  # m: largest error of a step's positions (1/1000 of paper's thickness)
    newton_rtol: float = 1e-6  # ... or this fraction of the step's largest displacement, if larger
    newton_ftol: float = 1e-4  # ... or every force residual below this fraction of the vertex's weight + contact forces
    newton_max_iter: int = 50
    newton_accept: float = 5e-2  # at the cap, keep a step whose last update is below this fraction of the thickness
    cg_tol: float = 1e-4  # relative residual of each Newton linear solve
    adjoint_tol: float = 1e-10  # relative residual of the adjoint solve of a step
    cg_max_iter: int = 2000
    checkpoint_budget_mb: float = BUDGET_MB  # rollouts keep every step's state for the backward pass while they fit
    tape_budget_mb: float = TAPE_BUDGET_MB  # volumetric rollouts keep their last steps' substep states for the backward in this
    max_speed: float = 50.0  # m/s; faster vertices mean the run blew up

    def __post_init__(self) -> None:
        if not (self.dt > 0 and np.isfinite(self.dt)):
            raise ValueError(f"settings.dt must be a positive time step in s, got {self.dt}")
        if self.steps < 1:
            raise ValueError(f"settings.steps must be at least 1, got {self.steps}")
        if not self.tape_budget_mb >= 0:
            raise ValueError(f"settings.tape_budget_mb must be at least 0 MB, got {self.tape_budget_mb}")
        if self.precision not in ("f32", "f64"):
            raise ValueError(f"settings.precision must be 'f32' or 'f64', got {self.precision!r}")


@dataclass(frozen=True)
class ShellMaterial:
    density: float = 300.0  # kg/m^3
    thickness: float = 5e-4  # m
    youngs_modulus: float = 1e6  # Pa
    poisson_ratio: float = 0.3
    bending_stiffness: float = 1e-4  # N*m
    yield_angle: float = float(np.pi)  # rad; |fold - rest fold| beyond this becomes permanent
    damping: float = 0.0  # 1/s, mass-proportional
    friction: float = 0.5  # against other shells and itself
    contact_stiffness: float = 1e4  # N/m, shell-shell and self contact

    def __post_init__(self) -> None:
        for name in ("density", "thickness", "youngs_modulus", "yield_angle"):
            if not getattr(self, name) > 0:
                raise ValueError(f"shell material {name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.poisson_ratio < 0.5:
            raise ValueError(f"shell material poisson_ratio must be in [0, 0.5), got {self.poisson_ratio}")
        for name in ("bending_stiffness", "damping", "friction", "contact_stiffness"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"shell material {name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class ShellSpec:
    """A triangle-mesh shell in its initial (world) pose; rest shape = initial shape unless
    ``rest_vertices`` is given."""

    name: str
    vertices: np.ndarray  # (V, 3) float64
    triangles: np.ndarray  # (T, 3) int32
    material: ShellMaterial = field(default_factory=ShellMaterial)
    pinned: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # vertex ids held in place
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rest_vertices: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "vertices", _frozen_array(self.vertices, np.float64, (3,), f"shell {self.name!r} vertices"))
        tris = _frozen_array(self.triangles, np.int32, (3,), f"shell {self.name!r} triangles")
        object.__setattr__(self, "triangles", tris)
        nv = len(self.vertices)
        if len(tris) == 0 or tris.min() < 0 or tris.max() >= nv:
            raise ValueError(f"shell {self.name!r}: triangles must index its {nv} vertices")
        pins = np.unique(np.asarray(self.pinned, np.int32))
        if len(pins) and (pins.min() < 0 or pins.max() >= nv):
            raise ValueError(f"shell {self.name!r}: pinned vertex ids must be in 0..{nv - 1}")
        pins.setflags(write=False)
        object.__setattr__(self, "pinned", pins)
        if self.rest_vertices is not None:
            rest = _frozen_array(self.rest_vertices, np.float64, (3,), f"shell {self.name!r} rest_vertices")
            if rest.shape != self.vertices.shape:
                raise ValueError(f"shell {self.name!r}: rest_vertices must match vertices {self.vertices.shape}")
            object.__setattr__(self, "rest_vertices", rest)


@dataclass(frozen=True)
class ColliderSpec:
    """A rigid shape seen by contact through its signed distance.

    ``size`` means, per shape: box half-extents (x, y, z); sphere (radius, -, -); capsule
    and cylinder (radius, half-length along local z, -); plane (-, -, -) with the normal
    along local +z; mesh: unused (its signed distance grid is ``sdf``).

    ``position``/``rotation`` are the world pose of a static collider, and the pose in the
    tool's frame of a collider a tool owns."""

    name: str
    shape: str
    size: tuple[float, float, float]
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # w, x, y, z
    friction: float = 0.5
    contact_stiffness: float = 1e4  # N/m per vertex in contact
    sdf: Any = None  # mesh only: sim.mesh_sdf.MeshSdf, baked from the mesh in its own frame

    def __post_init__(self) -> None:
        if self.shape not in COLLIDER_SHAPES:
            raise ValueError(f"collider {self.name!r}: shape must be one of {COLLIDER_SHAPES}, got {self.shape!r}")
        if self.shape == "mesh" and self.sdf is None:
            raise ValueError(f"collider {self.name!r}: a mesh collider needs its sdf grid")
        if self.friction < 0 or self.contact_stiffness < 0:
            raise ValueError(f"collider {self.name!r}: friction and contact_stiffness must be >= 0")


@dataclass(frozen=True)
class ToolSpec:
    """A kinematic tool driven by the actions. ``rigid`` moves its collider(s) rigidly with
    the tool frame; ``parallel_jaw`` has two finger boxes ``finger_half`` (half-extents)
    centred at +-(opening/2 + finger_half[0]) along the tool's local x.

    ``offsets`` are the colliders' poses in the tool frame (rigid tools only)."""

    name: str
    kind: str
    colliders: tuple[str, ...]
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    opening: float = 0.0
    finger_half: tuple[float, float, float] = (0.01, 0.005, 0.025)

    def __post_init__(self) -> None:
        if self.kind not in TOOL_KINDS:
            raise ValueError(f"tool {self.name!r}: kind must be one of {TOOL_KINDS}, got {self.kind!r}")
        if self.kind == "parallel_jaw" and len(self.colliders) != 2:
            raise ValueError(f"tool {self.name!r}: a parallel-jaw gripper drives exactly two finger colliders")

    def initial_action(self) -> np.ndarray:
        return np.array([*self.position, *self.rotation, self.opening], np.float64)


@dataclass(frozen=True)
class ContactSettings:
    friction_velocity: float = 1e-3  # m/s: slower relative sliding counts as sticking
    self_contact: bool = True  # shells against each other and themselves (vertex-triangle pairs)
    self_contact_radius: float = 0.0  # m: contact distance between mid-surfaces; 0: the two shells' half thicknesses
    self_contact_stiffness: float = 1e3  # N/m per vertex-triangle pair
    max_penetration: float = 5e-3  # m; deeper contact is reported as a blow-up


@dataclass(frozen=True)
class WorldSpec:
    settings: Settings = field(default_factory=Settings)
    shells: tuple[ShellSpec, ...] = ()
    colliders: tuple[ColliderSpec, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    contact: ContactSettings = field(default_factory=ContactSettings)
    actions: np.ndarray | None = None  # (steps, n_tools, ACTION_SIZE); None: tools stay put
    # Places for the volumetric systems (issue 4): their own spec dataclasses.
    fem_bodies: tuple[Any, ...] = ()
    mpm_bodies: tuple[Any, ...] = ()
    rigid_bodies: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in self.shells] + [c.name for c in self.colliders]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate shell/collider names {dupes}")
        known = {c.name for c in self.colliders}
        owned: list[str] = []
        for tool in self.tools:
            missing = [c for c in tool.colliders if c not in known]
            if missing:
                raise ValueError(f"tool {tool.name!r} names unknown colliders {missing}")
            owned += tool.colliders
        if len(owned) != len(set(owned)):
            raise ValueError("a collider belongs to at most one tool")
        if self.actions is not None:
            acts = np.array(self.actions, np.float64)
            want = (self.settings.steps, len(self.tools), ACTION_SIZE)
            if acts.shape != want:
                raise ValueError(f"actions must have shape (steps, tools, {ACTION_SIZE}) = {want}, got {acts.shape}")
            if not np.all(np.isfinite(acts)):
                bad = np.argwhere(~np.isfinite(acts))[0]
                raise ValueError(f"actions contain NaN/inf (step {bad[0]}, tool {self.tools[bad[1]].name!r})")
            acts.setflags(write=False)
            object.__setattr__(self, "actions", acts)

    def default_actions(self) -> np.ndarray:
        """Every tool holding its initial pose for every step."""
        init = np.array([t.initial_action() for t in self.tools], np.float64).reshape(len(self.tools), ACTION_SIZE)
        return np.broadcast_to(init, (self.settings.steps, *init.shape)).copy()

    def resolved_actions(self) -> np.ndarray:
        return np.array(self.actions) if self.actions is not None else self.default_actions()
