"""Particle sampling of primitives and mesh volumes on a jittered lattice."""

from __future__ import annotations

import numpy as np

from sim.fem.mesh import winding_number


def _lattice(lo: np.ndarray, hi: np.ndarray, spacing: float, jitter: float, seed: int) -> tuple[np.ndarray, float]:
    """Cell centres of the box [lo, hi] split into cells of about ``spacing``; the exact
    cell volume (the spacing is adjusted to fit the box)."""
    counts = np.maximum(np.round((hi - lo) / spacing).astype(int), 1)
    step = (hi - lo) / counts
    axes = [lo[a] + (np.arange(counts[a]) + 0.5) * step[a] for a in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    if jitter:
        pts += np.random.default_rng(seed).uniform(-0.5, 0.5, pts.shape) * jitter * step
    return pts, float(np.prod(step))


def sample_box(centre, half_extents, spacing: float, jitter: float = 0.0, seed: int = 0):
    """Particles filling a box; returns (positions, volume per particle)."""
    c, h = np.asarray(centre, float), np.asarray(half_extents, float)
    return _lattice(c - h, c + h, spacing, jitter, seed)


def sample_sphere(centre, radius: float, spacing: float, jitter: float = 0.0, seed: int = 0):
    c = np.asarray(centre, float)
    pts, vol = _lattice(c - radius, c + radius, spacing, jitter, seed)
    return pts[np.linalg.norm(pts - c, axis=1) <= radius], vol


def sample_cylinder(centre, radius: float, half_height: float, spacing: float, jitter: float = 0.0, seed: int = 0):
    """A cylinder along z."""
    c = np.asarray(centre, float)
    h = np.array([radius, radius, half_height])
    pts, vol = _lattice(c - h, c + h, spacing, jitter, seed)
    return pts[np.hypot(pts[:, 0] - c[0], pts[:, 1] - c[1]) <= radius], vol


def sample_mesh(mesh, spacing: float, jitter: float = 0.0, seed: int = 0):
    """Particles inside a watertight trimesh.Trimesh (generalized winding number > 1/2)."""
    if not mesh.is_watertight:
        raise ValueError("sampling a mesh volume needs a watertight mesh (it has holes)")
    lo, hi = mesh.bounds
    pts, vol = _lattice(np.asarray(lo), np.asarray(hi), spacing, jitter, seed)
    tri = np.asarray(mesh.vertices)[np.asarray(mesh.faces)]
    pts = pts[winding_number(tri, pts) > 0.5]
    if len(pts) == 0:
        raise ValueError(f"no particle of spacing {spacing} m falls inside the mesh; use a finer spacing")
    return pts, vol
