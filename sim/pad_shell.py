"""Contact between shells (cloth, paper) and FEM bodies (tactile pads, soft blocks), by
staggering the two systems within each world step:

1. the shells step first, meeting the FEM bodies' surfaces as obstacles (sim.shell.system):
   pinned triangles at the surface's positions at the step's start and, at its end,
   predicted from velocities: a free body's nodes by their own, a pad glued to a finger by
   its nodes' mean (its gel's nodes ring at the substep's scale: mass-scaled, they reached
   5.8 m/s while the finger moved at 1.1 m/s, and a node predicted that way ended a step
   28 mm from where it was, inside a cloth 25 mm away); the shells' own implicit contact
   pairs give the normal force and the friction on the slip relative to the surface;
2. the volumetric system steps next with points on the shells as kinematic contact points
   (sim.coupling: half the shell's thickness as radius), moving linearly from the shells'
   start to their solved end positions over the substeps, so the pads deform under the
   cloth and their tactile readings see it. The points are the vertices, or where a coarse
   shell would load single gel nodes with a vertex's whole area (a contact spring that
   would set the explicit substep: 6 us instead of 26 us in the default scene), points
   spread evenly over its triangles (``shell_points``, ``sampling_level``).

Each side is stable on its own terms (the shell side implicit, the pad side with the
volumetric contact's substep and damping limits), but the two forces of a touching pair
are not exactly equal and opposite: momentum passes between the systems only to within
the two penalty models' difference. Gradients flow through both halves (sim.rollout runs
the volumetric adjoint of a step, then the shells', handing each the other's share).
"""

import numpy as np

from sim import geometry

MAX_LEVEL = 6  # most contact samples along a shell triangle's side (MAX_LEVEL^2 per triangle)


def surfaces(fem_bodies) -> tuple[np.ndarray, np.ndarray]:
    """(FEM node ids (n,) of every body's surface, in the world's FEM numbering; surface
    triangles (T, 3) indexing those n nodes)."""
    nodes, tris, offset = [], [], 0
    for body in fem_bodies:
        faces = np.asarray(body.mesh.surface_faces, np.int64)
        ids = np.unique(faces)
        tris.append(np.searchsorted(ids, faces) + sum(len(n) for n in nodes))
        nodes.append(ids + offset)
        offset += len(body.mesh.nodes)
    if not nodes:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    return np.concatenate(nodes), np.concatenate(tris)


def _sub_centroids(level: int) -> np.ndarray:
    """Barycentric coordinates (level^2, 3) of the centroids of a triangle's regular
    subdivision into level^2 equal triangles."""
    pts = [(i + 1 / 3, j + 1 / 3) for i in range(level) for j in range(level - i)]
    pts += [(i + 2 / 3, j + 2 / 3) for i in range(level - 1) for j in range(level - 1 - i)]
    st = np.array(pts) / level
    return np.stack([1.0 - st.sum(1), st[:, 0], st[:, 1]], 1)


def shell_points(shells, level: int = 1) -> dict:
    """The stacked shells' contact points for the volumetric side: at level 1 their
    vertices (area a third of their triangles'), above it the centroids of each triangle
    split into level^2 (a level^2-th of its area each), so that a coarse shell pressing a
    fine pad spreads its force over the gel instead of loading single nodes with a whole
    vertex's area (whose contact spring would set the substep). Per point: area, mass,
    radius (half the thickness), shell id; ``weights``, the sparse (points, vertices) map of
    the stacked vertices' positions to the points'; ``x``, the points at the rest shape."""
    from scipy import sparse

    area, shell, density, radius, rows, cols, vals = [], [], [], [], [], [], []
    bary, npoints, offset = _sub_centroids(level), 0, 0
    for i, s in enumerate(shells):
        nv, tris = len(s.vertices), np.asarray(s.triangles)
        tri_area = geometry.triangle_areas(s.vertices, tris)
        if level == 1:
            a = np.zeros(nv)
            for k in range(3):
                np.add.at(a, tris[:, k], tri_area / 3)
            rows.append(npoints + np.arange(nv))
            cols.append(offset + np.arange(nv))
            vals.append(np.ones(nv))
        else:
            a = np.repeat(tri_area / level**2, len(bary))
            rows.append(npoints + np.repeat(np.arange(len(a)), 3))
            cols.append(offset + np.repeat(tris, len(bary), axis=0).ravel())
            vals.append(np.tile(bary.ravel(), len(tris)))
        area.append(a)
        shell.append(np.full(len(a), i))
        density.append(np.full(len(a), s.material.density * s.material.thickness))
        radius.append(np.full(len(a), s.material.thickness / 2))
        npoints, offset = npoints + len(a), offset + nv
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
    weights = sparse.csr_matrix((cat(vals), (cat(rows).astype(np.int64), cat(cols).astype(np.int64))),
                                shape=(npoints, offset))
    vertices = cat([np.asarray(s.vertices, np.float64).ravel() for s in shells]).reshape(-1, 3)
    return {"x": weights @ vertices, "area": cat(area), "mass": cat(area) * cat(density), "radius": cat(radius),
            "shell": cat(shell).astype(np.int32), "weights": weights}


def sampling_level(shells, limit) -> int:
    """The fewest samples per triangle (``shell_points``' level, at most MAX_LEVEL) at which
    the shells' points no longer shorten the volumetric substep much: ``limit(area)`` is the
    stable substep with points of that largest area touching (0: none), and a level
    is enough once its substep is within 10% of the one without shell points."""
    free = limit(0.0)
    largest = shell_points(shells)["area"].max()  # a vertex's; above level 1, a triangle's / level^2
    triangle = max(geometry.triangle_areas(s.vertices, s.triangles).max() for s in shells)
    level = 1
    while level < MAX_LEVEL and limit(largest) < 0.9 * free:
        level += 1
        largest = triangle / level**2
    return level


class PadShellCoupling:
    """Hands each system the other's positions before its part of a world step."""

    def __init__(self, shells, volumetric, nodes: np.ndarray) -> None:
        self.shells, self.volumetric, self.nodes = shells, volumetric, nodes
        self.x0 = None
        # the surface nodes of bodies mounted on a collider (a pad on its finger), per body:
        # (their places in ``nodes``, the body's node range); the rest move with their own
        offsets = np.cumsum([0] + [len(b.mesh.nodes) for b in volumetric.fem_bodies])
        self.mounted = [(np.flatnonzero((nodes >= lo) & (nodes < hi)), slice(lo, hi))
                        for b, lo, hi in zip(volumetric.fem_bodies, offsets[:-1], offsets[1:]) if b.mount is not None]

    def obstacles(self, state: dict) -> tuple[np.ndarray, np.ndarray]:
        """The surface nodes' positions at a step's start and, predicted, at its end, from
        the volumetric state at its start."""
        x, v = state["fem_x"][self.nodes], state["fem_v"][self.nodes]
        for places, body in self.mounted:
            v[places] = state["fem_v"][body].mean(axis=0)
        return x, x + self.shells.dt * v

    def obstacle_adjoint(self, adj: dict, g_start: np.ndarray, g_end: np.ndarray) -> dict:
        """The volumetric state adjoint plus what reaches it through ``obstacles``."""
        adj = dict(adj)
        adj["fem_x"] = adj["fem_x"].copy()
        adj["fem_v"] = adj["fem_v"].copy()
        np.add.at(adj["fem_x"], self.nodes, g_start + g_end)
        g_v = self.shells.dt * g_end
        for places, body in self.mounted:
            adj["fem_v"][body] += g_v[places].sum(axis=0) / (body.stop - body.start)
            g_v[places] = 0.0
        np.add.at(adj["fem_v"], self.nodes, g_v)
        return adj

    def before(self, system) -> None:
        if system is self.shells:
            self.shells.set_obstacles(*self.obstacles(self.volumetric.state))
            self.x0 = self.shells.get_state()["x"]
        elif system is self.volumetric:
            self.volumetric.set_shell_points(self.x0, self.shells.get_state()["x"])
