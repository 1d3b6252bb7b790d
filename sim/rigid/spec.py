"""What a dynamic rigid body is built from: a primitive shape, a density, a pose, and
optionally a revolute hinge (a lid, a door) that leaves it one angle. SI units throughout.

Mass and the principal moments of inertia follow from the shape and density (closed forms
for the box, sphere and cylinder; the capsule adds two half-sphere caps to its shaft); the
shape's local axes are its principal axes. Contact sees the body through
``sim.sdf.collider_sdf`` of its shape (pad nodes against the body) and through points
spread over its surface, each standing for a patch of area (the body against the table and
other colliders).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.fem.spec import quat_to_matrix

RIGID_SHAPES = ("box", "sphere", "capsule", "cylinder")  # sizes as sim.spec.ColliderSpec: half-extents, radius, half-length


@dataclass(frozen=True)
class Hinge:
    """A revolute joint fixed in the world: the body turns about ``axis`` through ``pivot``.

    The body's spec pose is its pose at angle 0; ``angle`` is where it starts. Beyond
    [lower, upper] a stiff, critically damped spring pushes it back; ``damping`` (N m s/rad)
    resists any turning."""

    pivot: tuple[float, float, float]
    axis: tuple[float, float, float]
    lower: float = -math.pi
    upper: float = math.pi
    damping: float = 0.0
    angle: float = 0.0

    def __post_init__(self) -> None:
        if not np.linalg.norm(self.axis) > 0:
            raise ValueError(f"hinge axis must be a non-zero vector, got {self.axis}")
        if not self.lower <= self.angle <= self.upper:
            raise ValueError(f"hinge angle {self.angle} rad lies outside its limits [{self.lower}, {self.upper}]")
        if self.damping < 0:
            raise ValueError(f"hinge damping must be >= 0, got {self.damping}")

    @property
    def unit_axis(self) -> np.ndarray:
        a = np.asarray(self.axis, np.float64)
        return a / np.linalg.norm(a)


@dataclass(frozen=True)
class RigidBodySpec:
    name: str
    shape: str
    size: tuple[float, float, float]
    density: float = 1000.0  # kg/m^3
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)  # centre of mass
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # w, x, y, z
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    angular_velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)  # world frame, rad/s
    friction: float = 0.5  # against the table and other colliders (pads use the volumetric contact's)
    hinge: Hinge | None = None

    def __post_init__(self) -> None:
        if self.shape not in RIGID_SHAPES:
            raise ValueError(f"rigid body {self.name!r}: shape must be one of {RIGID_SHAPES}, got {self.shape!r}")
        used = {"box": 3, "sphere": 1, "capsule": 2, "cylinder": 2}[self.shape]
        if len(self.size) != 3 or not all(s > 0 for s in self.size[:used]):
            raise ValueError(f"rigid body {self.name!r}: a {self.shape} needs {used} positive size values, got {self.size}")
        if not self.density > 0:
            raise ValueError(f"rigid body {self.name!r}: density must be positive, got {self.density}")
        if self.friction < 0:
            raise ValueError(f"rigid body {self.name!r}: friction must be >= 0, got {self.friction}")
        if not np.linalg.norm(self.rotation) > 0:
            raise ValueError(f"rigid body {self.name!r}: rotation must be a non-zero quaternion")

    @classmethod
    def from_scene(cls, body: dict, hinge: Hinge | None = None) -> "RigidBodySpec":
        """A scene body with a ``rigid`` material, given as plain data (the scene model's
        JSON dump, SI units: full box edges, cylinder height, capsule shaft length)."""
        shape, material, pose = body["shape"], body["material"], body.get("transform", {})
        if material.get("kind") != "rigid":
            raise ValueError(f"body {body['name']!r} has material {material.get('kind')!r}, not a dynamic rigid one")
        kind = shape["kind"]
        sizes = {"box": lambda: tuple(0.5 * v for v in shape["size"]), "sphere": lambda: (shape["radius"], 0.0, 0.0),
                 "cylinder": lambda: (shape["radius"], 0.5 * shape["height"], 0.0),
                 "capsule": lambda: (shape["radius"], 0.5 * shape["length"], 0.0)}
        if kind not in sizes:
            raise ValueError(f"body {body['name']!r}: a {kind!r} cannot be a dynamic rigid body (use one of {sorted(sizes)})")
        return cls(body["name"], kind, sizes[kind](), density=material.get("density", 1000.0),
                   position=tuple(pose.get("position", (0.0, 0.0, 0.0))), rotation=tuple(pose.get("rotation", (1.0, 0.0, 0.0, 0.0))),
                   friction=material.get("friction", 0.5), hinge=hinge)

    @property
    def volume(self) -> float:
        a, b, c = self.size
        return {"box": lambda: 8 * a * b * c, "sphere": lambda: 4 / 3 * math.pi * a**3,
                "cylinder": lambda: 2 * math.pi * a * a * b,
                "capsule": lambda: 2 * math.pi * a * a * b + 4 / 3 * math.pi * a**3}[self.shape]()

    @property
    def mass(self) -> float:
        return self.density * self.volume

    def unit_inertia(self) -> np.ndarray:
        """Principal moments of inertia per kilogram about the centre (local x, y, z)."""
        a, b, c = self.size
        if self.shape == "box":
            return np.array([b * b + c * c, a * a + c * c, a * a + b * b]) / 3.0
        if self.shape == "sphere":
            return np.full(3, 0.4 * a * a)
        h = 2 * b  # shaft length
        if self.shape == "cylinder":
            side = (3 * a * a + h * h) / 12.0
            return np.array([side, side, 0.5 * a * a])
        # capsule: shaft plus two half-spheres whose centres of mass sit 3r/8 beyond the shaft's ends
        shaft, caps = math.pi * a * a * h, 4 / 3 * math.pi * a**3
        m1, m2 = shaft / (shaft + caps), caps / (shaft + caps)
        side = m1 * (3 * a * a + h * h) / 12.0 + m2 * (0.4 * a * a + h * h / 4 + 3 * h * a / 8)
        return np.array([side, side, m1 * 0.5 * a * a + m2 * 0.4 * a * a])

    def bounding_radius(self) -> float:
        a, b, c = self.size
        return {"box": lambda: math.sqrt(a * a + b * b + c * c), "sphere": lambda: a,
                "cylinder": lambda: math.hypot(a, b), "capsule": lambda: a + b}[self.shape]()

    def initial_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Centre and quaternion (w, x, y, z) at the start: the spec pose turned by the hinge's
        starting angle about its pivot."""
        p, q = np.asarray(self.position, np.float64), np.asarray(self.rotation, np.float64)
        q = q / np.linalg.norm(q)
        if self.hinge is None or self.hinge.angle == 0.0:
            return p, q
        turn = axis_angle_quat(self.hinge.unit_axis, self.hinge.angle)
        pivot = np.asarray(self.hinge.pivot, np.float64)
        return pivot + quat_to_matrix(turn) @ (p - pivot), quat_mul(turn, q)

    def surface_mesh(self):
        """The shape's triangulated surface in the body's frame (a trimesh.Trimesh)."""
        import trimesh

        a, b, c = self.size
        if self.shape == "box":
            return trimesh.creation.box(extents=(2 * a, 2 * b, 2 * c))
        if self.shape == "sphere":
            return trimesh.creation.icosphere(subdivisions=2, radius=a)
        if self.shape == "cylinder":
            return trimesh.creation.cylinder(radius=a, height=2 * b, sections=24)
        return trimesh.creation.capsule(height=2 * b, radius=a, count=[12, 12])

    def surface_samples(self, spacing: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Points on the surface in the body's frame and the area each stands for (m^2):
        vertices of the shape's triangulated surface refined to edges of at most ``spacing``
        (default a quarter of the smallest dimension), each with a third of its triangles'
        area. Corners and edges are among them, so a box resting on an edge or a corner
        touches through its real extreme points."""
        from trimesh.remesh import subdivide_to_size

        a, b, c = self.size
        mesh = self.surface_mesh()
        smallest = 2 * {"box": min(a, b, c), "sphere": a, "cylinder": min(a, b), "capsule": a}[self.shape]
        spacing = spacing or smallest / 4
        vertices, faces = subdivide_to_size(mesh.vertices, mesh.faces, max_edge=spacing)
        tri = vertices[faces]
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        weights = np.zeros(len(vertices))
        np.add.at(weights, faces.ravel(), np.repeat(area / 3.0, 3))
        used = weights > 0
        return np.asarray(vertices[used], np.float64), weights[used]


def quat_mul(a, b) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw])


def axis_angle_quat(axis, angle: float) -> np.ndarray:
    axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    return np.array([math.cos(angle / 2), *(math.sin(angle / 2) * axis)])


def yaw_of(q) -> float:
    """The heading (rotation about world z, rad) of a body's local x axis."""
    R = quat_to_matrix(q)
    return math.atan2(R[1, 0], R[0, 0])
