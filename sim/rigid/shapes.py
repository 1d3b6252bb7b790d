"""Signed distances of rigid collider shapes, as Taichi functions usable under autodiff.

Conventions follow ``sim.spec.ColliderSpec``: ``size`` is box half-extents; sphere
(radius, -, -); capsule and cylinder (radius, half-length along local z, -); plane has its
normal on local +z (the solid is z < 0). Points and normals are in the shape's frame.
"""


import taichi as ti

SHAPE_IDS = {"sphere": 0, "box": 1, "capsule": 2, "plane": 3, "cylinder": 4, "container": 5}
_EPS = 1e-12


@ti.func
def sdf_local(kind, size, q):
    """(signed distance, outward unit normal) of shape ``kind`` at local point ``q``."""
    phi = 0.0
    n = ti.Vector([0.0, 0.0, 1.0])
    if kind == 0:  # sphere
        r = ti.sqrt(q.dot(q) + _EPS)
        phi = r - size[0]
        n = q / r
    elif kind == 1:  # box
        d = ti.abs(q) - size
        outside = ti.max(d, 0.0)
        od = ti.sqrt(outside.dot(outside) + _EPS)
        if d.max() > 0:
            phi = od
            n = ti.math.sign(q) * outside / od
        else:  # inside: the nearest face
            phi = d.max()
            axis = 0
            if d[1] > d[axis]:
                axis = 1
            if d[2] > d[axis]:
                axis = 2
            n = ti.Vector([0.0, 0.0, 0.0])
            n[axis] = 1.0 if q[axis] >= 0 else -1.0
    elif kind == 2:  # capsule along z
        c = ti.Vector([q[0], q[1], q[2] - ti.min(ti.max(q[2], -size[1]), size[1])])
        r = ti.sqrt(c.dot(c) + _EPS)
        phi = r - size[0]
        n = c / r
    elif kind == 3:  # plane
        phi = q[2]
    elif kind == 5:  # container: distance to the nearest wall or the floor, inward normal
        phi = q[2] + size[2]
        n = ti.Vector([0.0, 0.0, 1.0])
        for a in ti.static(range(2)):
            d = size[a] - ti.abs(q[a])
            if d < phi:
                phi = d
                n = ti.Vector([0.0, 0.0, 0.0])
                n[a] = -1.0 if q[a] >= 0 else 1.0
    else:  # cylinder along z: the nearer of side and caps
        rho = ti.sqrt(q[0] * q[0] + q[1] * q[1] + _EPS)
        dr = rho - size[0]
        dz = ti.abs(q[2]) - size[1]
        if dr > 0 and dz > 0:
            phi = ti.sqrt(dr * dr + dz * dz)
            n = ti.Vector([q[0] / rho * dr, q[1] / rho * dr, ti.math.sign(q[2]) * dz]) / phi
        elif dr > dz:
            phi = dr
            n = ti.Vector([q[0] / rho, q[1] / rho, 0.0])
        else:
            phi = dz
            n = ti.Vector([0.0, 0.0, ti.math.sign(q[2])])
    return phi, n
