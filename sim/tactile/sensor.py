"""Tactile readings of one FEM pad, in torch so they are differentiable w.r.t. the state.

Everything is expressed in the pad frame (gel surface facing +z). Markers and depth-map
pixels are embedded once in the gel surface triangles by barycentric coordinates of their
x-y position in the rest shape; each reading interpolates the deformed nodes with them.
The image is a GelSight-style photometric render: surface normals from the height map,
shaded by coloured directional lights, markers darkened in as Gaussian dots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from sim.fem.mesh import TetMesh


@dataclass(frozen=True)
class Light:
    direction: tuple[float, float, float]  # towards the light, pad frame
    color: tuple[float, float, float]  # RGB in [0, 1]


# Three coloured lights at 120 degrees grazing the gel, as in GelSight sensors.
DEFAULT_LIGHTS = (
    Light((1.0, 0.0, 0.6), (0.9, 0.25, 0.2)),
    Light((-0.5, 0.866, 0.6), (0.2, 0.85, 0.3)),
    Light((-0.5, -0.866, 0.6), (0.25, 0.3, 0.9)),
)


@dataclass(frozen=True)
class TactileConfig:
    image_size: tuple[int, int] = (240, 320)  # (height = rows along y, width = columns along x)
    markers: tuple[int, int] | int = (7, 9)  # grid (nx, ny) on a flat pad, or a count on a disk
    marker_margin: float = 0.15  # fraction of the footprint kept free of markers at each edge
    marker_radius_px: float = 2.5
    marker_darkness: float = 0.8
    ambient: tuple[float, float, float] = (0.25, 0.25, 0.25)
    lights: tuple[Light, ...] = DEFAULT_LIGHTS
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if min(self.image_size) < 2:
            raise ValueError(f"tactile image_size must be at least 2x2 pixels, got {self.image_size}")
        count = np.prod(self.markers) if isinstance(self.markers, tuple) else self.markers
        if count < 1:
            raise ValueError(f"tactile markers must be a positive count or grid, got {self.markers}")
        if not 0 <= self.marker_margin < 0.5:
            raise ValueError(f"marker_margin must lie in [0, 0.5), got {self.marker_margin}")


@dataclass
class TactileFrame:
    markers: torch.Tensor  # (..., M, 3) marker positions, pad frame
    marker_displacement: torch.Tensor  # (..., M, 3)
    node_forces: torch.Tensor  # (..., G, 3) contact force on each gel node, pad frame
    total_force: torch.Tensor  # (..., 3) force the pad receives
    torque: torch.Tensor  # (..., 3) about the pad-frame origin
    depth: torch.Tensor  # (..., H, W) indentation of the gel surface (m; < 0 bulging), 0 outside
    image: torch.Tensor  # (..., H, W, 3) RGB in [0, 1]
    mask: torch.Tensor = field(default=None)  # (H, W) bool: pixel sees the gel


def _embed(points: np.ndarray, nodes: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For x-y points, the gel face containing each (projection on x-y) and barycentrics;
    face -1 for points outside every face."""
    tri = nodes[faces][:, :, :2]
    face = np.full(len(points), -1, np.int64)
    bary = np.zeros((len(points), 3))
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    order = np.argsort(points[:, 0])
    px = points[order, 0]
    for f in range(len(faces)):
        a, b = np.searchsorted(px, [lo[f, 0] - 1e-12, hi[f, 0] + 1e-12])
        cand = order[a:b]
        cand = cand[(points[cand, 1] >= lo[f, 1] - 1e-12) & (points[cand, 1] <= hi[f, 1] + 1e-12) & (face[cand] < 0)]
        if len(cand) == 0:
            continue
        p0, p1, p2 = tri[f]
        m = np.array([[p1[0] - p0[0], p2[0] - p0[0]], [p1[1] - p0[1], p2[1] - p0[1]]])
        if abs(np.linalg.det(m)) < 1e-20:
            continue
        uv = np.linalg.solve(m, (points[cand] - p0).T).T
        w = np.column_stack([1 - uv.sum(1), uv])
        inside = np.all(w >= -1e-9, axis=1)
        face[cand[inside]] = f
        bary[cand[inside]] = w[inside]
    return face, bary


class TactileSensor:
    """Readings of a pad whose nodes are ``mesh.nodes`` in the pad frame (rest shape)."""

    def __init__(self, mesh: TetMesh, config: TactileConfig = TactileConfig()):
        self.mesh, self.config = mesh, config
        nodes, faces = mesh.nodes, mesh.gel_faces
        self.gel_nodes = mesh.gel_nodes
        lo, hi = nodes[self.gel_nodes, :2].min(0), nodes[self.gel_nodes, :2].max(0)
        self.lo, self.hi = lo, hi
        h, w = config.image_size
        self.pixel = ((hi - lo) / np.array([w, h]))  # metres per pixel along x, y
        xs = lo[0] + (np.arange(w) + 0.5) * self.pixel[0]
        ys = lo[1] + (np.arange(h) + 0.5) * self.pixel[1]
        grid = np.stack(np.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
        pf, pb = _embed(grid, nodes, faces)
        self.mask = torch.from_numpy((pf >= 0).reshape(h, w))
        pf = np.maximum(pf, 0)
        self._pix_nodes = torch.from_numpy(faces[pf].astype(np.int64))  # (P, 3)
        self._pix_bary = torch.from_numpy(pb)
        self.marker_rest_xy = self._marker_layout()
        mf, mb = _embed(self.marker_rest_xy, nodes, faces)
        if (mf < 0).any():
            raise ValueError("some tactile markers fall outside the gel surface; reduce the count or margin")
        self._mk_nodes = torch.from_numpy(faces[mf].astype(np.int64))
        self._mk_bary = torch.from_numpy(mb)
        self.rest = torch.from_numpy(nodes)
        self.rest_markers = self._interp(self.rest, self._mk_nodes, self._mk_bary)
        self.rest_height = self._interp(self.rest[:, 2:], self._pix_nodes, self._pix_bary)[..., 0].reshape(h, w)

    def _marker_layout(self) -> np.ndarray:
        c = self.config
        span = self.hi - self.lo
        if isinstance(c.markers, tuple):  # flat pad: a regular grid inside the margin
            nx, ny = c.markers
            xs = self.lo[0] + span[0] * np.linspace(c.marker_margin, 1 - c.marker_margin, nx)
            ys = self.lo[1] + span[1] * np.linspace(c.marker_margin, 1 - c.marker_margin, ny)
            return np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
        # dome: a square grid clipped to the disk, spaced to give about the requested count
        centre, radius = 0.5 * (self.lo + self.hi), 0.5 * span.min() * (1 - 2 * c.marker_margin)
        step = radius * np.sqrt(np.pi / c.markers)
        k = np.arange(-np.ceil(radius / step), np.ceil(radius / step) + 1) * step
        pts = np.stack(np.meshgrid(k, k, indexing="ij"), -1).reshape(-1, 2)
        return centre + pts[np.linalg.norm(pts, axis=1) <= radius]

    @staticmethod
    def _interp(x: torch.Tensor, ids: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
        return (x[..., ids, :] * bary[..., None]).sum(-2)

    def gel_image(self, values: np.ndarray) -> np.ndarray:
        """(H, W) image of a field given on the gel nodes (in ``gel_nodes`` order): linear
        over the rest gel surface through the pixels' embedding, 0 off the gel."""
        full = np.zeros(len(self.mesh.nodes))
        full[self.gel_nodes] = values
        h, w = self.config.image_size
        image = (full[self._pix_nodes.numpy()] * self._pix_bary.numpy()).sum(-1).reshape(h, w)
        return np.where(self.mask.numpy(), image, 0.0)

    def read(self, x: torch.Tensor, forces: torch.Tensor, rotation, position: torch.Tensor) -> TactileFrame:
        """Readings from world node positions ``x`` and contact forces (..., N_pad, 3) of
        this pad, at pad pose ``rotation`` (3, 3) / ``position`` (..., 3)."""
        R = torch.as_tensor(np.asarray(rotation), dtype=x.dtype)
        local = torch.einsum("ji,...nj->...ni", R, x - position[..., None, :])
        f_local = torch.einsum("ji,...nj->...ni", R, forces)
        markers = self._interp(local, self._mk_nodes, self._mk_bary)
        gel_f = f_local[..., torch.from_numpy(self.gel_nodes.astype(np.int64)), :]
        h, w = self.config.image_size
        # heights only: a third of the gather over every pixel
        height = self._interp(local[..., 2:], self._pix_nodes, self._pix_bary)[..., 0].reshape(*local.shape[:-2], h, w)
        mask = self.mask
        depth = torch.where(mask, self.rest_height - height, torch.zeros_like(height))
        return TactileFrame(
            markers=markers,
            marker_displacement=markers - self.rest_markers,
            node_forces=gel_f,
            total_force=f_local.sum(-2),
            torque=torch.linalg.cross(local, f_local, dim=-1).sum(-2),
            depth=depth,
            image=self.render(torch.where(mask, height, self.rest_height), markers),
            mask=mask,
        )

    def render(self, height: torch.Tensor, markers: torch.Tensor) -> torch.Tensor:
        """Photometric image (..., H, W, 3) of a gel height map (..., H, W)."""
        c = self.config
        hp = torch.nn.functional.pad(height[None] if height.dim() == 2 else height, (1, 1, 1, 1), mode="replicate")
        hp = hp[0] if height.dim() == 2 else hp
        dzdx = (hp[..., 1:-1, 2:] - hp[..., 1:-1, :-2]) / (2 * self.pixel[0])
        dzdy = (hp[..., 2:, 1:-1] - hp[..., :-2, 1:-1]) / (2 * self.pixel[1])
        normal = torch.stack([-dzdx, -dzdy, torch.ones_like(dzdx)], -1)
        normal = normal / normal.norm(dim=-1, keepdim=True)
        img = torch.tensor(c.ambient, dtype=height.dtype).expand(*height.shape, 3).clone()
        for light in c.lights:
            d = torch.tensor(light.direction, dtype=height.dtype)
            lam = (normal @ (d / d.norm())).clamp_min(0.0)
            img = img + lam[..., None] * torch.tensor(light.color, dtype=height.dtype)
        # markers: dark Gaussian dots at their current x-y position
        h, w = c.image_size
        u = (markers[..., 0] - self.lo[0]) / self.pixel[0] - 0.5  # column coordinate
        v = (markers[..., 1] - self.lo[1]) / self.pixel[1] - 0.5  # row coordinate
        cols = torch.arange(w, dtype=height.dtype)
        rows = torch.arange(h, dtype=height.dtype)
        s2 = 2 * c.marker_radius_px**2
        gx = torch.exp(-((cols - u[..., None]) ** 2) / s2)  # (..., M, W)
        gy = torch.exp(-((rows - v[..., None]) ** 2) / s2)  # (..., M, H)
        dots = torch.einsum("...mh,...mw->...hw", gy, gx).clamp_max(1.0)
        img = img * (1 - c.marker_darkness * dots)[..., None]
        bg = torch.tensor(c.background, dtype=height.dtype)
        return torch.where(self.mask[..., None], img.clamp(0.0, 1.0), bg)
