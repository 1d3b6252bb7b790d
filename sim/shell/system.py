"""Thin shells: arrays, the implicit step and its adjoint (kernels in sim.shell.kernels).

Time integration is BDF2 (second order, L-stable: stiff membrane modes are damped, and a
constant acceleration is integrated exactly). Each step solves for the new positions x

    g(x) = M (x - x_hat) / beta^2 - f(x) = 0,   beta = 2 dt / 3,
    x_hat = (4 x_n - x_{n-1}) / 3 + beta (4 v_n - v_{n-1}) / 3,

by Newton's method with matrix-free Hessian-vector products (differences of the force
kernel; its reverse-mode autodiff where more accuracy is asked) and CG preconditioned by a
factorized sparse approximation of H (positive semi-definite element by element, see
``sim.shell.sparse``), with a backtracking line search on the incremental potential. Friction and damping use the previous step's positions
(lagged normal force and tangent plane), so every force is minus the gradient of a
potential in x and the Hessian is symmetric. The first step takes its fictitious history
from gravity alone (x_{-1} = x_0 - dt v_0 + dt^2 g / 2), so free fall is exact.

The backward pass of a step solves one adjoint system H lambda = dL/dx_{n+1} with the same
operator (implicit function theorem), then one reverse pass of the force kernels with
seed lambda yields the adjoints of the previous state, the collider poses and the
material and contact parameters.

Obstacles: the surfaces of other bodies (the FEM pads' gel, see sim.pad_shell) enter as
extra vertices after the shells' ``nv``, pinned where ``set_obstacles`` puts them each step,
with their triangles in the proximity search only (no membrane, bending, gravity or
collider contact of their own). The shells then meet them through the shell-shell contact
pairs, implicitly and with friction on the slip relative to the obstacle's own motion.
"""


import hashlib
from collections import OrderedDict

import numpy as np
import taichi as ti

from sim import geometry
from sim.colliders import Colliders
from sim.errors import SimulationError
from sim.host_arrays import read, write, zero
from sim.shell import kernels as K
from sim.shell.proximity import ProximitySearch
from sim.shell.sparse import Factorization, SparsePattern
from sim.runtime import ensure_runtime, serial_loops
from sim.spec import ShellSpec, WorldSpec

STATE_KEYS = ("x", "v", "x_prev", "v_prev", "rest_angle")
FD_RELATIVE_STEP = 3e-10  # difference products' step, of the largest coordinate (see ShellSystem._hvp_difference)
FD_PRODUCT_ERROR = 1e-6  # their relative error there; a Newton solve asking CG for less than 100x this uses exact ones
REFACTOR_ABOVE = 1e-2  # Newton updates longer than this fraction of the thinnest shell refactorize the preconditioner
# CG iterations a solve may take with the last iteration's factor before a fresh one is made
# (a fresh one needs a handful; a stale one, as contacts switch under a large sheet, hundreds)
STALE_FACTOR_CG = 10
PARAM_KEYS = ("youngs_modulus", "bending_stiffness")
# contact pair sets kept for the adjoint (a 31 x 31 pinch-lift step's: about 100 kB)
PAIR_SETS_BYTES = 64 << 20


class _LruBytes:
    """A dict that forgets its least recently used entries beyond a total size in bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.size = capacity, 0
        self._items: OrderedDict = OrderedDict()

    def get(self, key):
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key][0]

    def put(self, key, value, nbytes: int) -> None:
        if key in self._items:
            return
        self._items[key] = (value, nbytes)
        self.size += nbytes
        while self.size > self.capacity and len(self._items) > 1:
            _, (_, dropped) = self._items.popitem(last=False)
            self.size -= dropped


def _clear(a) -> None:
    """Zero an ndarray: in place on the host, else with one compiled kernel (Taichi's
    ndarray.fill builds and compiles a new kernel on every call, and this runs once per CG
    product)."""
    zero(a, lambda arr: K.clear(arr, arr.shape[0]))


def _zero_grads(*arrays) -> None:
    for a in arrays:
        _clear(a.grad)


def _concat(shells: tuple[ShellSpec, ...]):
    """Stack every shell's mesh into one vertex/triangle/hinge set with per-item shell ids."""
    verts, rest, tris, hing, vshell, tshell, hshell, pins = [], [], [], [], [], [], [], []
    offset = 0
    for s_id, s in enumerate(shells):
        verts.append(s.vertices)
        rest.append(s.rest_vertices if s.rest_vertices is not None else s.vertices)
        tris.append(s.triangles + offset)
        h = geometry.hinges(s.triangles)
        hing.append(h.reshape(-1, 4) + offset)
        vshell.append(np.full(len(s.vertices), s_id))
        tshell.append(np.full(len(s.triangles), s_id))
        hshell.append(np.full(len(h), s_id))
        pins.append(s.pinned + offset)
        offset += len(s.vertices)
    cat = lambda parts, dt: np.concatenate(parts).astype(dt)  # noqa: E731
    return (
        cat(verts, np.float64), cat(rest, np.float64), cat(tris, np.int32), cat(hing, np.int32).reshape(-1, 4),
        cat(vshell, np.int32), cat(tshell, np.int32), cat(hshell, np.int32), cat(pins, np.int32),
    )


class ShellSystem:
    name = "shells"

    def __init__(self, spec: WorldSpec, colliders: Colliders, real, obstacles: tuple[np.ndarray, float] | None = None) -> None:
        """obstacles: (triangles over their own vertices, friction coefficient), or None."""
        self.spec = spec
        self.col = colliders
        K.SERIAL = serial_loops(ensure_runtime())
        s = spec.settings
        self.dt = s.dt
        x, rest, tris, hinge, vshell, tshell, hshell, pins = _concat(spec.shells)
        self.nv, self.nt, self.nh, self.ns = len(x), len(tris), len(hinge), len(spec.shells)
        self.shell_ranges = np.cumsum([0] + [len(sh.vertices) for sh in spec.shells])
        self.x_init = x
        self.v_init = np.concatenate([np.tile(sh.velocity, (len(sh.vertices), 1)) for sh in spec.shells])
        obs_tris = np.zeros((0, 3), np.int64) if obstacles is None else np.asarray(obstacles[0], np.int64)
        self.nobs = int(obs_tris.max()) + 1 if len(obs_tris) else 0
        self.nx = self.nv + self.nobs  # rows of the vertex arrays: the shells', then the obstacles'
        free = np.ones(self.nx)
        free[pins] = 0.0
        free[self.nv:] = 0.0
        self.free_np = free
        # float32 resolves positions only to ~1e-7 of their size and force sums to ~1e-7 of
        # the largest term, which cancel in contact: the tolerances cannot go below that
        self.thinnest = min(sh.material.thickness for sh in spec.shells)
        eps = float(np.finfo(np.float32 if real == ti.f32 else np.float64).eps)
        self.tol_floor = 100.0 * eps * max(float(np.abs(x).max()), 1e-3)
        self.ftol_floor = 1e6 * eps if real == ti.f32 else 0.0

        vec = lambda n, grad=False: ti.ndarray(ti.types.vector(3, real), max(n, 1), needs_grad=grad)  # noqa: E731
        sca = lambda n, grad=False, dt=real: ti.ndarray(dt, max(n, 1), needs_grad=grad)  # noqa: E731
        nv, nt, nh, ns = self.nx, self.nt, self.nh, self.ns
        # state (xn, vn: at the step's start; xm, vm: one step before) and the unknown x
        self.x, self.xn, self.xm = vec(nv, True), vec(nv, True), vec(nv, True)
        self.vn, self.vm, self.xhat, self.f = vec(nv), vec(nv), vec(nv), vec(nv, True)
        self.pin, self.free, self.mass, self.radius = vec(nv), sca(nv), sca(nv), sca(nv)
        self.vshell = sca(nv, dt=ti.i32)
        self.gravity = ti.ndarray(ti.types.vector(3, real), 1)
        # solver work vectors
        self.r, self.b, self.sol, self.xs = (vec(nv) for _ in range(4))
        self.motion = vec(nv)  # per vertex, for the contact search
        self.pattern = SparsePattern(nv, tris, hinge, real)
        self.factor: Factorization | None = None
        self.factorizations = 0  # so far, for the solver counts
        # shell-shell and self-contact pairs, found per step (see sim.shell.proximity)
        all_tris = np.concatenate([tris, obs_tris + self.nv]).astype(np.int32)
        self.proximity = ProximitySearch(nv, all_tris, self.nv) if spec.contact.self_contact or self.nobs else None
        self.tris_np = all_tris
        # per vertex: friction and half thickness in contact pairs (an obstacle is its surface)
        shell_friction = np.array([m.friction for m in (sh.material for sh in spec.shells)])
        self.pair_friction = np.concatenate([shell_friction[vshell], np.full(self.nobs, obstacles[1] if self.nobs else 0.0)])
        self.pair_radius = np.concatenate([np.array([m.thickness / 2 for m in (sh.material for sh in spec.shells)])[vshell],
                                           np.zeros(self.nobs)])
        self.npairs, self._real = 0, real
        self._pair_sets = _LruBytes(PAIR_SETS_BYTES)
        self._accepted_energy: float | None = None  # the incremental potential where the last line search stopped
        # Newton's CG products: by differences, unless float32 (it resolves positions only to
        # ~1e-7 of their size) or a linear solve asks for more accuracy than they have
        self._exact_products = real == ti.f32 or s.cg_tol < 100 * FD_PRODUCT_ERROR
        self._alloc_pairs(64)
        self.pen, self.fscale = sca(nv), sca(nv)
        # elements
        self.tri, self.tshell = ti.ndarray(ti.types.vector(3, ti.i32), max(nt, 1)), sca(nt, dt=ti.i32)
        self.dm_inv, self.area = ti.ndarray(ti.types.matrix(2, 2, real), max(nt, 1)), sca(nt)
        self.hinge, self.hshell = ti.ndarray(ti.types.vector(4, ti.i32), max(nh, 1)), sca(nh, dt=ti.i32)
        self.hweight = sca(nh)
        self.rest, self.rest_new = sca(nh, True), sca(nh, True)
        # per-shell material
        self.youngs, self.bend = sca(ns, True), sca(ns, True)
        self.poisson, self.thick, self.damp, self.yield_angle = sca(ns), sca(ns), sca(ns), sca(ns)

        mats = [sh.material for sh in spec.shells]
        areas = geometry.triangle_areas(rest, tris)
        write(self.tri, tris)
        write(self.tshell, tshell)
        write(self.dm_inv, geometry.rest_frames(rest, tris))
        write(self.area, areas)
        mass = np.zeros(self.nv)
        for k in range(3):
            np.add.at(mass, tris[:, k], areas * np.array([m.density * m.thickness for m in mats])[tshell] / 3)
        if np.any(mass <= 0):
            raise ValueError(f"shell vertex {int(np.argmin(mass))} belongs to no triangle (it would have no mass)")
        # obstacle rows: a mass keeps the preconditioner's pinned rows regular; a radius of
        # -inf keeps colliders off them; shell 0's damping (masked out: they are pinned)
        mass = np.concatenate([mass, np.full(self.nobs, mass.mean())])
        self.mass_np = mass
        write(self.mass, mass)
        self.radius_np = np.concatenate([np.array([m.thickness / 2 for m in mats])[vshell], np.full(self.nobs, -1e30)])
        write(self.radius, self.radius_np)
        write(self.vshell, np.concatenate([vshell, np.zeros(self.nobs, vshell.dtype)]))
        write(self.free, free)
        write(self.pin, np.concatenate([x, np.zeros((self.nobs, 3))]))
        if nh:
            write(self.hinge, hinge)
            write(self.hshell, hshell)
            lengths = np.linalg.norm(rest[hinge[:, 1]] - rest[hinge[:, 0]], axis=1)
            wing = lambda k: geometry.triangle_areas(rest, hinge[:, [0, 1, k]])  # noqa: E731
            write(self.hweight, 3.0 * lengths**2 / (wing(2) + wing(3)))
            self.rest_init = geometry.dihedral_angles(rest, hinge)
        else:
            self.rest_init = np.zeros(0)
        write(self.poisson, np.array([m.poisson_ratio for m in mats], np.float64))
        write(self.thick, np.array([m.thickness for m in mats], np.float64))
        write(self.damp, np.array([m.damping for m in mats], np.float64))
        write(self.yield_angle, np.array([m.yield_angle for m in mats], np.float64))
        write(self.gravity, np.array([s.gravity], np.float64))
        self.set_params({k: np.array([getattr(m, k) for m in mats]) for k in PARAM_KEYS})

    def _alloc_pairs(self, capacity: int) -> None:
        real = self._real
        self.spair = ti.ndarray(ti.types.vector(4, ti.i32), capacity)
        self.skind = ti.ndarray(ti.i32, capacity)  # 0: vertex, triangle; 1: edge, edge (sim.shell.kernels._pair_frame)
        self.sdist, self.smu = ti.ndarray(real, capacity), ti.ndarray(real, capacity)

    def find_pairs(self) -> int:
        """The step's contact candidates (shell-shell, and shells with obstacles), from its
        start positions: pairs within the contact distance plus twice their vertices' motion
        relative to each other over the last step, and the contact distance again, so the
        ones the step can close are all there. Obstacles never pair among themselves.

        They depend on the start positions and motions alone, so the sets of recent steps
        are kept by those inputs' digest: a step's adjoint finds its forward's pairs there
        instead of searching again."""
        self.npairs = 0
        if self.proximity is None:
            return 0
        x = read(self.xn)[: self.nx]
        # motion: the shells' over the last step, the obstacles' over this one
        moved = np.concatenate([x[: self.nv] - read(self.xm)[: self.nv], read(self.pin)[self.nv: self.nx] - x[self.nv:]])
        key = hashlib.blake2b(x.tobytes() + moved.tobytes(), digest_size=16).digest()
        found = self._pair_sets.get(key)
        if found is None:
            found = self._search_pairs(moved)
            self._pair_sets.put(key, found, sum(a.nbytes for a in found))
        quads, kind, dist, mu = found
        if not len(quads):
            return 0
        if len(quads) > self.spair.shape[0]:
            self._alloc_pairs(2 * len(quads))
        pad = self.spair.shape[0] - len(quads)
        write(self.spair, np.pad(quads, ((0, pad), (0, 0))))
        write(self.skind, np.pad(kind, (0, pad)))
        write(self.sdist, np.pad(dist, (0, pad)))
        write(self.smu, np.pad(mu, (0, pad)))
        self.npairs = len(quads)
        return self.npairs

    def _search_pairs(self, moved: np.ndarray) -> tuple[np.ndarray, ...]:
        """(vertex quads, kinds, contact distances, friction coefficients) of the candidate
        pairs from the start positions in xn and the vertices' motion."""
        write(self.motion, moved)
        override = self.spec.contact.self_contact_radius
        reach = 2.0 * (override if override > 0 else 2.0 * self.pair_radius.max())
        largest = float(np.sqrt(np.max(np.sum(moved**2, axis=1))))
        v, t = self.proximity.pairs(self.xn, self.motion, reach, 2.0, largest)
        ea, eb = self.proximity.edge_pairs(self.xn, self.motion, reach, 2.0, largest)
        quads = np.concatenate([np.column_stack([v, self.tris_np[t]]), np.column_stack([ea, eb])]).astype(np.int64)
        kind = np.concatenate([np.zeros(len(v), np.int32), np.ones(len(ea), np.int32)])
        # q0 and q2 lie on the two sides (a vertex and its triangle, or the two edges)
        obstacle = quads[:, [0, 2]] >= self.nv
        keep = ~obstacle.all(axis=1) & (obstacle.any(axis=1) | self.spec.contact.self_contact)
        quads, kind, with_obstacle = quads[keep], kind[keep], obstacle[keep].any(axis=1)
        dist = self.pair_radius[quads[:, 0]] + self.pair_radius[quads[:, 2]]
        if override > 0:  # between shells' mid-surfaces; an obstacle's surface is its own
            dist = np.where(with_obstacle, dist, override)
        mu = 0.5 * (self.pair_friction[quads[:, 0]] + self.pair_friction[quads[:, 2]])
        return quads.astype(np.int32), kind, dist, mu

    def _pair_args(self):
        return (self.spair, self.skind, self.sdist, self.smu, self.npairs, self.spec.contact.self_contact_stiffness,
                self._eps())

    # ------------------------------------------------------------------ parameters

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        for key, arr in (("youngs_modulus", self.youngs), ("bending_stiffness", self.bend)):
            value = np.asarray(params[key], np.float64).reshape(-1)
            if value.shape != (self.ns,) or not np.all(np.isfinite(value)) or np.any(value < 0):
                raise ValueError(f"{key} must be {self.ns} finite non-negative value(s), got {value}")
            write(arr, value)

    def params(self) -> dict[str, np.ndarray]:
        return {"youngs_modulus": read(self.youngs)[: self.ns], "bending_stiffness": read(self.bend)[: self.ns]}

    # ------------------------------------------------------------------ state

    def reset(self, x: np.ndarray | None = None, v: np.ndarray | None = None) -> None:
        """Back to the initial state (or to the given initial positions and velocities)."""
        dt, g = self.dt, np.array(self.spec.settings.gravity)
        free = self.free_np[: self.nv, None]
        x = self.x_init if x is None else np.asarray(x, np.float64)
        v = self.v_init if v is None else np.asarray(v, np.float64)
        self.set_state(
            {
                "x": x,
                "v": v * free,
                "x_prev": x - free * (dt * v - 0.5 * dt * dt * g),
                "v_prev": free * (v - dt * g),
                "rest_angle": self.rest_init,
            }
        )

    def get_state(self) -> dict[str, np.ndarray]:
        return {
            "x": read(self.xn)[: self.nv],
            "v": read(self.vn)[: self.nv],
            "x_prev": read(self.xm)[: self.nv],
            "v_prev": read(self.vm)[: self.nv],
            "rest_angle": read(self.rest)[: self.nh],
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for key, arr in (("x", self.xn), ("v", self.vn), ("x_prev", self.xm), ("v_prev", self.vm)):
            value = np.asarray(state[key], np.float64)
            if value.shape != (self.nv, 3):
                raise ValueError(f"shell state {key!r} must have shape {(self.nv, 3)}, got {value.shape}")
            if self.nobs:  # the obstacles' rows stay
                value = np.concatenate([value, read(arr)[self.nv:]])
            write(arr, value)
        if self.nh:
            write(self.rest, np.asarray(state["rest_angle"], np.float64))
        K.copy(self.xn, self.x, self.nx)
        self.npairs = 0  # a step finds its own pairs

    def set_obstacles(self, start: np.ndarray, end: np.ndarray) -> None:
        """The obstacles' vertex positions at the coming step's start and end (nobs, 3)."""
        for arr, value in ((self.xn, start), (self.pin, end)):
            value = np.asarray(value, np.float64)
            if value.shape != (self.nobs, 3):
                raise ValueError(f"obstacle positions must have shape {(self.nobs, 3)}, got {value.shape}")
            full = read(arr)
            full[self.nv:] = value
            write(arr, full)

    # ------------------------------------------------------------------ forces and energies

    def _eps(self) -> float:
        return self.spec.contact.friction_velocity * self.dt

    def _material_args(self):
        return (
            self.mass, self.vshell, self.damp, self.gravity, self.tri, self.tshell, self.dm_inv, self.area,
            self.thick, self.youngs, self.poisson, self.hinge, self.hshell, self.hweight, self.rest, self.bend,
            self.nx, self.nt, self.nh, self.dt,
        )

    def _contact_args(self):
        c = self.col
        return (self.radius, c.kind, c.size, c.shape_kinds, c.pos0, c.quat0, c.pos1, c.quat1, c.friction, c.stiffness, c.count,
                self._eps(), *self._pair_args()[:-1])

    def _force_args(self):
        return (self.x, self.xn, self.xm, self.f, *self._material_args(), *self._contact_args())

    def forces(self) -> None:
        _clear(self.f)
        K.forces(*self._force_args(), K.ALL_FORCES)

    def _force_adjoint(self) -> None:
        """Reverse pass of the force kernel, one part at a time (sim.shell.kernels.ELASTIC,
        ...; a part with nothing to act on is left out): grads += f.grad^T df/d(inputs)."""
        args = self._force_args()
        for part, present in ((K.ELASTIC, True), (K.COLLIDERS, self.col.count), (K.PAIRS, self.npairs)):
            if present:
                K.forces.grad(*args, part)

    def _potential(self, inertia: float, external: bool) -> float:
        return K.potential(self.x, self.xn, self.xm, self.xhat, self.free, *self._material_args(),
                           *self._contact_args(), inertia, int(external))

    def _energy(self, with_body: bool) -> float:
        """Elastic energy, plus (with_body) gravity, damping, contact and friction: the energy of ``forces``."""
        return self._potential(0.0, with_body)

    def incremental_potential(self, beta: float) -> float:
        return self._potential(1.0 / (beta * beta), True)

    # ------------------------------------------------------------------ solver

    def _hvp(self, p: np.ndarray, beta: float) -> np.ndarray:
        """H p = M p / beta^2 - (df/dx) p on free vertices, by one reverse pass of the force
        kernels (which also adds p^T df/d(inputs) into the other arrays' gradients)."""
        write(self.f.grad, p)
        _zero_grads(self.x)
        self._force_adjoint()
        return self.free_np[:, None] * (self.mass_np[:, None] * p / (beta * beta) - read(self.x.grad))

    def _hvp_difference(self, p: np.ndarray, beta: float, x0: np.ndarray, f0: np.ndarray) -> np.ndarray:
        """H p as in ``_hvp`` at x0, whose forces are f0, by a difference of forces: one more
        evaluation at x0 + h p (Newton-Krylov's Jacobian-free product). The forward solve
        then never builds the force kernels' reverse (the longest compilation of all: a cold
        start to the first step no longer waits for it). Adjoint solves keep the exact
        products.

        The step, 3e-10 of the largest coordinate, gave the smallest error against the exact
        products on a pinched sheet, 8e-7 of the product (1e-8: 2e-5, where sticking
        friction's smoothed |u| bends; 1e-10: 1e-6, round-off). Central differences were no
        better (at best 1e-6, at 1e-9): the bend, not the curvature, bounds both. The
        pinch-lift's Newton and CG counts then match the exact products' within 1%."""
        largest = float(np.abs(p).max())
        if largest == 0.0:
            return np.zeros_like(p)
        h = FD_RELATIVE_STEP * max(float(np.abs(x0).max()), 1e-3) / largest
        write(self.x, x0 + h * p)
        self.forces()
        df = (read(self.f) - f0) / h
        write(self.x, x0)
        return self.free_np[:, None] * (self.mass_np[:, None] * p / (beta * beta) - df)

    def pcg(self, b: np.ndarray, beta: float, rtol: float, max_iter: int, exact: bool = True) -> tuple[np.ndarray, int]:
        """Solve H sol = b by CG with products H p (exact, or by differences: see
        ``_hvp_difference``, which needs the forces at x in f) and the factorized approximate
        Hessian as preconditioner. Stops on negative curvature (then sol is the last descent
        direction, or the preconditioned b). Converged when the preconditioned residual norm
        fell by rtol. Returns (sol, iterations)."""
        self.negative_curvature = False
        base = None if exact else (read(self.x), read(self.f))
        sol = np.zeros_like(b)
        r = b.copy()
        z = self.factor.solve(r)
        p = z.copy()
        rz = float(np.vdot(r, z))
        target = rtol * rtol * rz
        for it in range(max_iter):
            if rz <= target:
                return sol, it
            ap = self._hvp(p, beta) if exact else self._hvp_difference(p, beta, *base)
            curvature = float(np.vdot(p, ap))
            if curvature <= 0:
                self.negative_curvature = True
                return (z if it == 0 else sol), it
            alpha = rz / curvature
            sol += alpha * p
            r -= alpha * ap
            z = self.factor.solve(r)
            rz_new = float(np.vdot(r, z))
            p = z + (rz_new / rz) * p
            rz = rz_new
        return sol, max_iter

    def _precondition(self, beta: float, step: int) -> None:
        """Assemble and factorize the approximate Hessian at the current x (in ``step``)."""
        c, pat = self.col, self.pattern
        K.assemble_hessian(
            self.x, self.xn, pat.blocks, pat.ti_diag_slot, pat.ti_tri_slot, pat.ti_hinge_slot, self.free, self.mass,
            self.vshell, self.damp, self.tri, self.tshell, self.dm_inv, self.area, self.thick, self.youngs,
            self.poisson, self.hinge, self.hshell, self.hweight, self.bend, self.radius, c.kind, c.size, c.shape_kinds,
            c.pos0, c.quat0, c.pos1, c.quat1, c.friction, c.stiffness, pat.blocks.shape[0], self.nx, self.nt, self.nh,
            c.count, beta, self.dt, self._eps(),
        )
        if self.npairs:
            K.pair_blocks(self.x, self.xn, pat.blocks, pat.ti_diag_slot, self.free, *self._pair_args())
        try:
            self.factor = pat.factorize()
        except FloatingPointError as exc:
            raise SimulationError(step, self.name, "preconditioner", float("nan"), str(exc)) from None
        self.factorizations += 1

    def _measures(self, beta: float) -> tuple[float, float, float]:
        """At the current x, with its forces in f: (the mass-scaled residual max |r| beta^2 / m
        as a displacement, the largest shell displacement over the step, the largest force
        residual relative to its vertex's weight plus contact forces). Leaves r and b = -r."""
        c = self.col
        m = K.newton_measures(
            self.x, self.xn, self.xhat, self.f, self.mass, self.free, self.r, self.b, self.fscale, self.gravity,
            self.radius, c.kind, c.size, c.shape_kinds, c.pos0, c.quat0, c.pos1, c.quat1, c.friction, c.stiffness, c.count,
            *self._pair_args(), self.nx, self.nv, beta,
        )
        return float(m[0]), float(m[1]), float(m[2])

    def solve(self, step: int) -> dict:
        """Newton's method for the new positions (left in self.x). Returns solver counts.

        Converged when either
        - the error of x, as a displacement, is below max(newton_tol, newton_rtol * this
          step's largest vertex displacement): measured by the mass-scaled residual
          M^-1 r beta^2 (an upper bound of the error while the stiffness is positive) or by
          the length of the Newton update H^-1 r; or
        - every vertex's force residual is below newton_ftol times the forces acting on it
          (its weight plus its contact forces): where stiff contact and the narrow sticking
          zone of friction dwarf the mass, this is what a converged equilibrium means.
        At the iteration cap, a step whose last update is below newton_accept of the thinnest
        shell's thickness is kept (counted as "unconverged" in the returned counts: friction
        cycling at the edge of its sticking zone can stall there); a larger one raises.
        A line search on the incremental potential picks each update's length. Where CG met
        negative curvature (a buckling sheet) or the line search had to cut the exact Newton
        update below a quarter (a finger edge's curvature makes the contact Hessian
        indefinite), the next update is the projected-Newton one, -P^-1 r with the positive
        definite approximation P: always a descent direction; after a full projected step
        the exact updates resume."""
        s = self.spec.settings
        beta = 2.0 * self.dt / 3.0
        K.predict(self.xn, self.xm, self.vn, self.vm, self.xhat, self.x, self.free, self.pin, self.nx, beta)
        self._accepted_energy = None
        self.find_pairs()
        cg_total, size, alpha, projected = 0, float("inf"), 0.0, False
        factorized = self.factorizations
        for it in range(s.newton_max_iter + 1):
            self.forces()
            err, moved, force_error = self._measures(beta)
            if not np.isfinite(err):
                raise SimulationError(step, self.name, "residual", err, "the Newton residual is not finite")
            tol = max(s.newton_tol, self.tol_floor, s.newton_rtol * moved)
            if err <= tol or force_error <= max(s.newton_ftol, self.ftol_floor):
                return {"newton": it, "cg": cg_total, "factorizations": self.factorizations - factorized}
            if it == s.newton_max_iter:
                break
            # near the solution, after a full exact step, the last factor may serve as well as a new one
            fresh = projected or alpha < 1.0 or size > REFACTOR_ABOVE * self.thinnest
            if fresh:
                self._precondition(beta, step)
            b = read(self.b)
            if projected:
                sol = self.factor.solve(b)
            else:
                sol, iters = self.pcg(b, beta, s.cg_tol, s.cg_max_iter if fresh else STALE_FACTOR_CG, exact=self._exact_products)
                cg_total += iters
                if not fresh and iters >= STALE_FACTOR_CG:  # it did not: solve again with a fresh one
                    self._precondition(beta, step)
                    self.forces()  # (CG's difference products left f at a nearby point)
                    sol, iters = self.pcg(b, beta, s.cg_tol, s.cg_max_iter, exact=self._exact_products)
                    cg_total += iters
            write(self.sol, sol)
            size = float(np.sqrt(np.max(np.sum(sol * sol, axis=1))))
            if not np.all(np.isfinite(sol)):
                raise SimulationError(step, self.name, "newton update", size, "the linear solve gave a non-finite update")
            if size <= tol and not projected:  # the remaining error is below tolerance: take the last update whole
                K.axpy(1.0, self.sol, self.x, self.nx)
                return {"newton": it + 1, "cg": cg_total, "factorizations": self.factorizations - factorized}
            alpha = self._line_search(beta, err)
            if not projected and (self.negative_curvature or alpha < 0.25):
                projected = True
            elif projected and alpha == 1.0:
                projected = False
        if size <= s.newton_accept * self.thinnest:  # the cap: what is left is far below the shell's thickness
            return {"newton": s.newton_max_iter, "cg": cg_total, "factorizations": self.factorizations - factorized,
                    "unconverged": 1}
        raise SimulationError(
            step, self.name, "newton residual", force_error,
            f"Newton did not converge in {s.newton_max_iter} iterations (force residual "
            f"{force_error:.3g} of the forces acting > {s.newton_ftol:g}; last update {size:.3g} m > {tol:.3g} m)",
        )

    def _line_search(self, beta: float, err: float) -> float:
        """Backtrack from the full Newton step until the incremental potential decreases
        enough (Armijo) or, where its change drowns in round-off near convergence, until
        the residual decreases. Returns the step length taken."""
        n = self.nx
        # the last search's accepted point is where this one starts (x has not moved since)
        e0 = self.incremental_potential(beta) if self._accepted_energy is None else self._accepted_energy
        self._accepted_energy = None
        slope = -K.dot(self.b, self.sol, n)  # b is minus the potential's gradient
        if slope >= 0:  # not a descent direction (negative curvature): preconditioned gradient
            write(self.sol, self.factor.solve(read(self.b)))
            slope = -K.dot(self.b, self.sol, n)
        K.copy(self.x, self.xs, n)
        alpha = 1.0
        for _ in range(40):
            K.axpy(alpha, self.sol, self.x, n)
            e = self.incremental_potential(beta)
            if e <= e0 + 1e-4 * alpha * slope:
                self._accepted_energy = e
                return alpha
            if abs(e - e0) <= 1e-12 * abs(e0):
                self.forces()
                if self._measures(beta)[0] < err:
                    self._accepted_energy = e
                    return alpha
            K.copy(self.xs, self.x, n)
            alpha *= 0.5
        K.axpy(alpha, self.sol, self.x, n)
        return alpha

    def _plastic(self) -> None:
        K.plastic_update(self.x, self.hinge, self.hshell, self.rest, self.rest_new, self.yield_angle, self.nh)

    def step(self, step: int) -> dict:
        stats = self.solve(step)
        if self.nh:
            self._plastic()
        K.advance(self.x, self.xn, self.xm, self.vn, self.vm, self.rest, self.rest_new, self.nx, self.nh, self.dt)
        return stats

    # ------------------------------------------------------------------ checks and read-outs

    def _penetration(self) -> np.ndarray:
        c = self.col
        K.penetration(self.xn, self.radius, c.kind, c.size, c.shape_kinds, c.pos1, c.quat1, c.stiffness, self.pen,
                      self.nv, c.count)
        return read(self.pen)[: self.nv]

    def check(self, step: int, max_penetration: float, max_speed: float) -> None:
        """Raise SimulationError naming the step, shell and quantity when the state blew up."""
        x = read(self.xn)[: self.nv]
        v = read(self.vn)[: self.nv]
        for what, arr in (("position", x), ("velocity", v)):
            bad = ~np.all(np.isfinite(arr), axis=1)
            if bad.any():
                i = int(np.argmax(bad))
                raise SimulationError(step, self._owner(i), what, float("nan"), f"vertex {i} {what} is NaN or inf")
        speed = np.linalg.norm(v, axis=1)
        i = int(np.argmax(speed))
        if speed[i] > max_speed:
            raise SimulationError(
                step, self._owner(i), "speed", float(speed[i]),
                f"vertex {i} moves at {speed[i]:.3g} m/s > {max_speed:g} m/s (runaway energy)",
            )
        if self.col.count:
            pen = self._penetration()
            i = int(np.argmax(pen))
            if pen[i] > max_penetration:
                raise SimulationError(
                    step, self._owner(i), "penetration", float(pen[i]),
                    f"vertex {i} is {pen[i]:.3g} m inside a collider (tolerance {max_penetration:g} m)",
                )

    def _owner(self, vertex: int) -> str:
        return self.spec.shells[int(np.searchsorted(self.shell_ranges, vertex, side="right") - 1)].name

    def contact_count(self) -> int:
        """Vertices touching a collider now."""
        return int(np.sum(self._penetration() > 0)) if self.col.count else 0

    def energies(self) -> dict[str, float]:
        """Physical energies of the current state (J): kinetic, elastic, gravity potential."""
        K.copy(self.xn, self.x, self.nx)
        v = read(self.vn)[: self.nv]
        x = read(self.xn)[: self.nv]
        g = np.array(self.spec.settings.gravity)
        return {
            "kinetic": float(0.5 * np.sum(self.mass_np[: self.nv] * np.sum(v * v, axis=1))),
            "elastic": float(self._energy(False)),
            "gravity": float(-np.sum(self.mass_np[: self.nv] * (x @ g))),
        }

    # ------------------------------------------------------------------ backward

    def backward_step(self, step: int, state: dict, x_new: np.ndarray, adj: dict, adjoint_tol: float, max_iter: int,
                      obstacles: tuple[np.ndarray, np.ndarray] | None = None):
        """Adjoint of step ``step``. ``state`` is the state at the step's start, ``x_new`` the solved
        positions, ``adj`` the adjoints of the state after the step (same keys as the state),
        ``obstacles`` their positions at the step's start and end as in the forward step.
        Returns the adjoints of the state before the step and this step's parameter
        gradients; the collider pose gradients are left in the colliders' .grad, the
        obstacles' (start, end) in ``obstacle_grads``."""
        dt, beta, nv = self.dt, 2.0 * self.dt / 3.0, self.nv
        self.set_state(state)
        x_new = np.asarray(x_new, np.float64)
        if self.nobs:
            if obstacles is None:
                raise ValueError("this step had obstacles: give their start and end positions")
            self.set_obstacles(*obstacles)
            x_new = np.concatenate([x_new, np.asarray(obstacles[1], np.float64)])
        self.find_pairs()  # the same pairs as the step's forward solve: they depend on its start state alone
        write(self.x, x_new)
        m = self.mass_np[:nv, None]
        free = self.free_np[:, None]
        # plastic rest angles: adjoint to x_new and to the old rest angles
        grest = np.zeros(self.nh)
        a = np.asarray(adj["x"]) + 1.5 / dt * np.asarray(adj["v"])
        if self.nh:
            _zero_grads(self.x, self.rest)
            write(self.rest_new.grad, np.asarray(adj["rest_angle"], np.float64))
            K.plastic_update.grad(self.x, self.hinge, self.hshell, self.rest, self.rest_new, self.yield_angle, self.nh)
            a = a + read(self.x.grad)[:nv]
            grest = read(self.rest.grad)[: self.nh].copy()
        # one adjoint solve with the Newton operator at the solution
        self.forces()
        self._precondition(beta, step)
        a = np.concatenate([a, np.zeros((self.nobs, 3))])  # nothing acts on the obstacles' rows
        lam, _ = self.pcg(a * free, beta, adjoint_tol, max_iter)
        # lambda^T df/d(inputs) in one reverse pass, on cleared gradients (the solve's
        # Hessian-vector products accumulated into every one of them)
        _zero_grads(self.x, self.xn, self.xm, self.rest, self.youngs, self.bend)
        self.col.clear_grads()
        write(self.f.grad, lam)
        self._force_adjoint()
        self.obstacle_grads = (read(self.xn.grad)[nv: self.nx], read(self.x.grad)[nv: self.nx])
        m_lam = m * lam[:nv] / beta**2
        out = {
            "x": np.asarray(adj["x_prev"]) - 2.0 / dt * np.asarray(adj["v"]) + 4.0 / 3.0 * m_lam + read(self.xn.grad)[:nv],
            "v": np.asarray(adj["v_prev"]) + 4.0 * beta / 3.0 * m_lam,
            "x_prev": 0.5 / dt * np.asarray(adj["v"]) - m_lam / 3.0 + read(self.xm.grad)[:nv],
            "v_prev": -beta / 3.0 * m_lam,
            "rest_angle": grest + (read(self.rest.grad)[: self.nh] if self.nh else 0.0),
        }
        step_params = {
            "youngs_modulus": read(self.youngs.grad)[: self.ns],
            "bending_stiffness": read(self.bend.grad)[: self.ns],
            **self.col.param_grads(),
        }
        return out, step_params

    def initial_state_adjoint(self, adj: dict) -> dict[str, np.ndarray]:
        """Adjoints of the initial positions and velocities, through reset()'s history."""
        free = self.free_np[: self.nv, None]
        return {
            "x": np.asarray(adj["x"]) + np.asarray(adj["x_prev"]),
            "v": free * (np.asarray(adj["v"]) - self.dt * np.asarray(adj["x_prev"]) + np.asarray(adj["v_prev"])),
        }
