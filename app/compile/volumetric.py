"""Scene document -> volumetric specs: tactile pads (FEM + sensor config), FEM soft bodies
and MPM bodies. Pure mapping; nothing here runs Taichi.

Mesh-file bodies need the scene's resolved asset path; ``mesh_loader`` turns a MeshShape
into a watertight ``trimesh.Trimesh`` (the caller knows the scene's folder).
"""

from __future__ import annotations

import math

import numpy as np

from app.scene.model import Body, FemElastic, Gripper, MpmElastic, MpmElastoplastic, MpmFluid, TactileSensor
from sim.fem.mesh import TetMesh, box_body, dome_pad, flat_pad, voxel_tetrahedralize
from sim.fem.spec import FemBodySpec, FemMaterial
from sim.mpm import sampling
from sim.mpm.spec import MpmBodySpec, MpmGrid, MpmMaterial
from sim.tactile.sensor import TactileConfig


def _cells(length: float, element: float) -> int:
    return max(int(round(length / element)), 1)


def pad_specs(sensor: TactileSensor, element_size: float = 1.5e-3, mass_scale: float = 1.0) -> tuple[FemBodySpec, TactileConfig]:
    """The FEM pad of a tactile sensor (in its own frame: gel facing +z, back at the finger)
    and its reading configuration."""
    m = sensor.material
    material = FemMaterial(m.youngs_modulus, m.poisson_ratio, m.density, max(m.damping, 20.0))
    width, height = sensor.size
    if sensor.pad == "flat":
        cells = (_cells(width, element_size), _cells(height, element_size), _cells(sensor.thickness, element_size))
        mesh = flat_pad((width, height, sensor.thickness), cells)
        markers: tuple[int, int] | int = (sensor.markers.cols, sensor.markers.rows)
    else:
        if sensor.thickness >= sensor.dome_radius:
            raise ValueError(f"sensor {sensor.name!r}: thickness must be below the dome radius")
        half = 0.5 * min(width, height)
        cap = math.degrees(math.asin(min(half / sensor.dome_radius, 1.0)))
        arc = sensor.dome_radius * math.radians(cap)
        mesh = dome_pad(sensor.dome_radius, sensor.thickness, cap, rings=_cells(arc, element_size), layers=_cells(sensor.thickness, element_size))
        markers = sensor.markers.rows * sensor.markers.cols
    if (markers if isinstance(markers, int) else min(markers)) < 1:
        raise ValueError(f"sensor {sensor.name!r} has no markers; give rows and cols >= 1")
    w_px, h_px = sensor.image_resolution
    config = TactileConfig(image_size=(h_px, w_px), markers=markers)
    return FemBodySpec(sensor.name, mesh, material, mass_scale=mass_scale), config


SOFT_BODY_CELLS = 8  # elements across a soft body's smallest extent
SOFT_BODY_ELEMENT = 1.5e-3  # m: no finer than this


def _element_size(extents) -> float:
    return max(float(min(extents)) / SOFT_BODY_CELLS, SOFT_BODY_ELEMENT)


def _tet_mesh(body: Body, element_size: float | None, mesh_loader) -> TetMesh:
    """The body's tetrahedra, ``element_size`` apart (None: from the body's own smallest extent)."""
    shape = body.shape
    if shape.kind == "box":
        element_size = element_size or _element_size(shape.size)
        return box_body(tuple(shape.size), tuple(_cells(s, element_size) for s in shape.size))
    import trimesh

    if shape.kind == "sphere":
        surface = trimesh.creation.icosphere(subdivisions=3, radius=shape.radius)
    elif shape.kind == "cylinder":
        surface = trimesh.creation.cylinder(radius=shape.radius, height=shape.height, sections=32)
    elif shape.kind == "capsule":
        surface = trimesh.creation.capsule(height=shape.length, radius=shape.radius, count=[16, 16])
    elif shape.kind == "mesh":
        if mesh_loader is None:
            raise ValueError(f"body {body.name!r}: a mesh shape needs a mesh_loader to read {shape.path!r}")
        surface = mesh_loader(shape)
    else:
        raise ValueError(f"body {body.name!r}: shape {shape.kind!r} cannot be an FEM body")
    return voxel_tetrahedralize(surface, element_size or _element_size(surface.extents))


def fem_body_spec(body: Body, element_size: float | None = None, mesh_loader=None) -> FemBodySpec:
    """A free FEM soft body (soft block, sponge) from a body with an FemElastic material, its
    elements ``element_size`` apart (None: SOFT_BODY_CELLS across its smallest extent)."""
    m = body.material
    if not isinstance(m, FemElastic):
        raise ValueError(f"body {body.name!r} has material {m.kind!r}, not fem_elastic")
    return FemBodySpec(
        body.name,
        _tet_mesh(body, element_size, mesh_loader),
        FemMaterial(m.youngs_modulus, m.poisson_ratio, m.density, m.damping),
        position=tuple(body.transform.position),
        rotation=tuple(body.transform.rotation),
    )


def mpm_material(body: Body) -> MpmMaterial:
    m = body.material
    if isinstance(m, MpmFluid):
        return MpmMaterial("fluid", density=m.density, bulk_modulus=m.bulk_modulus, viscosity=m.viscosity)
    if isinstance(m, MpmElastoplastic):
        return MpmMaterial("plastic", density=m.density, youngs_modulus=m.youngs_modulus, poisson_ratio=m.poisson_ratio, yield_stress=m.yield_stress)
    if isinstance(m, MpmElastic):
        return MpmMaterial("elastic", density=m.density, youngs_modulus=m.youngs_modulus, poisson_ratio=m.poisson_ratio)
    raise ValueError(f"body {body.name!r} has material {m.kind!r}, not an MPM material")


def mpm_body_spec(body: Body, grid: MpmGrid, mesh_loader=None) -> MpmBodySpec:
    """Particles at 8 per grid cell filling the body's shape, placed by its transform."""
    from sim.fem.spec import quat_to_matrix

    spacing, shape = grid.dx / 2, body.shape
    if shape.kind == "box":
        pts, vol = sampling.sample_box((0, 0, 0), np.asarray(shape.size) / 2, spacing)
    elif shape.kind == "sphere":
        pts, vol = sampling.sample_sphere((0, 0, 0), shape.radius, spacing)
    elif shape.kind == "cylinder":
        pts, vol = sampling.sample_cylinder((0, 0, 0), shape.radius, shape.height / 2, spacing)
    elif shape.kind in ("capsule", "mesh"):
        surface = mesh_loader(shape) if shape.kind == "mesh" and mesh_loader else None
        if shape.kind == "capsule":
            import trimesh

            surface = trimesh.creation.capsule(height=shape.length, radius=shape.radius, count=[16, 16])
        if surface is None:
            raise ValueError(f"body {body.name!r}: a mesh shape needs a mesh_loader to read {shape.path!r}")
        pts, vol = sampling.sample_mesh(surface, spacing)
    else:
        raise ValueError(f"body {body.name!r}: shape {shape.kind!r} cannot be an MPM body")
    R = quat_to_matrix(body.transform.rotation)
    return MpmBodySpec(body.name, pts @ R.T + np.asarray(body.transform.position), vol, mpm_material(body))


VOLUMETRIC_KINDS = ("fem_elastic", "mpm_elastic", "mpm_elastoplastic", "mpm_fluid")


def mesh_loader(scene_path):
    """A loader of a scene's mesh shapes as trimesh meshes, scaled (paths resolved like every asset)."""

    def load(shape):
        import trimesh

        from app.scene.paths import resolve_asset

        mesh = trimesh.load(resolve_asset(scene_path, shape.path), force="mesh")
        mesh.apply_transform(np.diag([*shape.scale, 1.0]))
        return mesh

    return load


PAD_SUBSTEP = 2.5e-5  # s: pads are mass-scaled (quasi-static pressing) to allow this substep
GRID_RESOLUTION = 64


def _pad_mount(gripper: Gripper, sensor: TactileSensor, pad: FemBodySpec) -> FemBodySpec:
    """The pad glued into its finger: gel surface on the finger's inner face, facing the
    other finger (the left finger sits at +x of the gripper frame, see sim.tools), its width
    along the finger's length (z; the fingertip at -z): centred, or ``sensor.tip_distance``
    from the tip to its nearer edge."""
    import dataclasses

    from scipy.spatial.transform import Rotation

    side = 1.0 if sensor.finger == "left" else -1.0
    top = float(pad.mesh.nodes[:, 2].max())
    half = 0.5 * gripper.finger_size[0]
    # pad +z (gel normal) -> -side * x of the finger; pad x along the finger's length (z)
    rot = Rotation.from_euler("y", -side * 90.0, degrees=True).as_quat()  # x, y, z, w
    along = 0.0  # the pad's centre along the finger (z of the finger box, centred at 0)
    if sensor.tip_distance is not None:
        along = -0.5 * gripper.finger_size[2] + sensor.tip_distance + 0.5 * sensor.size[0]
    position = (-side * (half - top), 0.0, along)
    return dataclasses.replace(pad, mount=f"{gripper.name}.{sensor.finger}", position=position,
                               rotation=(rot[3], rot[0], rot[1], rot[2]))


def _grid_around(bodies: list[MpmBodySpec]) -> MpmGrid:
    pts = np.concatenate([b.positions for b in bodies])
    lo, hi = pts.min(0), pts.max(0)
    side = 4.0 * float((hi - lo).max())
    centre = 0.5 * (lo + hi)
    origin = (centre[0] - side / 2, centre[1] - side / 2, lo[2] - 0.2 * side)
    return MpmGrid(tuple(float(o) for o in origin), side, GRID_RESOLUTION)


def volumetric_bodies(scene, dt: float, mesh_loader=None) -> tuple[tuple[FemBodySpec, ...], tuple[MpmBodySpec, ...]]:
    """Every tactile pad (mounted on its finger), FEM soft body and MPM body of a scene."""
    import dataclasses

    from sim.fem.solver import stable_dt
    from sim.fem.spec import DEFAULT_CONTACT

    fem, mpm = [], []
    for e in scene.entities:
        if isinstance(e, Gripper):
            for sensor in e.sensors:
                pad, config = pad_specs(sensor)
                base = stable_dt([pad], DEFAULT_CONTACT)
                scale = max(1.0, math.ceil((min(dt, PAD_SUBSTEP) / base) ** 2))
                pad = dataclasses.replace(pad, mass_scale=scale, tactile=config)
                fem.append(_pad_mount(e, sensor, pad))
        elif isinstance(e.material, FemElastic):
            fem.append(fem_body_spec(e, mesh_loader=mesh_loader))
        elif isinstance(e.material, (MpmElastic, MpmFluid)):
            mpm.append(e)
    if mpm:
        rough = [mpm_body_spec(e, MpmGrid(size=1.0, resolution=256), mesh_loader) for e in mpm]
        grid = _grid_around(rough)
        mpm = [dataclasses.replace(mpm_body_spec(e, grid, mesh_loader), grid=grid) for e in mpm]
    return tuple(fem), tuple(mpm)


def frame_parts(world, k: int, readings: dict | None = None) -> tuple[dict, dict]:
    """The volumetric part of a studio frame (app.services.frames) at step k: an EntityFrame
    per FEM body (every node in world coordinates, the surface triangles over them, fields
    ``contact_force`` (N, 3), ``pressure`` (N,) and ``displacement`` (N,): how far each node
    is from its rest place in the body's own, possibly moving, frame), per MPM body
    (particles, field ``velocity``) and per dynamic rigid body (no points, its world pose),
    and a TactileFrame per sensor pad (from ``readings``, the pads' readings at step k,
    where the caller has them already)."""
    from app.services.frames import EntityFrame, TactileFrame, frozen

    system = world.volumetric
    entities, tactile = {}, {}
    if system.fem is not None:
        x, f = system.state["fem_x"], system.node_forces()
        for b, spec in enumerate(system.fem_bodies):
            sl = slice(system.fem.offsets[b], system.fem.offsets[b + 1])
            area = np.maximum(system.fem.area_np[sl], 1e-12)
            R, p = system.pad_pose(b, k)
            displacement = np.linalg.norm((x[sl] - p) @ R - system.fem.rest_np[sl], axis=1)
            faces = spec.mesh.surface_faces.view()  # shared by every frame: the topology never changes
            faces.flags.writeable = False
            entities[spec.name] = EntityFrame(frozen(x[sl]), {"contact_force": frozen(f[sl]),
                                                              "pressure": frozen(np.linalg.norm(f[sl], axis=1) / area),
                                                              "displacement": frozen(displacement)}, faces=faces)
    if system.mpm is not None:
        for b, spec in enumerate(system.mpm_bodies):
            mask = system.mpm.body_of_np == b
            entities[spec.name] = EntityFrame(frozen(system.state["mpm_x"][mask]),
                                              {"velocity": frozen(system.state["mpm_v"][mask])})
    if system.rigid is not None:
        for spec, pose in zip(system.rigid_bodies, rigid_poses(system.state)):
            entities[spec.name] = EntityFrame(frozen(np.zeros((0, 3))), pose=frozen(pose))
    for name, r in (system.tactile(k) if readings is None else readings).items():
        sensor = system.sensors[name][1]
        px = (sensor.marker_rest_xy - sensor.lo) / sensor.pixel - 0.5  # marker rest positions in pixels
        disp = r.marker_displacement[:, :2].numpy() / sensor.pixel
        force = r.total_force.numpy()
        b = system.sensors[name][0]
        gel_area = system.fem.area_np[system.fem.offsets[b]:system.fem.offsets[b + 1]][sensor.gel_nodes]
        pressure = _pressure_map(sensor, r.node_forces.numpy(), gel_area)
        tactile[name] = TactileFrame(image=frozen(r.image.numpy()), markers=frozen(px), marker_displacement=frozen(disp),
                                     pressure=frozen(pressure), normal_force=float(abs(force[2])),
                                     shear_force=float(np.hypot(force[0], force[1])))
    return entities, tactile


def rigid_poses(state: dict) -> np.ndarray:
    """(B, 4, 4) world poses of the rigid bodies in a volumetric state (centre, quaternion)."""
    from sim.fem.spec import quat_to_matrix

    poses = np.tile(np.eye(4), (len(state["rigid_x"]), 1, 1))
    for pose, x, q in zip(poses, state["rigid_x"], state["rigid_q"]):
        pose[:3, :3], pose[:3, 3] = quat_to_matrix(q), x
    return poses


def _pressure_map(sensor, gel_forces: np.ndarray, gel_area: np.ndarray) -> np.ndarray:
    """Contact pressure (Pa) over a pad's tactile image: each gel node's inward normal
    force (pad frame, gel facing +z) over its area, interpolated linearly between the nodes'
    rest places; zero off the gel and wherever nothing touches it."""
    return sensor.gel_image(np.maximum(-gel_forces[:, 2], 0.0) / np.maximum(gel_area, 1e-12))


def write_frame(out, world, k: int, readings: dict) -> list[tuple[float, str]]:
    """Every volumetric body at step k as .vtp files in ``out``; (time, file name) rows
    (``readings``: the pads' readings at step k)."""
    from app.compile.frames import write_particles, write_vtp

    system, rows = world.volumetric, []
    t = k * world.spec.settings.dt
    entities, _ = frame_parts(world, k, readings)
    for b, spec in enumerate(system.fem_bodies):
        name = f"{spec.name}_{k:06d}.vtp"
        e = entities[spec.name]
        write_vtp(out / name, e.points, spec.mesh.surface_faces, dict(e.fields))
        rows.append((t, name))
    for spec in system.mpm_bodies:
        name = f"{spec.name}_{k:06d}.vtp"
        write_particles(out / name, entities[spec.name].points, dict(entities[spec.name].fields))
        rows.append((t, name))
    for spec in system.rigid_bodies:
        name = f"{spec.name}_{k:06d}.vtp"
        pose = entities[spec.name].pose
        mesh = spec.surface_mesh()  # the primitive's surface placed at the simulated pose
        write_vtp(out / name, mesh.vertices @ pose[:3, :3].T + pose[:3, 3], mesh.faces, {})
        rows.append((t, name))
    return rows


def tactile_summary(readings: dict) -> dict:
    """Per sensor pad, from its readings at a step (VolumetricSystem.tactile): total force
    and torque (pad frame), deepest indentation, largest marker displacement."""
    out = {}
    for name, r in readings.items():
        out[name] = {"force_n": r.total_force.tolist(), "torque_nm": r.torque.tolist(),
                     "max_depth_m": float(r.depth.max()), "max_marker_displacement_m": float(r.marker_displacement.norm(dim=-1).max())}
    return out
