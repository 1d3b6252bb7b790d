"""Tetrahedral meshes: a flat gel pad (structured hex->tet), a dome pad (rings extruded in
shell layers, prisms->tets), a box soft body, and voxel tetrahedralization of a trimesh.

Every mesh is in its own frame. For pads the gel (contact) surface faces +z and the back
layer, driven by the gripper finger, is the set ``back``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Kuhn subdivision of a cube into 6 tets around its main diagonal (corner offsets as bits
# x=1, y=2, z=4). Neighbouring cubes split their shared faces the same way, so it conforms.
_KUHN = np.array(
    [[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 6, 7]]
)


@dataclass
class TetMesh:
    nodes: np.ndarray  # (N, 3) float64, metres
    tets: np.ndarray  # (M, 4) int32, positive volume
    gel_faces: np.ndarray  # (K, 3) int32, contact surface triangles, outward normal
    back: np.ndarray  # (B,) int32, nodes driven by the body's pose (may be empty)
    surface_faces: np.ndarray = field(default=None)  # every boundary triangle, outward

    def __post_init__(self) -> None:
        self.nodes = np.ascontiguousarray(self.nodes, dtype=np.float64)
        self.tets = _orient(self.nodes, np.asarray(self.tets, dtype=np.int32))
        if self.surface_faces is None:
            self.surface_faces = boundary_faces(self.nodes, self.tets)
        self.gel_faces = np.asarray(self.gel_faces, dtype=np.int32).reshape(-1, 3)
        self.back = np.asarray(self.back, dtype=np.int32).reshape(-1)
        vol = tet_volumes(self.nodes, self.tets)
        if vol.min() <= 0:
            raise ValueError(f"mesh has {(vol <= 0).sum()} degenerate tetrahedra")

    @property
    def surface_nodes(self) -> np.ndarray:
        return np.unique(self.surface_faces)

    @property
    def gel_nodes(self) -> np.ndarray:
        return np.unique(self.gel_faces)


def tet_volumes(nodes: np.ndarray, tets: np.ndarray) -> np.ndarray:
    a, b, c, d = (nodes[tets[:, k]] for k in range(4))
    return np.einsum("ij,ij->i", np.cross(b - a, c - a), d - a) / 6.0


def _orient(nodes: np.ndarray, tets: np.ndarray) -> np.ndarray:
    tets = tets.copy()
    flip = tet_volumes(nodes, tets) < 0
    tets[flip, 2], tets[flip, 3] = tets[flip, 3].copy(), tets[flip, 2].copy()
    return tets


def boundary_faces(nodes: np.ndarray, tets: np.ndarray) -> np.ndarray:
    """Triangles used by exactly one tet, wound so their normal points out of it."""
    local = np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]])  # outward for +volume
    faces = tets[:, local].reshape(-1, 3)
    key = np.sort(faces, axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return faces[counts[inverse.reshape(-1)] == 1].astype(np.int32)


def _graded(n: int, grading: float, centred: bool) -> np.ndarray:
    """n+1 coordinates in [-1, 1] (centred) or [0, 1], finer near 0 (centred) or near 1."""
    u = np.linspace(-1.0, 1.0, n + 1) if centred else np.linspace(0.0, 1.0, n + 1)
    if centred:  # spacing near the centre is (1 - g) of uniform
        return u * (1.0 - grading) + grading * u**3
    return u * (1.0 + grading) - grading * u**2  # spacing near the top is (1 - g)


def _structured_tets(shape: tuple[int, int, int]) -> np.ndarray:
    nx, ny, nz = shape  # cells per axis; node (i, j, k) has index (i*(ny+1) + j)*(nz+1) + k
    i, j, k = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
    base = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)
    bits = np.array([[(c >> 0) & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)])
    corner = base[:, None, :] + bits[None, :, :]  # (cells, 8, 3)
    idx = (corner[..., 0] * (ny + 1) + corner[..., 1]) * (nz + 1) + corner[..., 2]
    return idx[:, _KUHN].reshape(-1, 4)


def flat_pad(
    size: tuple[float, float, float] = (0.018, 0.024, 0.004),
    cells: tuple[int, int, int] = (12, 16, 4),
    grading: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> TetMesh:
    """A rectangular gel pad (GelSight-Mini class): x-y footprint ``size[:2]``, thickness
    ``size[2]``; back at z=0, gel surface at z=thickness. ``grading`` refines the centre in
    x, y and the gel side in z (0 = uniform, < 1)."""
    if any(c < 1 for c in cells) or any(s <= 0 for s in size):
        raise ValueError(f"flat pad needs positive size and cells, got size={size} cells={cells}")
    if any(not 0.0 <= g < 1.0 for g in grading):
        raise ValueError(f"grading must lie in [0, 1), got {grading}")
    xs = 0.5 * size[0] * _graded(cells[0], grading[0], True)
    ys = 0.5 * size[1] * _graded(cells[1], grading[1], True)
    zs = size[2] * _graded(cells[2], grading[2], False)
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    nodes = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)
    tets = _structured_tets(cells)
    k = np.arange(len(nodes)) % (cells[2] + 1)
    faces = boundary_faces(nodes, _orient(nodes, tets))
    gel = faces[np.all(k[faces] == cells[2], axis=1)]
    return TetMesh(nodes, tets, gel, np.flatnonzero(k == 0), faces)


def box_body(size: tuple[float, float, float], cells: tuple[int, int, int]) -> TetMesh:
    """A free soft box centred at the origin (soft block, sponge): no driven nodes, the
    whole boundary is contact surface."""
    mesh = flat_pad(size, cells)
    nodes = mesh.nodes - np.array([0.0, 0.0, 0.5 * size[2]])
    return TetMesh(nodes, mesh.tets, mesh.surface_faces, [], mesh.surface_faces)


def _disk_points(rings: int) -> tuple[np.ndarray, np.ndarray]:
    """Points on the unit disk in concentric rings (6k points on ring k), their radii."""
    pts, rad = [np.zeros(2)], [0.0]
    for k in range(1, rings + 1):
        phi = 2 * math.pi * (np.arange(6 * k) + 0.5 * (k % 2)) / (6 * k)
        pts += list(np.stack([np.cos(phi), np.sin(phi)], axis=1) * (k / rings))
        rad += [k / rings] * (6 * k)
    return np.array(pts), np.array(rad)


def dome_pad(
    radius: float = 0.012,
    thickness: float = 0.004,
    cap_angle_deg: float = 75.0,
    rings: int = 11,
    layers: int = 4,
) -> TetMesh:
    """A dome pad (DiffTactile class): a spherical cap of outer ``radius`` and half-angle
    ``cap_angle_deg``, ``thickness`` thick, meshed as a ring triangulation of the cap
    extruded through ``layers`` shell layers; each prism splits into 3 tets with diagonals
    chosen by global node order so neighbours conform. The outer rim is at z=0, the apex
    on +z; the inner (back) layer is driven by the finger. Defaults give 2,000 nodes."""
    from scipy.spatial import Delaunay

    if not (0 < thickness < radius) or not (0 < cap_angle_deg <= 90) or rings < 1 or layers < 1:
        raise ValueError(
            f"dome pad needs 0 < thickness < radius, 0 < cap angle <= 90 deg, rings, layers >= 1; "
            f"got radius={radius}, thickness={thickness}, cap={cap_angle_deg}, rings={rings}, layers={layers}"
        )
    disk, rho = _disk_points(rings)
    tri = Delaunay(disk).simplices
    theta = rho * math.radians(cap_angle_deg)
    phi = np.arctan2(disk[:, 1], disk[:, 0])
    unit = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
    centre = np.array([0.0, 0.0, -radius * math.cos(math.radians(cap_angle_deg))])
    p = len(disk)
    radii = np.linspace(radius - thickness, radius, layers + 1)
    nodes = np.concatenate([centre + r * unit for r in radii])
    tets = []
    tri = np.sort(tri, axis=1)  # v0 < v1 < v2 in every layer, so the rule below conforms
    for layer in range(layers):
        a, b, c = (tri[:, k] + layer * p for k in range(3))
        at, bt, ct = a + p, b + p, c + p
        tets += [np.stack(t, axis=1) for t in ((a, b, c, ct), (a, b, bt, ct), (a, at, bt, ct))]
    tets = np.concatenate(tets)
    nodes_o = nodes
    faces = boundary_faces(nodes_o, _orient(nodes_o, tets))
    gel = faces[np.all(faces >= layers * p, axis=1)]
    return TetMesh(nodes, tets, gel, np.arange(p), faces)


def voxel_tetrahedralize(mesh, pitch: float) -> TetMesh:
    """Tetrahedralize a watertight trimesh.Trimesh on a voxel lattice of spacing ``pitch``:
    cells whose centre lies inside become 6 Kuhn tets; the boundary is stair-stepped."""
    if not mesh.is_watertight:
        raise ValueError("voxel tetrahedralization needs a watertight mesh (it has holes)")
    lo, hi = mesh.bounds
    cells = np.maximum(np.ceil((hi - lo) / pitch).astype(int), 1)
    if np.prod(cells) > 4_000_000:
        raise ValueError(f"pitch {pitch} m gives {np.prod(cells)} voxels; use a coarser pitch")
    centres = np.stack(
        np.meshgrid(*[lo[a] + pitch * (np.arange(cells[a]) + 0.5) for a in range(3)], indexing="ij"), -1
    ).reshape(-1, 3)
    inside = winding_number(np.asarray(mesh.vertices)[np.asarray(mesh.faces)], centres) > 0.5
    if not inside.any():
        raise ValueError(f"no voxel of pitch {pitch} m lies inside the mesh; use a finer pitch")
    all_tets = _structured_tets(tuple(cells)).reshape(-1, 6, 4)[inside].reshape(-1, 4)
    used, tets = np.unique(all_tets, return_inverse=True)
    tets = tets.reshape(-1, 4)
    i, rem = np.divmod(used, (cells[1] + 1) * (cells[2] + 1))
    j, k = np.divmod(rem, cells[2] + 1)
    nodes = lo + pitch * np.stack([i, j, k], axis=1)
    faces = boundary_faces(nodes, _orient(nodes, tets))
    return TetMesh(nodes, tets, faces, [], faces)


def winding_number(triangles: np.ndarray, points: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Generalized winding number of closed, outward-wound ``triangles`` (F, 3, 3) at
    ``points`` (P, 3): ~1 inside, ~0 outside (van Oosterom-Strackee solid angles)."""
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        d = triangles[None, :, :, :] - points[start : start + chunk, None, None, :]
        a, b, c = d[:, :, 0], d[:, :, 1], d[:, :, 2]
        la, lb, lc = (np.linalg.norm(v, axis=-1) for v in (a, b, c))
        det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
        den = (
            la * lb * lc
            + np.einsum("pfi,pfi->pf", a, b) * lc
            + np.einsum("pfi,pfi->pf", b, c) * la
            + np.einsum("pfi,pfi->pf", c, a) * lb
        )
        out[start : start + chunk] = np.arctan2(det, den).sum(axis=1) / (2 * np.pi)
    return out
