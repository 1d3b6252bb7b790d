"""The scene document: typed, validated, evented models of everything a scene holds.

Every model is a psygnal ``EventedModel`` (pydantic v2): unknown fields are rejected,
assignments are validated, NaN/inf never get in, and each field has a change signal
(``scene.simulation.events.dt.connect(cb)``). Nested changes do not bubble up; edits go
through ``app.commands`` whose stack emits one path-addressed event per change.

Units are SI (m, s, kg, Pa, N, rad unless a field says degrees); each quantity field
carries its unit in the JSON schema (``"unit"``) and in its description, read it with
``field_unit(model_cls, name)``.

Layout of a scene::

    Scene
      schema_version, name, description
      entities: [Body | Gripper]       one list, told apart by ``type``; names unique
        Body:    shape (box/sphere/cylinder/capsule/mesh/cloth/urdf), material, transform
        Gripper: parallel jaw (finger size, opening range), transform, tactile ``sensors``
      trajectory: keyframes of tool pose + gripper opening, interpolation, tool name
      task:       kind, loss terms, success threshold, optimizer defaults
      simulation: dt, substeps, horizon, precision, backend, gravity
      lab:        arm URDF, controller, joint names, topics, serial links

Lists are replaced, never mutated in place, so that their change events fire.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Literal, Union

from psygnal import EventedModel
from pydantic import ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 2

_STRICT = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class Node(EventedModel):
    """Base of every document model: strict, validated on assignment, finite numbers."""

    model_config = _STRICT

    def __setattr__(self, name: str, value: Any) -> None:
        # pydantic stores an assigned value before running model validators; when one of
        # them rejects it, put the old value back so a refused edit changes nothing.
        if name not in type(self).model_fields:
            return super().__setattr__(name, value)
        old = self.__dict__.get(name)
        try:
            super().__setattr__(name, value)
        except ValidationError:
            self.__dict__[name] = old
            raise

    def __reduce__(self) -> tuple:
        # psygnal's per-instance signal groups cannot be pickled; rebuild from the field
        # values instead (worker processes, e.g. optimization sweeps, receive scenes so)
        return (_rebuild, (type(self), self.model_dump()))


def _rebuild(cls: type[Node], data: dict) -> Node:
    with deferred_reference_checks():
        return cls.model_validate(data)


def quantity(default: Any, unit: str, description: str, **constraints: Any) -> Any:
    """A field with a physical unit recorded in its description and JSON schema."""
    return Field(
        default, description=f"{description} [{unit}]", json_schema_extra={"unit": unit}, **constraints
    )


def field_unit(model: type[Node], name: str) -> str | None:
    """The unit of ``model.name`` (e.g. ``"Pa"``), or None for unitless fields."""
    extra = model.model_fields[name].json_schema_extra
    return extra.get("unit") if isinstance(extra, dict) else None


Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*$",
        description="Unique name: a letter or _ then letters, digits, _ . -",
    ),
]
Vec3 = tuple[float, float, float]
PositiveVec3 = tuple[
    Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]
]
Quat = tuple[float, float, float, float]
PositiveFloat = Annotated[float, Field(gt=0)]
AssetPath = Annotated[
    str,
    Field(
        min_length=1,
        description="Path relative to the scene file's folder or to the built-in assets/ folder",
    ),
]


# ---------------------------------------------------------------- transform


def quat_from_rpy_deg(rpy: tuple[float, float, float]) -> Quat:
    """Unit quaternion (w, x, y, z) of extrinsic roll-pitch-yaw in degrees (R = Rz Ry Rx)."""
    r, p, y = (math.radians(a) / 2 for a in rpy)
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return (
        cr * cp * cy + sr * sp * sy,
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
    )


def normalized_quat(q: Quat) -> Quat:
    """``q`` scaled to unit length with w >= 0 (one representative per rotation)."""
    n = math.sqrt(sum(c * c for c in q))
    if not n > 1e-9:
        raise ValueError("quaternion has zero length (expected w, x, y, z not all 0)")
    # already unit up to rounding: leave it, so normalising is idempotent (files round-trip)
    s = (1.0 if q[0] >= 0 else -1.0) / (1.0 if abs(n - 1.0) < 1e-12 else n)
    return tuple(float(c * s) for c in q)  # type: ignore[return-value]


def rpy_input_to_rotation(data: Any) -> Any:
    """Replace an ``rpy_deg`` key of raw input by the equivalent ``rotation`` quaternion."""
    if not (isinstance(data, dict) and "rpy_deg" in data):
        return data
    data = dict(data)
    rpy = data.pop("rpy_deg")
    if "rotation" in data:
        raise ValueError("give either rotation (quaternion) or rpy_deg, not both")
    try:
        if len(rpy) != 3:
            raise ValueError
        angles = tuple(float(a) for a in rpy)
    except (TypeError, ValueError):
        raise ValueError("rpy_deg must be three angles in degrees [roll, pitch, yaw]") from None
    if not all(math.isfinite(a) for a in angles):
        raise ValueError("rpy_deg must be finite angles in degrees")
    data["rotation"] = quat_from_rpy_deg(angles)
    return data


class _Oriented(Node):
    """A model with a ``rotation`` quaternion: ``rpy_deg`` accepted as input, stored normalised."""

    @model_validator(mode="before")
    @classmethod
    def _rpy_to_quat(cls, data: Any) -> Any:
        return rpy_input_to_rotation(data)

    @field_validator("rotation", check_fields=False)
    @classmethod
    def _normalize(cls, q: Quat) -> Quat:
        return normalized_quat(q)


class Transform(_Oriented):
    """Pose in the world frame. Files may give ``rpy_deg: [r, p, y]`` instead of ``rotation``."""

    position: Vec3 = quantity((0.0, 0.0, 0.0), "m", "Position x, y, z")
    rotation: Quat = Field(
        (1.0, 0.0, 0.0, 0.0),
        description="Orientation as a unit quaternion w, x, y, z (normalised on input)",
    )


# ---------------------------------------------------------------- shapes


class BoxShape(Node):
    kind: Literal["box"] = "box"
    size: PositiveVec3 = quantity((0.1, 0.1, 0.1), "m", "Edge lengths x, y, z")


class SphereShape(Node):
    kind: Literal["sphere"] = "sphere"
    radius: PositiveFloat = quantity(0.05, "m", "Radius")


class CylinderShape(Node):
    kind: Literal["cylinder"] = "cylinder"
    radius: PositiveFloat = quantity(0.05, "m", "Radius")
    height: PositiveFloat = quantity(0.1, "m", "Height along local z")


class CapsuleShape(Node):
    kind: Literal["capsule"] = "capsule"
    radius: PositiveFloat = quantity(0.03, "m", "Radius of the caps and the shaft")
    length: PositiveFloat = quantity(0.1, "m", "Length of the cylindrical shaft along local z")


class MeshShape(Node):
    kind: Literal["mesh"] = "mesh"
    path: AssetPath = Field(description="Triangle mesh file (.obj, .stl, .ply)")
    scale: PositiveVec3 = Field((1.0, 1.0, 1.0), description="Scale along x, y, z (unitless)")


class ClothShape(Node):
    """A thin rectangular sheet in the local x-y plane, meshed as a regular triangle grid."""

    kind: Literal["cloth"] = "cloth"
    size: tuple[PositiveFloat, PositiveFloat] = quantity((0.3, 0.3), "m", "Width x, length y")
    resolution: tuple[Annotated[int, Field(ge=2, le=512)], Annotated[int, Field(ge=2, le=512)]] = Field(
        (16, 16), description="Vertices along x and y (2..512 each)"
    )


class UrdfShape(Node):
    kind: Literal["urdf"] = "urdf"
    path: AssetPath = Field(description="URDF robot description")


Shape = Annotated[
    Union[BoxShape, SphereShape, CylinderShape, CapsuleShape, MeshShape, ClothShape, UrdfShape],
    Field(discriminator="kind"),
]
ASSET_SHAPES = (MeshShape, UrdfShape)  # shapes whose path names a file (checked on load)


# ---------------------------------------------------------------- materials

Density = Annotated[float, Field(gt=0, le=1e5)]
Modulus = Annotated[float, Field(gt=0, le=1e12)]
Poisson = Annotated[float, Field(ge=0, lt=0.5)]
Friction = Annotated[float, Field(ge=0, le=10)]
Damping = Annotated[float, Field(ge=0)]


class _Contact(Node):
    friction: Friction = Field(0.5, description="Coulomb friction coefficient (unitless)")
    contact_stiffness: Modulus = quantity(1e4, "N/m", "Penalty stiffness of contact")


class KinematicRigid(_Contact):
    """Moves only as scripted (tables, grippers): infinite mass, no dynamics."""

    kind: Literal["kinematic"] = "kinematic"


class DynamicRigid(_Contact):
    kind: Literal["rigid"] = "rigid"
    density: Density = quantity(1000.0, "kg/m^3", "Density")
    restitution: Annotated[float, Field(ge=0, le=1)] = Field(0.0, description="Bounce (unitless, 0..1)")


class ThinShell(_Contact):
    """Cloth and paper: membrane + bending energy, plastic folds past the yield angle."""

    kind: Literal["shell"] = "shell"
    density: Density = quantity(300.0, "kg/m^3", "Density")
    thickness: Annotated[float, Field(gt=0, le=0.05)] = quantity(5e-4, "m", "Sheet thickness")
    youngs_modulus: Modulus = quantity(1e6, "Pa", "Young's modulus")
    poisson_ratio: Poisson = Field(0.3, description="Poisson ratio (unitless, 0 <= nu < 0.5)")
    bending_stiffness: Annotated[float, Field(ge=0)] = quantity(1e-4, "N*m", "Bending stiffness")
    yield_angle: Annotated[float, Field(gt=0, le=math.pi)] = quantity(
        math.pi, "rad", "Fold angle beyond which bending becomes plastic (pi: never)"
    )
    damping: Damping = quantity(0.0, "1/s", "Velocity damping rate")


class _ElasticSolid(_Contact):
    density: Density = quantity(1000.0, "kg/m^3", "Density")
    youngs_modulus: Modulus = quantity(1e5, "Pa", "Young's modulus")
    poisson_ratio: Poisson = Field(0.3, description="Poisson ratio (unitless, 0 <= nu < 0.5)")


class FemElastic(_ElasticSolid):
    kind: Literal["fem_elastic"] = "fem_elastic"
    damping: Damping = quantity(0.0, "1/s", "Velocity damping rate")


class MpmElastic(_ElasticSolid):
    kind: Literal["mpm_elastic"] = "mpm_elastic"


class MpmElastoplastic(MpmElastic):
    kind: Literal["mpm_elastoplastic"] = "mpm_elastoplastic"  # type: ignore[assignment]
    yield_stress: Modulus = quantity(1e3, "Pa", "Von Mises yield stress")


class MpmFluid(_Contact):
    kind: Literal["mpm_fluid"] = "mpm_fluid"
    density: Density = quantity(1000.0, "kg/m^3", "Density")
    bulk_modulus: Modulus = quantity(1e5, "Pa", "Bulk modulus (stiffness against compression)")
    viscosity: Annotated[float, Field(ge=0)] = quantity(1e-3, "Pa*s", "Dynamic viscosity")


Material = Annotated[
    Union[KinematicRigid, DynamicRigid, ThinShell, FemElastic, MpmElastic, MpmElastoplastic, MpmFluid],
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------- entities


class Body(Node):
    """A simulated or scripted object: what it looks like, what it is made of, where it is."""

    type: Literal["body"] = "body"
    name: Name
    shape: Shape
    material: Material = Field(default_factory=KinematicRigid)
    transform: Transform = Field(default_factory=Transform)
    color: tuple[
        Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]
    ] = Field((0.7, 0.7, 0.7), description="Display colour r, g, b in 0..1")
    visible: bool = True

    @model_validator(mode="after")
    def _shape_fits_material(self) -> Body:
        if isinstance(self.shape, ClothShape) != isinstance(self.material, ThinShell):
            raise ValueError(
                f"shape {self.shape.kind!r} cannot have material {self.material.kind!r} "
                "(expected a cloth shape exactly when the material is a thin shell)"
            )
        return self


class MarkerPattern(Node):
    """Grid of dots printed on the elastomer, tracked in the tactile image."""

    rows: Annotated[int, Field(ge=0, le=64)] = Field(7, description="Marker rows (0: no markers)")
    cols: Annotated[int, Field(ge=0, le=64)] = Field(9, description="Marker columns (0: no markers)")
    spacing: PositiveFloat = quantity(2e-3, "m", "Distance between neighbouring markers")
    radius: PositiveFloat = quantity(4e-4, "m", "Marker dot radius")


class TactileSensor(Node):
    """A vision-based tactile pad (GelSight-like) glued to one gripper finger."""

    name: Name
    finger: Literal["left", "right"] = Field(description="Which finger of the gripper carries the pad")
    pad: Literal["flat", "dome"] = Field("flat", description="Elastomer surface: flat pad or dome")
    size: tuple[PositiveFloat, PositiveFloat] = quantity((0.02, 0.025), "m", "Pad width, height")
    thickness: Annotated[float, Field(gt=0, le=0.05)] = quantity(4e-3, "m", "Elastomer thickness")
    dome_radius: PositiveFloat = quantity(0.03, "m", "Radius of curvature of a dome pad")
    tip_distance: Annotated[float, Field(ge=0)] | None = quantity(
        None, "m", "Distance from the fingertip to the pad's nearer edge (the pad's width runs along the "
        "finger): 0 for a fingertip pad like a GelSight fingertip; null: the pad is centred along the finger"
    )
    markers: MarkerPattern = Field(default_factory=MarkerPattern)
    image_resolution: tuple[Annotated[int, Field(ge=8, le=4096)], Annotated[int, Field(ge=8, le=4096)]] = Field(
        (320, 240), description="Tactile image width, height in pixels"
    )
    material: FemElastic = Field(
        default_factory=lambda: FemElastic(youngs_modulus=3e5, poisson_ratio=0.45, density=1100.0)
    )


class Gripper(Node):
    """A parallel-jaw gripper: two fingers sliding symmetrically along local x."""

    type: Literal["gripper"] = "gripper"
    name: Name
    kind: Literal["parallel_jaw"] = "parallel_jaw"
    finger_size: PositiveVec3 = quantity((0.02, 0.01, 0.05), "m", "Finger width x, depth y, length z")
    opening_range: tuple[Annotated[float, Field(ge=0)], PositiveFloat] = quantity(
        (0.0, 0.08), "m", "Smallest and largest distance between the finger pads"
    )
    opening: Annotated[float, Field(ge=0)] = quantity(0.08, "m", "Initial distance between the finger pads")
    max_force: PositiveFloat = quantity(40.0, "N", "Largest grip force")
    transform: Transform = Field(default_factory=Transform)
    sensors: list[TactileSensor] = Field(default_factory=list, description="Tactile pads on the fingers")

    @model_validator(mode="after")
    def _opening_in_range(self) -> Gripper:
        lo, hi = self.opening_range
        if lo >= hi:
            raise ValueError(f"opening_range [{lo}, {hi}] is empty (expected min < max)")
        if not lo <= self.opening <= hi:
            raise ValueError(f"opening {self.opening} m is outside opening_range (expected {lo} <= opening <= {hi} m)")
        return self

    @model_validator(mode="after")
    def _pads_on_their_fingers(self) -> Gripper:
        length = self.finger_size[2]
        for s in self.sensors:
            if s.tip_distance is not None and s.tip_distance + s.size[0] > length:
                raise ValueError(
                    f"sensor {s.name!r}: tip_distance {s.tip_distance} m plus its width {s.size[0]} m runs past the "
                    f"finger's length {length} m (expected tip_distance <= {length - s.size[0]:.6g} m)"
                )
        return self


def _entity_type(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("type", "body")
    return getattr(value, "type", "body")


Entity = Annotated[
    Union[Annotated[Body, Tag("body")], Annotated[Gripper, Tag("gripper")]],
    Discriminator(_entity_type, custom_error_type="entity_type",
                  custom_error_message="unknown entity type (expected type 'body' or 'gripper')"),
]


# ---------------------------------------------------------------- trajectory


class Keyframe(_Oriented):
    time: Annotated[float, Field(ge=0)] = quantity(0.0, "s", "Time from the start")
    position: Vec3 = quantity((0.0, 0.0, 0.0), "m", "Tool position")
    rotation: Quat = Field((1.0, 0.0, 0.0, 0.0), description="Tool orientation w, x, y, z")
    opening: Annotated[float, Field(ge=0)] = quantity(0.08, "m", "Gripper opening")


class Trajectory(Node):
    tool: Name = Field(description="Name of the gripper (or body) this trajectory drives")
    interpolation: Literal["linear", "cubic", "bspline"] = "cubic"
    keyframes: list[Keyframe] = Field(default_factory=list)

    @field_validator("keyframes")
    @classmethod
    def _increasing_times(cls, frames: list[Keyframe]) -> list[Keyframe]:
        for i in range(1, len(frames)):
            if not frames[i].time > frames[i - 1].time:
                raise ValueError(
                    f"keyframe {i} time {frames[i].time} s is not after keyframe {i - 1} "
                    f"({frames[i - 1].time} s) (expected strictly increasing times)"
                )
        return frames


# ---------------------------------------------------------------- task


Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class LossTerm(Node):
    kind: Identifier = Field(description="Loss term, e.g. position, lift_height, contact_force, smoothness")
    weight: Annotated[float, Field(ge=0)] = Field(1.0, description="Weight in the total loss (unitless)")
    entity: Name | None = Field(None, description="Entity (or sensor) the term measures, if any")
    target: list[float] = Field(default_factory=list, description="Target value(s), in the term's units")


# Optimizers the runner offers (sim.optim.optimizers.OPTIMIZERS): hybrid is CMA-ES, then Adam.
OPTIMIZER_METHODS = ("hybrid", "adam", "cmaes")


class OptimizerSettings(Node):
    method: Literal["hybrid", "adam", "cmaes"] = Field("hybrid", description="hybrid (CMA-ES, then Adam), adam or cmaes")
    learning_rate: PositiveFloat = Field(1e-2, description="Step size (in parameter units)")
    iterations: Annotated[int, Field(ge=1, le=100000)] = 50
    parameters: list[Identifier] = Field(
        default_factory=lambda: ["trajectory"], description="What is optimized: trajectory, material, ..."
    )

    @field_validator("method", mode="before")
    @classmethod
    def _legacy_method(cls, value: Any) -> Any:
        """Files written before the runner's names said "cma" for CMA-ES; "sgd" and "lbfgs"
        were listed but never ran, so a file naming them is told what to pick instead."""
        if value == "cma":
            return "cmaes"
        if value in ("sgd", "lbfgs"):
            raise ValueError(f"optimizer {value!r} is no longer offered (it never ran); choose one of {', '.join(OPTIMIZER_METHODS)}")
        return value


class Task(Node):
    kind: Identifier = Field("lift", description="Task: lift, fold, follow_surface, pour, push, ...")
    loss: list[LossTerm] = Field(default_factory=list)
    success_threshold: Annotated[float, Field(ge=0)] = Field(
        0.01, description="Success when the total loss is at most this (loss units)"
    )
    optimizer: OptimizerSettings = Field(default_factory=OptimizerSettings)


# ---------------------------------------------------------------- simulation and lab


class Simulation(Node):
    dt: Annotated[float, Field(gt=0, le=0.1)] = quantity(1e-3, "s", "Time step")
    substeps: Annotated[int, Field(ge=1, le=1000)] = Field(10, description="Substeps per step")
    horizon: Annotated[int, Field(ge=1, le=1_000_000)] = Field(200, description="Steps simulated")
    precision: Literal["f32", "f64"] = "f64"
    backend: Literal["cpu", "cuda", "vulkan", "auto"] = "cpu"
    gravity: Vec3 = quantity((0.0, 0.0, -9.81), "m/s^2", "Gravity")


BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1000000, 2000000)


class SerialLink(Node):
    port: str = Field(min_length=1, description="Device path, e.g. /dev/ttyUSB0 or a pyserial URL")
    baud: int = Field(115200, description=f"Baud rate, one of {BAUD_RATES}")

    @field_validator("baud")
    @classmethod
    def _standard_baud(cls, b: int) -> int:
        if b not in BAUD_RATES:
            raise ValueError(f"baud {b} is not a standard rate (expected one of {BAUD_RATES})")
        return b


Topic = Annotated[str, Field(pattern=r"^/?[A-Za-z_~][A-Za-z0-9_/{}~]*$", description="ROS 2 topic name")]


class Lab(Node):
    """How the real robot is reached; ignored in simulation."""

    arm_urdf: AssetPath | None = Field(None, description="URDF of the real arm")
    controller: str = Field(
        "joint_trajectory_controller", min_length=1, description="ros2_control trajectory controller"
    )
    joint_names: list[Name] = Field(default_factory=list, description="Arm joints in controller order")
    joint_states_topic: Topic = "/joint_states"
    gripper_topic: Topic = "/gripper/command"
    tactile_topics: dict[Name, Topic] = Field(
        default_factory=dict, description="Tactile sensor name -> sensor_msgs/Image topic"
    )
    gripper_serial: SerialLink | None = None
    sensor_serial: SerialLink | None = None
    # Where the trajectory's tool is on the arm, and the limits the deploy safety gate adds.
    tool_link: Name | None = Field(None, description="URDF link the tool frame is on (default: its tcp/tool leaf)")
    tool_offset: Transform = Field(
        default_factory=lambda: Transform(rotation=(0.0, math.sqrt(0.5), math.sqrt(0.5), 0.0)),
        description="Pose of the URDF tool link in the trajectory tool's frame (default: its z along the "
        "fingers, pointing down from an upright gripper, and its y along the finger sliding axis)",
    )
    workspace_min: Vec3 = quantity((-0.3, -0.85, -0.05), "m", "Tool workspace box, lower corner, arm base frame")
    workspace_max: Vec3 = quantity((1.0, 0.85, 1.2), "m", "Tool workspace box, upper corner, arm base frame")
    table_height: float | None = quantity(0.0, "m", "No arm link below this height in the arm base frame (null: none)")
    position_margin: Annotated[float, Field(ge=0, le=0.5)] = quantity(
        0.02, "rad", "Kept clear of each joint's URDF position limits"
    )
    rate_margin: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.1, description="Fraction taken off the URDF velocity, acceleration and jerk limits (unitless)"
    )

    @model_validator(mode="after")
    def _workspace_box(self) -> Lab:
        if not all(lo < hi for lo, hi in zip(self.workspace_min, self.workspace_max)):
            raise ValueError(f"workspace_min {self.workspace_min} must be below workspace_max {self.workspace_max}")
        return self

    @field_validator("joint_names")
    @classmethod
    def _unique_joints(cls, names: list[str]) -> list[str]:
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate joint names {dupes} (expected each joint once)")
        return names


# ---------------------------------------------------------------- scene

_defer_references: ContextVar[bool] = ContextVar("defer_references", default=False)


@contextmanager
def deferred_reference_checks() -> Iterator[None]:
    """Build Scenes without their cross-field checks, to run ``reference_problems`` after.

    The file loader uses this to report every such problem at its own field and line."""
    token = _defer_references.set(True)
    try:
        yield
    finally:
        _defer_references.reset(token)



class Scene(Node):
    schema_version: Literal[2] = Field(SCHEMA_VERSION, description="File format version")
    name: str = Field("untitled", min_length=1, max_length=128)
    description: str = ""
    entities: list[Entity] = Field(default_factory=list)
    trajectory: Trajectory | None = None
    task: Task = Field(default_factory=Task)
    simulation: Simulation = Field(default_factory=Simulation)
    lab: Lab = Field(default_factory=Lab)

    @model_validator(mode="after")
    def _references(self) -> Scene:
        if not _defer_references.get():
            problems = self.reference_problems()
            if problems:
                raise ValueError("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))
        return self

    def reference_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-field problems (duplicate names, dangling references) as (field path, message).

        Scene-level rules run when a Scene field is assigned, not when a nested model
        changes, so editors call this after nested edits (app.commands does)."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        seen: set[str] = set()
        for i, e in enumerate(self.entities):
            for loc, name in [(("entities", i, "name"), e.name)] + [
                (("entities", i, "sensors", j, "name"), s.name)
                for j, s in enumerate(e.sensors if isinstance(e, Gripper) else [])
            ]:
                if name in seen:
                    problems.append((loc, f"duplicate name {name!r} (expected every entity and sensor name once)"))
                seen.add(name)
        names = sorted(seen)
        if self.trajectory is not None and self.trajectory.tool not in seen:
            problems.append(
                (("trajectory", "tool"), f"{self.trajectory.tool!r} names no entity (expected one of {names})")
            )
        sensors = [s.name for _, s in self.sensors()]
        for sensor in self.lab.tactile_topics:
            if sensor not in sensors:
                problems.append(
                    (("lab", "tactile_topics", sensor), f"{sensor!r} is no tactile sensor (expected one of {sensors})")
                )
        for i, term in enumerate(self.task.loss):
            if term.entity is not None and term.entity not in seen:
                problems.append(
                    (("task", "loss", i, "entity"), f"{term.entity!r} names no entity (expected one of {names})")
                )
        return problems

    # ------------------------------------------------------------ queries

    def all_names(self) -> list[str]:
        """Names of every entity and tactile sensor, in document order."""
        out = []
        for e in self.entities:
            out.append(e.name)
            if isinstance(e, Gripper):
                out.extend(s.name for s in e.sensors)
        return out

    def entity(self, name: str) -> Body | Gripper:
        """The entity called ``name``; KeyError if none."""
        for e in self.entities:
            if e.name == name:
                return e
        raise KeyError(f"no entity named {name!r}")

    def bodies(self) -> list[Body]:
        return [e for e in self.entities if isinstance(e, Body)]

    def grippers(self) -> list[Gripper]:
        return [e for e in self.entities if isinstance(e, Gripper)]

    def sensors(self) -> list[tuple[Gripper, TactileSensor]]:
        """Every tactile sensor with the gripper that carries it."""
        return [(g, s) for g in self.grippers() for s in g.sensors]
