"""Regenerate the built-in meshes under assets/meshes/ (run: .venv/bin/python scripts/make_assets.py).

All meshes are in metres, z up, written as OBJ. Objects rest on z = 0 (their origin is the
centre of their footprint) except the table, whose top surface is z = 0 so that scenes put
the world origin on the table top, and the cloth, a flat sheet centred at the origin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

OUT = Path(__file__).resolve().parents[1] / "assets" / "meshes"
SECTIONS = 32  # segments around round objects: smooth enough to look at, few triangles


def box(extents, center) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=extents, transform=trimesh.transformations.translation_matrix(center))


def table(top=(1.0, 0.8), thickness=0.04, height=0.75, leg=0.05) -> trimesh.Trimesh:
    w, d = top
    parts = [box((w, d, thickness), (0, 0, -thickness / 2))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            center = (sx * (w / 2 - leg), sy * (d / 2 - leg), -(height + thickness) / 2)
            parts.append(box((leg, leg, height - thickness), center))
    return trimesh.util.concatenate(parts)


def cloth(size=(0.3, 0.3), resolution=(16, 16)) -> trimesh.Trimesh:
    """A flat sheet in the x-y plane: a regular grid, two triangles per cell."""
    nx, ny = resolution
    xs, ys = np.linspace(-size[0] / 2, size[0] / 2, nx), np.linspace(-size[1] / 2, size[1] / 2, ny)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    vertices = np.column_stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)])
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1), indexing="ij")
    a = (i * ny + j).ravel()
    b, c, d = a + ny, a + ny + 1, a + 1
    faces = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
    return trimesh.Trimesh(vertices, faces, process=False)


def soft_block(size=0.05, subdivisions=2) -> trimesh.Trimesh:
    """A cube with evenly subdivided faces, so a deformation shows on its surface."""
    mesh = box((size, size, size), (0, 0, size / 2))
    for _ in range(subdivisions):
        mesh = mesh.subdivide()
    return mesh


def revolve(profile) -> trimesh.Trimesh:
    """A closed solid of revolution about z from a (radius, z) outline."""
    return trimesh.creation.revolve(np.asarray(profile, dtype=float), sections=SECTIONS)


def mug(radius=0.04, height=0.1, wall=0.005) -> trimesh.Trimesh:
    """A cup: a hollow cylinder with a floor (the handle is left out: simpler contact)."""
    r, h, t = radius, height, wall
    return revolve([(0, 0), (r, 0), (r, h), (r - t, h), (r - t, t), (0, t)])


def bowl(radius=0.08, height=0.05, wall=0.005, foot=0.03) -> trimesh.Trimesh:
    """A bowl: a spherical-cap-like shell on a flat foot, open at the top."""
    angles = np.linspace(0, np.pi / 2, 12)
    outer = [(foot + (radius - foot) * np.sin(a), height * (1 - np.cos(a))) for a in angles]
    inner = [(max(x - wall, 0.0), max(z, wall) + (wall if i == 0 else 0)) for i, (x, z) in enumerate(outer)]
    outline = [(0, 0)] + outer + inner[::-1] + [(0, wall)]
    return revolve(outline)


def wedge(length=0.1, width=0.06, height=0.04) -> trimesh.Trimesh:
    """A triangular prism: a ramp rising along +x."""
    l, w, h = length / 2, width / 2, height
    vertices = np.array([[-l, -w, 0], [l, -w, 0], [l, -w, h], [-l, w, 0], [l, w, 0], [l, w, h]])
    faces = [[0, 1, 2], [3, 5, 4], [0, 4, 1], [0, 3, 4], [1, 5, 2], [1, 4, 5], [0, 5, 3], [0, 2, 5]]
    return trimesh.Trimesh(vertices, faces)


def gripper_palm(width=0.12, depth=0.04, height=0.03) -> trimesh.Trimesh:
    """The gripper body; fingers hang below it (z < 0), the mount is on top (z = height)."""
    return box((width, depth, height), (0, 0, height / 2))


def gripper_finger(size=(0.02, 0.01, 0.05)) -> trimesh.Trimesh:
    """One finger, hanging down from z = 0; its pad face is at x = -size/2 (towards the other)."""
    return box(size, (0, 0, -size[2] / 2))


def tactile_pad(size=(0.02, 0.025), thickness=0.004, dome_radius=None) -> trimesh.Trimesh:
    """An elastomer pad lying on z = 0, flat or with a spherical dome on top."""
    if dome_radius is None:
        return box((size[0], size[1], thickness), (0, 0, thickness / 2))
    w = min(size) / 2
    sag = dome_radius - np.sqrt(dome_radius**2 - w**2)
    angles = np.linspace(0, np.arcsin(w / dome_radius), 10)
    cap = [(dome_radius * np.sin(a), thickness + sag - dome_radius * (1 - np.cos(a))) for a in angles]
    return revolve([(0, 0), (w, 0)] + cap[::-1])


def stone(size=(0.10, 0.07, 0.05)) -> trimesh.Trimesh:
    """A lumpy ellipsoid (an icosphere of 320 faces with a smooth radial bump field): a
    closed mesh with no primitive twin, for the mesh-collider scene."""
    sphere = trimesh.creation.icosphere(subdivisions=2)
    u = sphere.vertices
    lump = 1.0 + 0.08 * np.sin(3.0 * u[:, 0] + 1.0) * np.sin(2.0 * u[:, 1]) + 0.05 * np.cos(4.0 * u[:, 2])
    v = u * lump[:, None] * (np.array(size) / 2.0)
    v[:, 2] -= v[:, 2].min()
    return trimesh.Trimesh(v, sphere.faces, process=False)


MESHES = {
    "table.obj": table,
    "cloth.obj": cloth,
    "soft_block.obj": soft_block,
    "mug.obj": mug,
    "bowl.obj": bowl,
    "wedge.obj": wedge,
    "gripper_palm.obj": gripper_palm,
    "gripper_finger.obj": gripper_finger,
    "tactile_pad_flat.obj": tactile_pad,
    "tactile_pad_dome.obj": lambda: tactile_pad(dome_radius=0.03),
    "stone.obj": stone,
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in MESHES.items():
        mesh = make()
        (OUT / name).write_text(trimesh.exchange.obj.export_obj(mesh, include_normals=False, digits=6))
        print(f"{name}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, watertight={mesh.is_watertight}")


if __name__ == "__main__":
    main()
