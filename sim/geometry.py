"""Triangle-mesh helpers for shells: generated sheets, mesh files, hinges, rest quantities."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def sheet(nx: int, ny: int, width: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    """A flat nx x ny vertex grid in the local x-y plane, centred at the origin.

    Vertex (i, j) (i along x) has id j * nx + i. Quads are split along alternating diagonals
    so the sheet has no preferred shear direction."""
    if nx < 2 or ny < 2:
        raise ValueError(f"a sheet needs at least 2 x 2 vertices, got {nx} x {ny}")
    if not (width > 0 and length > 0):
        raise ValueError(f"sheet size must be positive, got {width} x {length} m")
    xs = np.linspace(-width / 2, width / 2, nx)
    ys = np.linspace(-length / 2, length / 2, ny)
    gx, gy = np.meshgrid(xs, ys)
    verts = np.stack([gx.ravel(), gy.ravel(), np.zeros(nx * ny)], axis=1)
    i, j = np.meshgrid(np.arange(nx - 1), np.arange(ny - 1))
    i, j = i.ravel(), j.ravel()
    a, b, c, d = j * nx + i, j * nx + i + 1, (j + 1) * nx + i, (j + 1) * nx + i + 1
    flip = (i + j) % 2 == 1
    t1 = np.where(flip[:, None], np.stack([a, b, c], 1), np.stack([a, b, d], 1))
    t2 = np.where(flip[:, None], np.stack([b, d, c], 1), np.stack([a, d, c], 1))
    return verts, np.concatenate([t1, t2]).astype(np.int32)


def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of a mesh file (.obj, .stl, .ply, ...), via trimesh."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh file {path} does not exist")
    mesh = trimesh.load(path, force="mesh", process=True)
    if len(mesh.faces) == 0:
        raise ValueError(f"mesh file {path} holds no triangles")
    return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int32)


def _sorted_edges(tris: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every triangle's three edges as (owning triangle, corner opposite the edge), and the
    edges' undirected keys, sorted by key (stably, edge 0 of every triangle first), so that
    the triangles sharing an edge are adjacent."""
    T = len(tris)
    owner, opposite = np.tile(np.arange(T), 3), np.repeat([2, 0, 1], T)
    a, b = tris[owner, (opposite + 1) % 3], tris[owner, (opposite + 2) % 3]
    key = np.minimum(a, b) * (tris.max() + 1) + np.maximum(a, b)
    order = np.argsort(key, kind="stable")
    return owner[order], opposite[order], key[order]


def hinges(triangles: np.ndarray) -> np.ndarray:
    """(H, 4) interior edges as (edge start, edge end, wing of the first triangle, other wing).

    The first triangle lists the edge as start -> end in its own winding order, so both
    wings' normals agree on a consistently oriented mesh."""
    tris = np.asarray(triangles, np.int64)
    owner, opposite, key = _sorted_edges(tris)
    same = np.nonzero(key[1:] == key[:-1])[0]
    o1, c1, o2, c2 = owner[same], opposite[same], owner[same + 1], opposite[same + 1]
    return np.stack([tris[o1, (c1 + 1) % 3], tris[o1, (c1 + 2) % 3], tris[o1, c1], tris[o2, c2]], axis=1).astype(np.int32)


def edge_neighbours(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle and corner i, the triangle across the edge opposite corner i and that
    triangle's corner off the shared edge, both (T, 3); -1 where no single triangle shares
    the edge (a boundary, or an edge of three or more)."""
    tris = np.asarray(triangles, np.int64)
    T = len(tris)
    nb, far = np.full((T, 3), -1, np.int64), np.full((T, 3), -1, np.int64)
    if T == 0:
        return nb, far
    owner, opposite, key = _sorted_edges(tris)
    _, first, count = np.unique(key, return_index=True, return_counts=True)
    pair = first[count == 2]
    for mine, theirs in ((pair, pair + 1), (pair + 1, pair)):
        nb[owner[mine], opposite[mine]] = owner[theirs]
        far[owner[mine], opposite[mine]] = tris[owner[theirs], opposite[theirs]]
    return nb, far


def dihedral_angles(x: np.ndarray, hinge: np.ndarray) -> np.ndarray:
    """Signed fold angle of each hinge (0 when flat), the same formula as the shell kernels."""
    x0, x1, x2, x3 = (x[hinge[:, k]] for k in range(4))
    e = x1 - x0
    na = np.cross(e, x2 - x0)
    nb = np.cross(x3 - x0, e)
    e_hat = e / np.linalg.norm(e, axis=1, keepdims=True)
    return np.arctan2(np.einsum("ij,ij->i", np.cross(na, nb), e_hat), np.einsum("ij,ij->i", na, nb))


def triangle_areas(x: np.ndarray, tris: np.ndarray) -> np.ndarray:
    return 0.5 * np.linalg.norm(np.cross(x[tris[:, 1]] - x[tris[:, 0]], x[tris[:, 2]] - x[tris[:, 0]]), axis=1)


def rest_frames(x: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(T, 2, 2) inverse of each triangle's rest edge matrix in its own 2-D frame."""
    e1 = x[tris[:, 1]] - x[tris[:, 0]]
    e2 = x[tris[:, 2]] - x[tris[:, 0]]
    u = e1 / np.linalg.norm(e1, axis=1, keepdims=True)
    n = np.cross(e1, e2)
    v = np.cross(n / np.linalg.norm(n, axis=1, keepdims=True), u)
    dm = np.empty((len(tris), 2, 2))
    dm[:, 0, 0] = np.einsum("ij,ij->i", e1, u)
    dm[:, 1, 0] = 0.0
    dm[:, 0, 1] = np.einsum("ij,ij->i", e2, u)
    dm[:, 1, 1] = np.einsum("ij,ij->i", e2, v)
    if np.any(np.abs(dm[:, 1, 1]) < 1e-14):
        bad = int(np.argmin(np.abs(dm[:, 1, 1])))
        raise ValueError(f"triangle {bad} is degenerate (zero area) in the rest shape")
    return np.linalg.inv(dm)


def transform_points(points: np.ndarray, position, rotation) -> np.ndarray:
    """Points carried by the rigid pose (position, unit quaternion w, x, y, z)."""
    return points @ quat_to_matrix(rotation).T + np.asarray(position, np.float64)


def quat_to_matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
