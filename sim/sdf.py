"""Signed distances of kinematic collider shapes, as Taichi functions shared by every system.

A system asks ``collider_sdf(kind, size, p_local)`` for the distance of a point given in
the collider's frame and the outward unit normal there (also in that frame); it moves the
point into the frame with ``quat_to_mat``. Normals are written out per shape (not taken
by autodiff) so force kernels stay small; reverse-mode autodiff of those force kernels
differentiates through them. Shape codes follow ``sim.spec.COLLIDER_SHAPES``.
"""


import taichi as ti

from sim.spec import COLLIDER_SHAPES

BOX, SPHERE, CAPSULE, CYLINDER, PLANE, MESH = (COLLIDER_SHAPES.index(s) for s in COLLIDER_SHAPES)
_TINY = 1e-12


@ti.func
def quat_to_mat(q):
    """Rotation matrix of the quaternion (w, x, y, z), normalised here so any scale works."""
    q = q / q.norm()
    w, x, y, z = q[0], q[1], q[2], q[3]
    return ti.Matrix(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


@ti.func
def _sgn(a):
    return 1.0 if a >= 0 else -1.0


@ti.func
def _box(b, p):
    q = ti.abs(p) - b
    outside = ti.max(q, 0.0)
    d = 0.0
    n = ti.Vector([0.0, 0.0, 0.0])
    if outside.norm_sqr() > 0:
        d = outside.norm()
        n = ti.Vector([_sgn(p[0]) * outside[0], _sgn(p[1]) * outside[1], _sgn(p[2]) * outside[2]]) / d
    else:  # inside: the nearest face
        if q[0] >= q[1] and q[0] >= q[2]:
            d = q[0]
            n[0] = _sgn(p[0])
        elif q[1] >= q[2]:
            d = q[1]
            n[1] = _sgn(p[1])
        else:
            d = q[2]
            n[2] = _sgn(p[2])
    return d, n


@ti.func
def _round(p, r):
    """Sphere-swept point: distance to a point at the origin minus r."""
    length = ti.sqrt(p.norm_sqr() + _TINY * _TINY)
    return length - r, p / length


@ti.func
def _cylinder(r, half, p):
    rho = ti.sqrt(p[0] * p[0] + p[1] * p[1] + _TINY * _TINY)
    dr = rho - r
    dz = ti.abs(p[2]) - half
    radial = ti.Vector([p[0] / rho, p[1] / rho, 0.0])
    axial = ti.Vector([0.0, 0.0, _sgn(p[2])])
    d = 0.0
    n = ti.Vector([0.0, 0.0, 0.0])
    if dr > 0 and dz > 0:  # nearest to the rim
        d = ti.sqrt(dr * dr + dz * dz)
        n = (dr * radial + dz * axial) / d
    elif dr > dz:
        d = dr
        n = radial
    else:
        d = dz
        n = axial
    return d, n


@ti.func
def collider_sdf(kind, size, p):
    """(distance, outward normal) of the local point p to a primitive collider."""
    d = 0.0
    n = ti.Vector([0.0, 0.0, 1.0])
    if kind == BOX:
        d, n = _box(size, p)
    elif kind == SPHERE:
        d, n = _round(p, size[0])
    elif kind == CAPSULE:
        d, n = _round(p - ti.Vector([0.0, 0.0, ti.math.clamp(p[2], -size[1], size[1])]), size[0])
    elif kind == CYLINDER:
        d, n = _cylinder(size[0], size[1], p)
    elif kind == PLANE:
        d = p[2]
    return d, n
