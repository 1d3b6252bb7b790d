"""Display geometry of document entities (pyvista meshes in world coordinates).

This is what the viewport shows before any simulation: each shape meshed at its pose. After
a run, frames from the simulation thread replace the points of deforming entities.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pyvista as pv
from pydantic import TypeAdapter

from app.scene import model as m

MPM_KINDS = ("mpm_elastic", "mpm_elastoplastic", "mpm_fluid")
PARTICLES_PER_AXIS = 10  # display sampling of an MPM body before it is simulated
_SHAPES = TypeAdapter(m.Shape)


def pose_matrix(transform: m.Transform) -> np.ndarray:
    """4x4 world-from-local matrix of a position and a unit quaternion (w, x, y, z)."""
    w, x, y, z = transform.rotation
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = transform.position
    return out


@dataclass
class Part:
    """One drawable piece of an entity; ``role`` picks its style in the viewport."""

    entity: str  # name of the entity it belongs to (what a click selects)
    role: str  # "solid", "shell", "particles", "pad"
    mesh: pv.DataSet
    color: tuple[float, float, float]
    sensor: str | None = None  # tactile pad name, for pads
    rest: pv.DataSet | None = None  # the document's geometry, kept while a run's frame replaces it
    slide: int = 0  # +1/-1: a finger (and its pad) moving out/in along the gripper's x as it opens


def shape_mesh(shape, resolve: Callable[[str], Path]) -> pv.PolyData:
    """The shape as a surface mesh in its local frame (metres); a copy the caller may move."""
    if isinstance(shape, m.MeshShape):
        path = resolve(shape.path)
        return _cached_shape(shape.model_dump_json(), str(path), path.stat().st_mtime_ns).copy()
    return _cached_shape(shape.model_dump_json(), "", 0).copy()


@lru_cache(maxsize=256)
def _cached_shape(shape_json: str, path: str, _mtime: int) -> pv.PolyData:
    """Meshing is redone only when a shape (or its file) changes, not on every edit."""
    return _mesh_shape(_SHAPES.validate_json(shape_json), path)


def _mesh_shape(shape, path: str) -> pv.PolyData:
    if isinstance(shape, m.BoxShape):
        return pv.Box(bounds=_centered_bounds(shape.size)).triangulate()
    if isinstance(shape, m.SphereShape):
        return pv.Sphere(radius=shape.radius, theta_resolution=32, phi_resolution=24)
    if isinstance(shape, m.CylinderShape):
        return pv.Cylinder(radius=shape.radius, height=shape.height, direction=(0, 0, 1), resolution=32).triangulate()
    if isinstance(shape, m.CapsuleShape):
        return pv.Capsule(radius=shape.radius, cylinder_length=shape.length, direction=(0, 0, 1), resolution=32)
    if isinstance(shape, m.ClothShape):
        nx, ny = shape.resolution
        return pv.Plane(
            i_size=shape.size[0], j_size=shape.size[1], i_resolution=nx - 1, j_resolution=ny - 1
        ).triangulate()
    if isinstance(shape, m.MeshShape):
        return read_mesh(Path(path)).scale(shape.scale, inplace=False)
    raise TypeError(f"no display geometry for shape {shape.kind!r}")


def read_mesh(path: Path) -> pv.PolyData:
    """A triangle mesh file (.obj, .stl, .ply) through VTK's reader for its format."""
    from vtkmodules.vtkIOGeometry import vtkOBJReader, vtkSTLReader
    from vtkmodules.vtkIOPLY import vtkPLYReader

    readers = {".obj": vtkOBJReader, ".stl": vtkSTLReader, ".ply": vtkPLYReader}
    if path.suffix.lower() not in readers:
        raise ValueError(f"{path.name}: unsupported mesh format (expected one of {sorted(readers)})")
    reader = readers[path.suffix.lower()]()
    reader.SetFileName(str(path))
    reader.Update()
    mesh = pv.wrap(reader.GetOutput())
    if mesh.n_points == 0:
        raise ValueError(f"{path.name}: no geometry read")
    return mesh.triangulate()


def _centered_bounds(size) -> tuple[float, ...]:
    hx, hy, hz = (s / 2 for s in size)
    return (-hx, hx, -hy, hy, -hz, hz)


def particles_inside(surface: pv.PolyData, n: int = PARTICLES_PER_AXIS) -> pv.PolyData:
    """Points of a regular grid inside a closed surface (how an MPM body starts)."""
    lo, hi = np.array(surface.bounds).reshape(3, 2).T
    axes = [np.linspace(a + (b - a) / (2 * n), b - (b - a) / (2 * n), n) for a, b in zip(lo, hi)]
    grid = pv.PolyData(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3))
    inside = grid.select_interior_points(surface, check_surface=False)["selected_points"].view(bool)
    return pv.PolyData(grid.points[inside])


def body_parts(body: m.Body, resolve: Callable[[str], Path]) -> list[Part]:
    if isinstance(body.shape, m.UrdfShape):
        return robot_parts(body, resolve)
    local = shape_mesh(body.shape, resolve)
    world = pose_matrix(body.transform)
    if body.material.kind in MPM_KINDS:
        return [Part(body.name, "particles", particles_inside(local).transform(world, inplace=False), body.color)]
    role = "shell" if body.material.kind == "shell" else "solid"
    return [Part(body.name, role, local.transform(world, inplace=False), body.color)]


def robot_parts(body: m.Body, resolve: Callable[[str], Path]) -> list[Part]:
    """The robot's link visuals posed by its kinematics (middle of every joint range)."""
    urdf = resolve(body.shape.path)
    meshes = _robot_meshes(str(urdf), urdf.stat().st_mtime_ns, body.transform.model_dump_json())
    return [Part(body.name, "solid", mesh.copy(), color) for mesh, color in meshes]


@lru_cache(maxsize=16)
def _robot_meshes(urdf: str, _mtime: int, transform_json: str) -> list[tuple[pv.PolyData, tuple]]:
    from app.services.robot_view import robot_visuals

    pose = pose_matrix(m.Transform.model_validate_json(transform_json))
    parts = []
    for visual in robot_visuals(Path(urdf), pose):
        if visual.kind == "box":
            local = pv.Box(bounds=_centered_bounds(visual.size))
        elif visual.kind == "cylinder":
            radius, length = visual.size
            local = pv.Cylinder(radius=radius, height=length, direction=(0, 0, 1), resolution=24)
        elif visual.kind == "sphere":
            local = pv.Sphere(radius=visual.size[0])
        else:
            local = read_mesh(visual.mesh_path).scale(visual.size, inplace=False)
        parts.append((local.triangulate().transform(visual.pose, inplace=False), visual.color))
    return parts


def gripper_parts(gripper: m.Gripper) -> list[Part]:
    """Palm, two fingers sliding along local x, and a pad on each finger's inner face; the
    fingers are centred on the gripper's frame, as the simulator places them."""
    fx, fy, fz = gripper.finger_size
    half = gripper.opening / 2
    world = pose_matrix(gripper.transform)
    grey = (0.55, 0.57, 0.6)
    palm_w = gripper.opening_range[1] + 2 * fx
    palm = pv.Box(bounds=(-palm_w / 2, palm_w / 2, -fy / 2, fy / 2, fz / 2, 0.7 * fz))
    parts = [Part(gripper.name, "solid", palm.triangulate().transform(world, inplace=False), grey)]
    for sign in (-1, 1):
        x0 = sign * half
        finger = pv.Box(bounds=(min(x0, x0 + sign * fx), max(x0, x0 + sign * fx), -fy / 2, fy / 2, -fz / 2, fz / 2))
        parts.append(Part(gripper.name, "solid", finger.triangulate().transform(world, inplace=False), grey, slide=sign))
    for sensor in gripper.sensors:
        sign = 1 if sensor.finger == "left" else -1  # the left finger is the one at +x, as in sim.tools
        inner = sign * half
        w, h = sensor.size
        pad = pv.Box(
            bounds=(
                min(inner, inner - sign * sensor.thickness),
                max(inner, inner - sign * sensor.thickness),
                -w / 2, w / 2, -h / 2, h / 2,
            ),
            level=4,
        ).triangulate()
        parts.append(Part(gripper.name, "pad", pad.transform(world, inplace=False), (0.95, 0.75, 0.3), sensor.name,
                          slide=sign))
    return parts


def entity_parts(entity, resolve: Callable[[str], Path]) -> list[Part]:
    if isinstance(entity, m.Gripper):
        return gripper_parts(entity)
    return body_parts(entity, resolve)


def trajectory_path(trajectory: m.Trajectory, samples: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(keyframe positions (K, 3), path points (S, 3)) of the tool, for drawing."""
    keys = np.array([k.position for k in trajectory.keyframes], dtype=float).reshape(-1, 3)
    if len(keys) < 2:
        return keys, keys
    times = np.array([k.time for k in trajectory.keyframes])
    t = np.linspace(times[0], times[-1], samples)
    if trajectory.interpolation == "linear" or len(keys) < 3:
        path = np.stack([np.interp(t, times, keys[:, i]) for i in range(3)], -1)
    elif trajectory.interpolation == "cubic":
        path = clamped_cubic(times, keys, t)
    else:  # keyframes are B-spline control points: the path passes near, not through, them
        from app.compile.trajectory import interpolation_matrix

        span = times[-1] - times[0]
        path = interpolation_matrix(times, span / (samples - 1), samples - 1, "bspline") @ keys
        path = np.vstack([keys[:1], path])
    return keys, path


def clamped_cubic(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """C2 cubic spline through (times, values) at rest at both ends, sampled at ``t``: the
    simulator's "cubic" (app.compile.trajectory, tested equal) in numpy only, since
    scipy.interpolate would add a second to the studio's start."""
    h = np.diff(times)
    n = len(times)
    # knot slopes m: tridiagonal system of C2 continuity, zero end slopes
    a = np.zeros((n, n))
    rhs = np.zeros_like(values, dtype=float)
    a[0, 0] = a[-1, -1] = 1.0
    for i in range(1, n - 1):
        a[i, i - 1], a[i, i], a[i, i + 1] = h[i], 2 * (h[i - 1] + h[i]), h[i - 1]
        rhs[i] = 3 * (h[i] * (values[i] - values[i - 1]) / h[i - 1] + h[i - 1] * (values[i + 1] - values[i]) / h[i])
    m = np.linalg.solve(a, rhs)
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, n - 2)
    dt = h[seg][:, None]
    s = ((t - times[seg]) / h[seg])[:, None]
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * values[seg] + h10 * dt * m[seg] + h01 * values[seg + 1] + h11 * dt * m[seg + 1]
