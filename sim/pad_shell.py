"""Contact between shells (cloth, paper) and FEM bodies (tactile pads, soft blocks), by
staggering the two systems within each world step:

1. the shells step first, meeting the FEM bodies' surfaces as obstacles (sim.shell.system):
   pinned triangles at the surface's positions at the step's start and, at its end,
   predicted from the nodes' velocities; the shells' own implicit contact pairs give the
   normal force and the friction on the slip relative to the surface;
2. the volumetric system steps next with the shells' vertices as kinematic contact points
   (sim.coupling: vertex area, half the shell's thickness as radius), moving linearly from
   the shells' start to their solved end positions over the substeps, so the pads deform
   under the cloth and their tactile readings see it.

Each side is stable on its own terms (the shell side implicit, the pad side with the
volumetric contact's substep and damping limits), but the two forces of a touching pair
are not exactly equal and opposite: momentum passes between the systems only to within
the two penalty models' difference. Gradients flow through both halves (sim.rollout runs
the volumetric adjoint of a step, then the shells', handing each the other's share).
"""

import numpy as np

from sim import geometry


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


def shell_points(shells) -> dict[str, np.ndarray]:
    """Per vertex of the stacked shells, as contact points: position, area (a third of its
    triangles'), mass, radius (half the thickness) and shell id."""
    x, area, mass, radius, shell = [], [], [], [], []
    for i, s in enumerate(shells):
        a = np.zeros(len(s.vertices))
        tri_area = geometry.triangle_areas(s.vertices, s.triangles)
        for k in range(3):
            np.add.at(a, s.triangles[:, k], tri_area / 3)
        x.append(s.vertices)
        area.append(a)
        mass.append(a * s.material.density * s.material.thickness)
        radius.append(np.full(len(a), s.material.thickness / 2))
        shell.append(np.full(len(a), i))
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
    return {"x": cat(x).reshape(-1, 3), "area": cat(area), "mass": cat(mass), "radius": cat(radius),
            "shell": cat(shell).astype(np.int32)}


class PadShellCoupling:
    """Hands each system the other's positions before its part of a world step."""

    def __init__(self, shells, volumetric, nodes: np.ndarray) -> None:
        self.shells, self.volumetric, self.nodes = shells, volumetric, nodes
        self.x0 = None

    def obstacles(self, state: dict) -> tuple[np.ndarray, np.ndarray]:
        """The surface nodes' positions at a step's start and, predicted, at its end, from
        the volumetric state at its start."""
        x, v = state["fem_x"][self.nodes], state["fem_v"][self.nodes]
        return x, x + self.shells.dt * v

    def obstacle_adjoint(self, adj: dict, g_start: np.ndarray, g_end: np.ndarray) -> dict:
        """The volumetric state adjoint plus what reaches it through ``obstacles``."""
        adj = dict(adj)
        adj["fem_x"] = adj["fem_x"].copy()
        adj["fem_v"] = adj["fem_v"].copy()
        np.add.at(adj["fem_x"], self.nodes, g_start + g_end)
        np.add.at(adj["fem_v"], self.nodes, self.shells.dt * g_end)
        return adj

    def before(self, system) -> None:
        if system is self.shells:
            self.shells.set_obstacles(*self.obstacles(self.volumetric.state))
            self.x0 = self.shells.get_state()["x"]
        elif system is self.volumetric:
            self.volumetric.set_shell_points(self.x0, self.shells.get_state()["x"])
