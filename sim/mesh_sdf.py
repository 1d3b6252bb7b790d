"""Signed distance grids baked from closed triangle meshes (numpy + scipy, no Taichi), for
mesh colliders: ``bake`` samples the exact signed distance at the nodes of a regular grid
around the mesh; sim.sdf smooths it with a quadratic B-spline at simulation time.

Distance: the exact closest point on the nearest of a few candidate triangles, found
through a k-d tree of points sampled over the surface at half a cell, so the cost grows
with grid nodes + surface samples, never with their product. Sign: the angle-weighted
pseudonormal of the closest feature (face, edge or vertex; Baerentzen and Aanaes 2005),
exact for a closed, consistently wound surface, which ``check_closed`` demands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANDIDATES = 8  # nearest surface samples whose triangles are measured exactly, per node


@dataclass(frozen=True, eq=False)
class MeshSdf:
    """Signed distances (negative inside) at the nodes ``origin + cell * (i, j, k)`` of a
    grid of ``values.shape`` nodes, in the mesh's own frame."""

    origin: tuple[float, float, float]
    cell: float
    values: np.ndarray  # (nx, ny, nz)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.values.shape)

    def key(self) -> bytes:
        """Identifies the grid's content (equal meshes baked alike share one upload)."""
        import hashlib

        h = hashlib.sha1(np.asarray([*self.origin, self.cell], np.float64).tobytes())
        h.update(np.asarray(self.values.shape, np.int64).tobytes())
        h.update(np.ascontiguousarray(self.values, np.float64).tobytes())
        return h.digest()

    def interpolate(self, points: np.ndarray) -> np.ndarray:
        """The grid's quadratic B-spline at points at least half a cell inside its border
        (what sim.sdf computes), in numpy."""
        g = (np.asarray(points, np.float64) - self.origin) / self.cell
        base = np.clip(np.floor(g - 0.5).astype(int), 0, np.asarray(self.shape) - 3)
        f = g - base
        w = [0.5 * (1.5 - f) ** 2, 0.75 - (f - 1.0) ** 2, 0.5 * (f - 0.5) ** 2]
        out = np.zeros(len(g))
        for a, b, c in np.ndindex(3, 3, 3):
            out += w[a][:, 0] * w[b][:, 1] * w[c][:, 2] * self.values[base[:, 0] + a, base[:, 1] + b, base[:, 2] + c]
        return out


def check_closed(vertices: np.ndarray, faces: np.ndarray, name: str = "mesh") -> None:
    """Raise ValueError naming what keeps the surface from bounding a volume: faces out of
    range, holes (edges with one face), non-manifold edges, or inconsistent winding."""
    v, f = np.asarray(vertices), np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or not len(f):
        raise ValueError(f"{name}: needs (V, 3) vertices and (F, 3) triangles, got {v.shape} and {f.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name}: has NaN or infinite vertex coordinates")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"{name}: a face refers to vertex {int(f.max())}, beyond its {len(v)} vertices")
    directed = f[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    why = "a signed distance (inside vs outside) needs a closed surface; repair it (e.g. trimesh's fill_holes) or export it closed"
    if (counts == 1).any():
        e = undirected[counts == 1]
        raise ValueError(f"{name}: is not watertight: {len(e)} edges border a hole (e.g. between vertices "
                         f"{int(e[0, 0])} and {int(e[0, 1])}); {why}")
    if (counts > 2).any():
        e = undirected[counts > 2]
        raise ValueError(f"{name}: {len(e)} edges are shared by more than two faces (e.g. between vertices "
                         f"{int(e[0, 0])} and {int(e[0, 1])}); {why}")
    if len(np.unique(directed, axis=0)) != len(directed):
        raise ValueError(f"{name}: faces are wound inconsistently (neighbours run a shared edge the same way); "
                         "orient them consistently (e.g. trimesh's fix_normals)")


def _closest_on_triangles(p, a, b, c):
    """Closest points of p on triangles abc (all (M, 3)): barycentric weights (M, 3)."""
    dot = lambda x, y: np.einsum("ij,ij->i", x, y)  # noqa: E731
    ab, ac, ap, bp, cp = b - a, c - a, p - a, p - b, p - c
    d1, d2, d3, d4, d5, d6 = dot(ab, ap), dot(ac, ap), dot(ab, bp), dot(ac, bp), dot(ab, cp), dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    safe = lambda x: np.where(np.abs(x) > 1e-300, x, 1e-300)  # noqa: E731
    total = safe(va + vb + vc)
    bary = np.stack([va / total, vb / total, vc / total], axis=1)  # inside the face
    t_bc = (d4 - d3) / safe((d4 - d3) + (d5 - d6))
    t_ac = d2 / safe(d2 - d6)
    t_ab = d1 / safe(d1 - d3)
    one, zero = np.ones_like(d1), np.zeros_like(d1)
    # Ericson's Voronoi regions, assigned from the last to the first so the first that holds wins
    regions = [
        (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), np.stack([zero, 1 - t_bc, t_bc], 1),
        (vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - t_ac, zero, t_ac], 1),
        (d6 >= 0) & (d5 <= d6), np.stack([zero, zero, one], 1),
        (vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - t_ab, t_ab, zero], 1),
        (d3 >= 0) & (d4 <= d3), np.stack([zero, one, zero], 1),
        (d1 <= 0) & (d2 <= 0), np.stack([one, zero, zero], 1),
    ]
    for where, value in zip(regions[::2], regions[1::2]):
        bary = np.where(where[:, None], value, bary)
    return bary


def _pseudonormals(v: np.ndarray, f: np.ndarray):
    """Face normals (F, 3), edge pseudonormals per face and local edge (F, 3, 3: edge k lies
    opposite vertex k) and angle-weighted vertex pseudonormals (V, 3)."""
    e1, e2 = v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
    n = np.cross(e1, e2)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    vertex = np.zeros_like(v)
    for k in range(3):
        u = v[f[:, (k + 1) % 3]] - v[f[:, k]]
        w = v[f[:, (k + 2) % 3]] - v[f[:, k]]
        cos = np.einsum("ij,ij->i", u, w) / np.maximum(np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1), 1e-300)
        np.add.at(vertex, f[:, k], np.arccos(np.clip(cos, -1, 1))[:, None] * n)
    edges = np.sort(np.stack([f[:, [1, 2]], f[:, [2, 0]], f[:, [0, 1]]], axis=1), axis=2).reshape(-1, 2)
    _, inverse = np.unique(edges, axis=0, return_inverse=True)
    summed = np.zeros((inverse.max() + 1, 3))
    np.add.at(summed, inverse.ravel(), np.repeat(n, 3, axis=0))
    return n, summed[inverse.ravel()].reshape(-1, 3, 3), vertex


def _surface_samples(tri: np.ndarray, spacing: float):
    """Points on every triangle (F, 3, 3) no farther than ``spacing`` apart along its edges,
    with the triangle each lies on."""
    longest = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max(axis=1)
    counts = np.maximum(np.ceil(longest / spacing).astype(int), 1)
    points, owner = [], []
    for m in np.unique(counts):  # one barycentric lattice per subdivision count
        i, j = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
        keep = i + j <= m
        w = np.stack([m - i[keep] - j[keep], i[keep], j[keep]], axis=1) / m  # (L, 3)
        ids = np.flatnonzero(counts == m)
        points.append(np.einsum("lk,fkd->fld", w, tri[ids]).reshape(-1, 3))
        owner.append(np.repeat(ids, len(w)))
    return np.concatenate(points), np.concatenate(owner)


def bake(vertices, faces, cell: float, padding: float = 0.0, name: str = "mesh", max_nodes: int = 2_000_000) -> MeshSdf:
    """The signed distance of a closed mesh on a grid of spacing ``cell`` covering its
    bounds grown by ``padding`` plus two cells on every side. An inward-wound mesh is
    turned outwards first."""
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    check_closed(v, f, name)
    if not cell > 0:
        raise ValueError(f"{name}: the SDF cell size must be positive, got {cell}")
    tri = v[f]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    if abs(volume) < 1e-300:
        raise ValueError(f"{name}: encloses no volume (a flat or degenerate surface)")
    if volume < 0:
        f, tri = f[:, ::-1], tri[:, ::-1]
    margin = padding + 2.0 * cell
    lo, hi = v.min(0) - margin, v.max(0) + margin
    shape = tuple(int(s) for s in np.ceil((hi - lo) / cell).astype(int) + 1)
    if np.prod(shape) > max_nodes:
        raise ValueError(f"{name}: an SDF cell of {cell:.3g} m gives {np.prod(shape)} grid nodes (over {max_nodes}); "
                         "use a coarser cell")
    axes = [lo[a] + cell * np.arange(shape[a]) for a in range(3)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)

    samples, owner = _surface_samples(tri, 0.5 * cell)
    k = min(CANDIDATES, len(samples))
    _, near = cKDTree(samples).query(nodes, k=k)
    near = near.reshape(len(nodes), k)
    best_d = np.full(len(nodes), np.inf)
    best_t = np.zeros(len(nodes), np.int64)
    best_w = np.zeros((len(nodes), 3))
    for j in range(k):
        t = owner[near[:, j]]
        w = _closest_on_triangles(nodes, tri[t, 0], tri[t, 1], tri[t, 2])
        q = np.einsum("ik,ikd->id", w, tri[t])
        d = np.linalg.norm(nodes - q, axis=1)
        better = d < best_d
        best_d[better], best_t[better], best_w[better] = d[better], t[better], w[better]

    face_n, edge_n, vertex_n = _pseudonormals(v, f)
    zero = best_w <= 1e-9
    normal = face_n[best_t]
    on_edge = zero.sum(1) == 1
    normal[on_edge] = edge_n[best_t[on_edge], np.argmax(zero[on_edge], axis=1)]
    on_vertex = zero.sum(1) == 2
    normal[on_vertex] = vertex_n[f[best_t[on_vertex], np.argmax(~zero[on_vertex], axis=1)]]
    closest = np.einsum("ik,ikd->id", best_w, tri[best_t])
    sign = np.where(np.einsum("ij,ij->i", nodes - closest, normal) < 0, -1.0, 1.0)
    return MeshSdf(tuple(float(x) for x in lo), float(cell), (sign * best_d).reshape(shape))
