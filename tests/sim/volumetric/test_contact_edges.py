"""Points pressed into a convex FEM body near one of its edges (sim.coupling): the face
whose plane is nearest holds the point, not the face across the edge behind whose plane
the point also lies. A cloth folded around a tactile pad's fingertip edge put its points
inside the footprint of the pad's end face (the deformed edge tilts it), 0.3 mm behind it
while 0.08 mm into the front face; the end face pushed the gel's edge nodes inwards by
several times the true load and they rang at 13 m/s."""

import numpy as np
import pytest
import taichi as ti
import trimesh

from sim.coupling import EDGE_HANDOFF, SurfaceContact
from sim.geometry import edge_neighbours

SIDE = 4e-3  # m: the cube's edge
RADIUS, DEPTH, SMOOTHING, AREA, KN = 2e-4, 3e-3, 1e-5, 1e-6, 1e8


def _cube():
    box = trimesh.creation.box(extents=(SIDE, SIDE, SIDE))  # outward faces, two triangles a side
    return np.asarray(box.vertices, np.float64), np.asarray(box.faces, np.int32)


def _cube_contact():
    """(contact, x, v, f, kn, kd, mu): one point (body 1) against the cube (body 0), at rest."""
    nodes, tris = _cube()
    contact = SurfaceContact(tris, np.zeros(len(tris), np.int32), np.ones(1, np.int32), np.full(1, AREA),
                             np.full(1, RADIUS), slots=1, real=ti.f64, cell=SIDE, depth=DEPTH,
                             smoothing=SMOOTHING, slip_velocity=1e-3)
    x, v, f = (ti.Vector.field(3, ti.f64, (1, len(nodes)), needs_grad=True) for _ in range(3))
    kn, kd, mu = (ti.field(ti.f64, (), needs_grad=True) for _ in range(3))
    kn[None], kd[None], mu[None] = KN, 0.0, 0.5
    x.from_numpy(nodes[None])
    return contact, x, v, f, kn, kd, mu


def _force_on(points):
    """The contact force on each point (alone against the cube, at rest), one at a time."""
    contact, x, v, f, kn, kd, mu = _cube_contact()
    out = []
    for p in points:
        contact.px.from_numpy(np.asarray(p, np.float64)[None, None])
        contact.pf.fill(0)
        f.fill(0)
        contact.invalidate()
        contact.find_pairs(0, x)
        contact.forces(0, x, v, f, kn, kd, mu)
        out.append(contact.pf.to_numpy()[0, 0])
        assert np.allclose(f.to_numpy()[0].sum(axis=0), -out[-1], atol=1e-12), "momentum not exchanged exactly"
    return np.array(out)


def _pressed(depth):
    """The normal force of one face on a point ``depth`` below it."""
    pen = RADIUS + depth
    return KN * AREA * (pen - 0.5 * SMOOTHING)


def test_every_edge_of_a_closed_surface_has_its_neighbour():
    nodes, tris = _cube()
    nb, far = edge_neighbours(tris)
    assert (nb >= 0).all()
    for t in range(len(tris)):
        for i in range(3):
            m = nb[t, i]
            edge = {tris[t][(i + 1) % 3], tris[t][(i + 2) % 3]}
            assert edge <= set(tris[m]) and far[t, i] in tris[m] and far[t, i] not in edge
            assert t in nb[m], "neighbours are mutual"
    open_sheet = np.array([[0, 1, 2], [2, 1, 3]])
    nb, far = edge_neighbours(open_sheet)
    assert (nb >= 0).sum() == 2 and nb[0, 0] == 1 and far[0, 0] == 3 and nb[1, 2] == 0 and far[1, 2] == 0


def test_a_point_pressed_into_the_top_near_an_edge_is_held_by_the_top_alone():
    top, side = SIDE / 2, SIDE / 2
    below, inside = 1e-4, 1.2e-3  # 0.1 mm under the top, 1.2 mm in from the side: the side's plane is farther
    assert inside - below >= EDGE_HANDOFF * SIDE  # past the handoff: the side lets go entirely
    force = _force_on([(side - inside, 5e-4, top - below)])[0]
    assert force[2] == pytest.approx(_pressed(below), rel=1e-9)
    assert abs(force[0]) < 1e-9 * force[2] and abs(force[1]) < 1e-9 * force[2]


def test_on_the_bisector_both_faces_push_alike_and_the_force_turns_smoothly_between_them():
    top = side = SIDE / 2
    force = _force_on([(side - 3e-4, 5e-4, top - 3e-4)])[0]
    assert force[0] == pytest.approx(force[2], rel=1e-9) and force[0] == pytest.approx(_pressed(3e-4), rel=1e-9)
    # from under the top (1.2 mm from the side) round to under the side (1.2 mm from the top),
    # 0.1 mm deep at both ends: no step in the force along the way
    s = np.linspace(0.0, 1.0, 201)
    depth_top, depth_side = 1e-4 + 1.1e-3 * s, 1.2e-3 - 1.1e-3 * s
    forces = _force_on(np.stack([side - depth_side, np.full_like(s, 5e-4), top - depth_top], 1))
    assert forces[0, 0] < 1e-9 * forces[0, 2] and forces[-1, 2] < 1e-9 * forces[-1, 0]
    steps = np.linalg.norm(np.diff(forces, axis=0), axis=1)
    assert steps.max() < 0.05 * np.linalg.norm(forces, axis=1).max()


def test_the_handoff_is_differentiated():
    """Where the side is letting go (its share between 0 and 1), the force's gradient with
    respect to the point and to a node of the edge matches central differences."""
    contact, x, v, f, kn, kd, mu = _cube_contact()
    nodes = x.to_numpy()[0]
    point = np.array([SIDE / 2 - 8e-4, 5e-4, SIDE / 2 - 3e-4])  # 0.3 mm under the top, 0.8 mm in: the side holds half
    edge_node = int(np.argmin(np.linalg.norm(nodes - (SIDE / 2, SIDE / 2, SIDE / 2), axis=1)))
    seed = np.array([0.3, -0.7, 0.6])

    def loss(p, node_shift=np.zeros(3)):
        moved = nodes.copy()
        moved[edge_node] += node_shift
        x.from_numpy(moved[None])
        contact.px.from_numpy(p[None, None])
        contact.pf.fill(0)
        f.fill(0)
        contact.invalidate()
        contact.find_pairs(0, x)
        contact.forces(0, x, v, f, kn, kd, mu)
        return float(contact.pf.to_numpy()[0, 0] @ seed)

    loss(point)
    for field in (contact.px, contact.pv, contact.pf, x, v, f, kn, kd, mu):
        field.grad.fill(0)
    contact.pf.grad.from_numpy(seed[None, None])
    contact.forces.grad(0, x, v, f, kn, kd, mu)
    grad_point, grad_node = contact.px.grad.to_numpy()[0, 0], x.grad.to_numpy()[0, edge_node]
    h = 1e-8
    for axis in range(3):
        e = np.eye(3)[axis] * h
        fd_point = (loss(point + e) - loss(point - e)) / (2 * h)
        fd_node = (loss(point, e) - loss(point, -e)) / (2 * h)
        assert grad_point[axis] == pytest.approx(fd_point, rel=1e-5, abs=1e-6 * np.abs(grad_point).max())
        assert grad_node[axis] == pytest.approx(fd_node, rel=1e-5, abs=1e-6 * np.abs(grad_node).max())
    assert np.abs(grad_node).max() > 0
