"""Signed distances of kinematic collider shapes, as Taichi functions shared by every system.

A system asks ``collider_sdf(kind, size, p_local)`` for the distance of a point given in
the collider's frame and the outward unit normal there (also in that frame); it moves the
point into the frame with ``quat_to_mat``. Normals are written out per shape (not taken
by autodiff) so force kernels stay small; reverse-mode autodiff of those force kernels
differentiates through them. Shape codes follow ``sim.spec.COLLIDER_SHAPES``.

Mesh colliders read a signed distance grid baked from their mesh (sim.mesh_sdf), smoothed
by a quadratic B-spline; the normal is that spline's own (continuous) gradient, normalised. The
grids live in one process-wide pool of Taichi fields (``MeshPool``): a mesh collider's
``size`` carries its slot in the pool (``collider_size``), so the function keeps one
signature for every system. Only kernels compiled for mesh shapes (``shape_kinds``) read the pool. It is
allocated when the first grid is uploaded after ``ti.init`` (never at import) and refilled
after a Taichi reset.
"""


import numpy as np
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


POOL_NODES = 1 << 21  # grid nodes of every mesh collider of a process together (16 MB in float64)
MAX_MESHES = 64


class MeshPool:
    """Baked grids (sim.mesh_sdf.MeshSdf) packed into Taichi fields, one slot per distinct
    grid. Fields cannot be allocated while a kernel compiles; systems with mesh colliders
    take their slots (``collider_size``) before compiling, which allocates the pool."""

    _live: "MeshPool | None" = None
    _grids: list = []  # every grid given a slot, in slot order (kept to refill after a reset)
    _slots: dict = {}  # grid content key -> slot

    def __init__(self, generation: int, real) -> None:
        self.generation = generation
        self.values = ti.field(real, POOL_NODES)
        self.origin = ti.Vector.field(3, real, MAX_MESHES)
        self.cell = ti.field(real, MAX_MESHES)
        self.dims = ti.Vector.field(3, ti.i32, MAX_MESHES)
        self.offset = ti.field(ti.i32, MAX_MESHES)
        self.count = self.used = 0
        for grid in MeshPool._grids:
            self._upload(grid)

    @classmethod
    def live(cls) -> "MeshPool":
        """The pool of the running Taichi runtime (allocated on first use after each init)."""
        from sim.runtime import ensure_runtime

        runtime = ensure_runtime()
        if cls._live is None or cls._live.generation != runtime.generation:
            cls._live = MeshPool(runtime.generation, runtime.real)
        return cls._live

    @classmethod
    def current(cls) -> "MeshPool | None":
        """The live pool if this runtime has one (kernels read it as they compile)."""
        from sim.runtime import current_runtime

        runtime = current_runtime()
        if cls._live is None or runtime is None or cls._live.generation != runtime.generation:
            return None
        return cls._live

    def _upload(self, grid) -> None:
        slot = self.count
        self.origin[slot] = grid.origin
        self.cell[slot] = grid.cell
        self.dims[slot] = grid.shape
        self.offset[slot] = self.used
        _fill(self.values, self.used, np.ascontiguousarray(grid.values.ravel(), np.float64))
        self.count += 1
        self.used += grid.values.size

    @classmethod
    def slot(cls, grid) -> int:
        """The slot holding ``grid``, uploading it the first time it is seen."""
        pool, key = cls.live(), grid.key()
        if key not in cls._slots:
            if len(cls._grids) >= MAX_MESHES or pool.used + grid.values.size > POOL_NODES:
                raise ValueError(f"mesh collider grids overflow this process's pool ({MAX_MESHES} grids, {POOL_NODES} "
                                 f"nodes; {pool.used} used, {grid.values.size} more asked): use coarser SDF cells")
            cls._slots[key] = len(cls._grids)
            cls._grids.append(grid)
            pool._upload(grid)
        return cls._slots[key]


@ti.kernel
def _fill(values: ti.template(), start: ti.i32, data: ti.types.ndarray()):
    for i in range(data.shape[0]):
        values[start + i] = data[i]


def collider_size(shape: str, size, sdf=None) -> tuple[float, float, float]:
    """What ``collider_sdf`` takes as ``size``: the shape's own, or a mesh's slot in the pool."""
    if shape == "mesh":
        return (float(MeshPool.slot(sdf)), 0.0, 0.0)
    return tuple(float(v) for v in size)


@ti.func
def _mesh(slot, p):
    """The grid's quadratic B-spline (27 nodes; it reproduces linear functions exactly, so
    flat faces keep their distance) and its gradient: continuous normals, so Newton and the
    adjoint see a smooth contact force. Beyond the grid, the distance to the grid's border is
    added (the grid pads the mesh by two cells, so contact stays inside)."""
    values = ti.static(MeshPool.current().values)
    lo, h = ti.static(MeshPool.current().origin)[slot], ti.static(MeshPool.current().cell)[slot]
    dims = ti.static(MeshPool.current().dims)[slot]
    inner_lo, inner_hi = lo + 0.5 * h, lo + h * (dims - 1.5)
    pc = ti.math.clamp(p, inner_lo, inner_hi)
    g = (pc - lo) / h
    base = ti.math.clamp(ti.floor(g - 0.5, ti.i32), 0, dims - 3)
    f = g - base
    w = [0.5 * (1.5 - f) ** 2, 0.75 - (f - 1.0) ** 2, 0.5 * (f - 0.5) ** 2]
    dw = [f - 1.5, -2.0 * (f - 1.0), f - 0.5]
    start = ti.static(MeshPool.current().offset)[slot] + (base[0] * dims[1] + base[1]) * dims[2] + base[2]
    # the weights are products of one factor per axis: sums along z, then y, then x (a third
    # of the arithmetic of node-by-node products, and so of the reverse-mode code to compile)
    d = 0.0
    grad = ti.Vector([0.0, 0.0, 0.0])
    for a in ti.static(range(3)):
        plane, plane_dy, plane_dz = 0.0, 0.0, 0.0
        for b in ti.static(range(3)):
            line, line_dz = 0.0, 0.0
            for c in ti.static(range(3)):
                value = values[start + (a * dims[1] + b) * dims[2] + c]
                line += w[c][2] * value
                line_dz += dw[c][2] * value
            plane += w[b][1] * line
            plane_dy += dw[b][1] * line
            plane_dz += w[b][1] * line_dz
        d += w[a][0] * plane
        grad += ti.Vector([dw[a][0] * plane, w[a][0] * plane_dy, w[a][0] * plane_dz])
    n = grad / ti.sqrt(grad.norm_sqr() + _TINY * _TINY)
    out = p - pc
    if out.norm_sqr() > 0:
        far = out.norm()
        d += far
        n = out / far
    return d, n


@ti.func
def collider_reach(kind, size):
    """The radius of a ball about the collider's origin that holds the whole shape (inf for
    planes and meshes): a point farther than reach + r cannot come within r of it, so contact
    loops skip it (exactly: contact forces and their derivatives vanish at distance r)."""
    reach = ti.math.inf
    if kind == BOX:
        reach = size.norm()
    elif kind == SPHERE:
        reach = size[0]
    elif kind == CAPSULE:
        reach = size[0] + size[1]
    elif kind == CYLINDER:
        reach = ti.sqrt(size[0] * size[0] + size[1] * size[1])
    return reach


def shape_kinds(shapes) -> int:
    """The set of shape names (``sim.spec.COLLIDER_SHAPES``) as the bit mask ``collider_sdf``
    takes: bit k set where shape k occurs."""
    return sum(1 << COLLIDER_SHAPES.index(name) for name in set(shapes))


@ti.func
def collider_sdf(kind, size, p, present: ti.template()):
    """(distance, outward normal) of the local point p to a collider. ``present``: the bit
    mask (``shape_kinds``) of the shapes the calling system has; only their branches are
    compiled in. Each branch and its reverse-mode derivative adds to the compilation of
    every kernel that reaches here (the shells' reverse force kernel took 27 s with all of
    them, 20 s with boxes alone; the mesh branch's 27-node spline costs several times a
    kernel's compile time), so it is a template argument of every such kernel."""
    d = 0.0
    n = ti.Vector([0.0, 0.0, 1.0])
    if ti.static(present >> BOX & 1):
        if kind == BOX:
            d, n = _box(size, p)
    if ti.static(present >> SPHERE & 1):
        if kind == SPHERE:
            d, n = _round(p, size[0])
    if ti.static(present >> CAPSULE & 1):
        if kind == CAPSULE:
            d, n = _round(p - ti.Vector([0.0, 0.0, ti.math.clamp(p[2], -size[1], size[1])]), size[0])
    if ti.static(present >> CYLINDER & 1):
        if kind == CYLINDER:
            d, n = _cylinder(size[0], size[1], p)
    if ti.static(present >> PLANE & 1):
        if kind == PLANE:
            d = p[2]
    if ti.static(present >> MESH & 1):
        if kind == MESH:
            d, n = _mesh(ti.cast(size[0], ti.i32), p)
    return d, n
