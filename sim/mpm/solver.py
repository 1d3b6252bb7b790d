"""Differentiable MLS-MPM (Hu et al. 2018) with one state for every material.

Each particle carries x, v, the affine velocity C and the elastic left Cauchy-Green tensor
b = Fe Fe^T, updated as b <- (I + dt C) b (I + dt C)^T. That single state serves
- elastic: Neo-Hookean Kirchhoff stress mu (b - I) + lam log(J) I, J = sqrt(det b);
- plastic: the same after a von Mises return map of the deviatoric stress of the
  isochoric b (radial return to sqrt(2/3) yield_stress), no SVD needed;
- fluid: b is reset to J^(2/3) I, Kirchhoff stress K J (J - 1) I + J eta (C + C^T).
Kinematic shapes (tools, containers) act on grid velocities with Coulomb friction; the
domain walls are slip boundaries.

Particle state lives in a ring of substep rows (sim.mpm.chunks): two rows forward only,
chunk + 1 with gradients. Steps are checkpointed in numpy every ``checkpoint_every`` steps
(default: every step while they fit the checkpoint budget, sim.checkpoints); backward
recomputes a block's step starts from its checkpoint, then each step in chunks of
substeps, so memory is O(T / k + k) step states plus O(S / chunk + chunk) substep states.
Each row also keeps the grid its transfer's P2G made (the box's momenta and masses, a
grid tape), so a reverse substep puts the grid back instead of scattering again.
"""

from dataclasses import dataclass

import numpy as np
import taichi as ti
import torch

from sim import kernel_build
from sim.checkpoints import RING_BUDGET_BYTES, checkpoint_interval, substeps_per_chunk
from sim.errors import SimulationError
from sim.fem.spec import ShapeSpec
from sim.mpm.chunks import reverse_substeps
from sim.mpm.spec import MATERIAL_KINDS, MpmBodySpec, MpmGrid
from sim.sdf import collider_sdf, collider_size, shape_kinds
from sim.spec import COLLIDER_SHAPES
from sim.runtime import ensure_runtime, serial_loops, serial_scatter


SLIP_VELOCITY = 1e-3  # m/s: slower tangential sliding on a collider is smoothed (Coulomb's kink at 0)


@dataclass
class MpmTrajectory:
    """Shape positions at step boundaries (T+1, K, 3), differentiable; fixed rotations."""

    shape_pos: torch.Tensor
    shape_rot: np.ndarray | None = None  # (T+1, K, 3, 3)


@ti.data_oriented
class MpmSystem:
    def __init__(
        self,
        bodies: list[MpmBodySpec],
        grid: MpmGrid = MpmGrid(),
        shapes: list[ShapeSpec] = (),
        friction: float = 0.5,
        dt: float = 5e-5,
        substeps: int = 20,
        gravity=(0.0, 0.0, -9.81),
        requires_grad: bool = True,
        checkpoint_every: int | None = None,
        substep_chunk: int | None = None,
        contact_band: float = 0.0,
        tape_steps: int = 0,
        slots: int | None = None,
    ):
        """substep_chunk: substeps recomputed together in backward; the ring holds that many
        + 1 substep states. Default: all of them when such a ring fits ``RING_BUDGET_BYTES``
        (the backward then needs no extra forward pass to save chunk starts: 10-18% of the
        20k water block's forward+backward), else about the square root of ``substeps``.
        tape_steps: a rollout of at most this many steps keeps every substep's state in the
        ring (a tape of tape_steps x substeps + 1 rows, if that fits ``RING_BUDGET_BYTES``;
        otherwise no tape), and its backward reverses them without recomputing anything.
        A tape is used once: any other run on the system overwrites it, and its backward
        then recomputes from checkpoints as without one.
        contact_band (m): 0 makes shapes act on the grid nodes inside them only, so a node
        enters contact all at once and the result jumps with the shape's position at the
        scale of a cell. A positive band centred on a shape's surface lets its action fade
        in across the band instead, from none half the band outside to all of it half the
        band inside (1 - smoothstep, whose slope is 0 at both ends, so nodes crossing them
        leave the result differentiable); on average the surface stays where it is. The
        result then depends smoothly on the shape's pose, and a gradient reaches a tool
        just before it touches.
        slots: the ring's rows where an owner (sim.volumetric) keeps its own tape in them."""
        if not bodies:
            raise ValueError("an MPM system needs at least one body")
        self.runtime = ensure_runtime()
        self.serial = serial_scatter(self.runtime)
        self.on_cpu = self.runtime.arch in ("x64", "arm64")
        real = self.runtime.real
        self.bodies, self.grid, self.shapes = list(bodies), grid, list(shapes)
        self.dt, self.substeps, self.requires_grad = float(dt), int(substeps), requires_grad
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        self.checkpoint_every = checkpoint_every
        if substep_chunk is not None and not 1 <= substep_chunk <= substeps:
            raise ValueError(f"substep_chunk must be between 1 and substeps ({substeps}), got {substep_chunk}")
        self.grid_cells = grid_tape_cells(bodies, grid) if requires_grad else 0
        row_bytes = ring_row_bytes(bodies, grid, np.dtype(self.runtime.np_real).itemsize)
        self.tape_steps = tape_steps if requires_grad and (tape_steps * substeps + 1) * row_bytes <= RING_BUDGET_BYTES else 0
        if not requires_grad:
            self.chunk = 1
        elif substep_chunk is not None:
            self.chunk = substep_chunk
        else:
            self.chunk = substeps_per_chunk(substeps, row_bytes)
        self.slots = slots or max(self.chunk + 1, self.tape_steps * self.substeps + 1)
        self.row0 = 0  # the ring row of the current step's start (t x substeps on a tape)
        self.tape = None  # the rollout whose substep states the ring holds
        self.gravity = ti.Vector(list(gravity), dt=real)
        self.inv_dx, self.dx, self.n_grid = 1.0 / grid.dx, grid.dx, grid.resolution
        self.origin = ti.Vector(list(grid.origin), dt=real)
        pos = np.concatenate([b.positions for b in bodies])
        self.body_of_np = np.concatenate([np.full(len(b.positions), i, np.int32) for i, b in enumerate(bodies)])
        lo, hi = np.asarray(grid.origin) + 3 * grid.dx, np.asarray(grid.origin) + grid.size - 3 * grid.dx
        outside = np.any((pos < lo) | (pos > hi), axis=1)
        if outside.any():
            name = bodies[self.body_of_np[np.argmax(outside)]].name
            raise ValueError(f"MPM body {name!r} has particles outside the grid's interior [{lo}, {hi}]")
        self.n = len(pos)
        self.serial_loops = serial_loops(self.runtime, self.n)
        self.x0 = pos
        self.v0 = np.concatenate([np.broadcast_to(np.asarray(b.velocity, float), b.positions.shape) for b in bodies])
        self.n_shapes = len(self.shapes)
        if contact_band < 0:
            raise ValueError(f"contact_band must be at least 0 m, got {contact_band}")
        self.band = float(contact_band)

        S, P, B, K = self.substeps, self.n, len(bodies), max(self.n_shapes, 1)
        T = self.slots
        g = requires_grad
        self.x = ti.Vector.field(3, real, (T, P), needs_grad=g)
        self.v = ti.Vector.field(3, real, (T, P), needs_grad=g)
        self.C = ti.Matrix.field(3, 3, real, (T, P), needs_grad=g)
        self.b = ti.Matrix.field(3, 3, real, (T, P), needs_grad=g)
        self.tau = ti.Matrix.field(3, 3, real, (T, P))  # Kirchhoff stress of substep s
        self.fext = ti.Vector.field(3, real, (T, P), needs_grad=g)  # coupling force on each particle (N)
        n3 = (grid.resolution,) * 3
        self.grid_mv = ti.Vector.field(3, real, n3, needs_grad=g)
        self.grid_m = ti.field(real, n3, needs_grad=g)
        self.grid_v = ti.Vector.field(3, real, n3, needs_grad=g)
        # the cells the current transfer's particles reach, [lo, hi): grid loops and clears
        # run over these only (a block of water fills about 1% of a 64^3 grid). Outside it
        # momenta and masses are zero; velocities and adjoints left there by an earlier box
        # are never read (each transfer writes or clears its own box before reading it)
        self.lo = ti.field(ti.i32, 3)
        self.hi = ti.field(ti.i32, 3)
        if g:  # each ring row's grid after P2G: momenta and masses of its box, the box, whether it fit
            self.grid_tape = ti.Vector.field(4, real, (T, max(self.grid_cells, 1)))
            self.grid_box = ti.field(ti.i32, (T, 7))
            self.grid_taped = None  # grid_box's flags as numpy, read once per run of reverse substeps
            self.material_adjoint = ti.Vector.field(5, real, P)  # d loss / d (E, nu, viscosity, bulk, yield) of a step so far
        self.body = ti.field(ti.i32, P)
        self.kind = ti.field(ti.i32, B)
        self.mass = ti.field(real, B)
        self.vol = ti.field(real, B)
        self.E = ti.field(real, B, needs_grad=g)
        self.nu = ti.field(real, B, needs_grad=g)
        self.yield_stress = ti.field(real, B, needs_grad=g)
        self.bulk = ti.field(real, B, needs_grad=g)
        self.viscosity = ti.field(real, B, needs_grad=g)
        self.friction = ti.field(real, (), needs_grad=g)
        self.shape_p = ti.Vector.field(3, real, (S + 1, K), needs_grad=g)
        self.shape_R = ti.Matrix.field(3, 3, real, (S + 1, K))
        self.shape_kind = ti.field(ti.i32, K)
        self.shape_size = ti.Vector.field(3, real, K)

        npr = self.runtime.np_real
        self.body.from_numpy(self.body_of_np)
        self.kind.from_numpy(np.array([MATERIAL_KINDS[b.material.kind] for b in bodies], np.int32))
        self.mass.from_numpy(np.array([b.material.density * b.particle_volume for b in bodies], npr))
        self.vol.from_numpy(np.array([b.particle_volume for b in bodies], npr))
        self.mass_np = np.array([b.material.density * b.particle_volume for b in bodies])[self.body_of_np]
        self.shape_kinds = shape_kinds(sh.shape for sh in self.shapes)  # the collider_sdf branches kernels compile
        for k, sh in enumerate(self.shapes):
            self.shape_kind[k] = COLLIDER_SHAPES.index(sh.shape)
            self.shape_size[k] = collider_size(sh.shape, sh.size, sh.sdf)
        self.friction[None] = friction
        self.set_params()

    def set_params(self, youngs=None, poisson=None, yield_stress=None, viscosity=None, friction=None) -> None:
        mats = [b.material for b in self.bodies]
        npr = self.runtime.np_real
        pick = lambda v, name: np.asarray([getattr(m, name) for m in mats] if v is None else v, npr)  # noqa: E731
        self.E.from_numpy(pick(youngs, "youngs_modulus"))
        self.nu.from_numpy(pick(poisson, "poisson_ratio"))
        self.yield_stress.from_numpy(pick(yield_stress, "yield_stress"))
        self.viscosity.from_numpy(pick(viscosity, "viscosity"))
        self.bulk.from_numpy(pick(None, "bulk_modulus"))
        if friction is not None:
            self.friction[None] = float(friction)

    # --- kernels ---------------------------------------------------------------------
    @ti.func
    def _lame(self, body):
        E, nu = self.E[body], self.nu[body]
        return E / (2.0 * (1.0 + nu)), E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))

    @ti.func
    def _deviator(self, bt, J, mu, body):
        """Von Mises terms of a trial b: J^(-2/3), the isochoric b, a third of its trace, the
        deviatoric stress, its norm and the yield limit on that norm."""
        jm = J ** (-2.0 / 3.0)
        bbar = jm * bt
        tr3 = bbar.trace() / 3.0
        dev = mu * (bbar - tr3 * ti.Matrix.identity(float, 3))
        norm = ti.sqrt((dev * dev).sum() + 1e-30)
        return jm, bbar, tr3, dev, norm, ti.sqrt(2.0 / 3.0) * self.yield_stress[body]

    @ti.func
    def _stress(self, bt, Cp, body):
        """Projected elastic b and Kirchhoff stress of a trial b."""
        kind = self.kind[body]
        mu, lam = self._lame(body)
        eye = ti.Matrix.identity(float, 3)
        J = ti.sqrt(bt.determinant())
        bn = bt
        tau = mu * (bt - eye) + lam * ti.log(J) * eye
        if kind == 1:  # von Mises radial return on the isochoric part
            jm, bbar, tr3, dev, norm, limit = self._deviator(bt, J, mu, body)
            if norm > limit:
                dev = dev * (limit / norm)
                bn = (dev / mu + tr3 * eye) / jm
            tau = mu * (bn - eye) + lam * ti.log(J) * eye
        elif kind == 2:
            bn = J ** (2.0 / 3.0) * eye
            tau = self.bulk[body] * J * (J - 1.0) * eye + J * self.viscosity[body] * (Cp + Cp.transpose())
        return bn, tau

    @ti.kernel
    def constitutive(self, s: ti.i32, o: ti.i32):
        """b[o] and tau[s] from b[s], C[s]. Small enough for Taichi's reverse mode."""
        ti.loop_config(serialize=self.serial_loops)
        for p in range(self.n):
            Cp = self.C[s, p]
            A = ti.Matrix.identity(float, 3) + self.dt * Cp
            bn, tau = self._stress(A @ self.b[s, p] @ A.transpose(), Cp, self.body[p])
            self.b[o, p] = bn
            self.tau[s, p] = tau

    @ti.func
    def _constitutive_reverse(self, body, Cp, bp, G_bn, G_tau):
        """Hand-written reverse of ``constitutive`` for one particle (Taichi's takes ~40 CPU-s
        to compile): from the adjoints of its new b and of its stress, the adjoint of its b,
        the part of its C's, and the adjoints of its body's E, nu, viscosity, bulk modulus
        and yield stress."""
        kind = self.kind[body]
        eye = ti.Matrix.identity(float, 3)
        A = eye + self.dt * Cp
        bt = A @ bp @ A.transpose()
        E, nu = self.E[body], self.nu[body]
        mu, lam = self._lame(body)
        J = ti.sqrt(bt.determinant())
        tr_gt = G_tau.trace()
        g_bt = ti.Matrix.zero(float, 3, 3)
        g_C = ti.Matrix.zero(float, 3, 3)
        g_J, g_mu, g_lam, g_visc, g_bulk, g_yield = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        if kind == 2:  # fluid
            sym = Cp + Cp.transpose()
            eta, K = self.viscosity[body], self.bulk[body]
            g_J = 2.0 / 3.0 * J ** (-1.0 / 3.0) * G_bn.trace() + K * (2.0 * J - 1.0) * tr_gt + eta * (G_tau * sym).sum()
            g_C = J * eta * (G_tau + G_tau.transpose())
            g_visc = J * (G_tau * sym).sum()
            g_bulk = J * (J - 1.0) * tr_gt
        else:
            g_lam = tr_gt * ti.log(J)
            g_J = lam * tr_gt / J
            bn = bt
            plastic = False
            jm, bbar, tr3, dev, norm, limit = 0.0, eye, 0.0, eye, 1.0, 0.0
            if kind == 1:
                jm, bbar, tr3, dev, norm, limit = self._deviator(bt, J, mu, body)
                if norm > limit:
                    plastic = True
                    bn = (dev * (limit / norm) / mu + tr3 * eye) / jm
            G_bnt = G_bn + mu * G_tau  # tau = mu (bn - I) + lam log(J) I
            g_mu = (G_tau * (bn - eye)).sum()
            if plastic:
                u = dev / norm
                Y = bn * jm
                g_Y = G_bnt / jm
                g_J += 2.0 / 3.0 / (jm * J) * (G_bnt * Y).sum()
                g_dev_new = g_Y / mu
                g_mu -= (g_Y * (u * limit)).sum() / (mu * mu)
                g_limit = (g_dev_new * u).sum()
                g_yield = ti.sqrt(2.0 / 3.0) * g_limit
                g_dev = (limit / norm) * (g_dev_new - g_limit * u)
                g_mu += (g_dev * (bbar - tr3 * eye)).sum()
                g_bbar = mu * (g_dev - g_dev.trace() / 3.0 * eye) + g_Y.trace() / 3.0 * eye
                g_bt = jm * g_bbar
                g_J += (g_bbar * bt).sum() * (-2.0 / 3.0) * jm / J
            else:
                g_bt = G_bnt
        g_bt += g_J * 0.5 * J * bt.inverse()
        d = (1.0 + nu) * (1.0 - 2.0 * nu)
        g_E = g_mu / (2.0 * (1.0 + nu)) + g_lam * nu / d
        g_nu = -g_mu * E / (2.0 * (1.0 + nu) ** 2) + g_lam * E * (1.0 + 2.0 * nu * nu) / (d * d)
        g_material = ti.Vector([g_E, g_nu, g_visc, g_bulk, g_yield])
        return A.transpose() @ g_bt @ A, g_C + self.dt * (g_bt + g_bt.transpose()) @ A @ bp, g_material

    @ti.func
    def _kernel_weights(self, xp):
        """Base cell, fractional position and quadratic B-spline weights (and their
        derivatives) of a particle, in cell units."""
        xc = (xp - self.origin) * self.inv_dx
        # clamped so a particle that blew out of the grid cannot write outside it; the
        # per-step check then reports the blow-up
        base = ti.max(ti.min(ti.cast(xc - 0.5, ti.i32), self.n_grid - 3), 0)
        fx = xc - base
        w = ti.Matrix.rows([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2])
        dw = ti.Matrix.rows([fx - 1.5, -2.0 * (fx - 1.0), fx - 0.5])
        return base, fx, w, dw

    @ti.kernel
    def p2g(self, s: ti.i32):
        """Scatter to the grid; ``lo``, ``hi`` become the box of cells the stencils cover."""
        for d in ti.static(range(3)):
            self.lo[d] = self.n_grid
            self.hi[d] = 0
        ti.loop_config(serialize=self.serial)
        for p in range(self.n):
            base, fx, w, _ = self._kernel_weights(self.x[s, p])
            for d in ti.static(range(3)):
                ti.atomic_min(self.lo[d], base[d])
                ti.atomic_max(self.hi[d], base[d] + 3)
            body = self.body[p]
            m = self.mass[body]
            affine = -self.dt * self.vol[body] * 4.0 * self.inv_dx * self.inv_dx * self.tau[s, p] + m * self.C[s, p]
            mv = m * self.v[s, p] + self.dt * self.fext[s, p]
            for i, j, k in ti.static(ti.ndrange(3, 3, 3)):
                offset = ti.Vector([i, j, k])
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                self.grid_mv[base + offset] += weight * (mv + affine @ ((offset - fx) * self.dx))
                self.grid_m[base + offset] += weight * m

    @ti.kernel
    def clear_box(self, adjoints: ti.template()):
        """Zero the box's momenta and masses, or (``adjoints``) the grid's adjoints in it."""
        ti.loop_config(serialize=self.serial_loops)
        for i, j, k in ti.ndrange((self.lo[0], self.hi[0]), (self.lo[1], self.hi[1]), (self.lo[2], self.hi[2])):
            if ti.static(adjoints):
                self.grid_mv.grad[i, j, k] = ti.Vector.zero(float, 3)
                self.grid_m.grad[i, j, k] = 0.0
                self.grid_v.grad[i, j, k] = ti.Vector.zero(float, 3)
            else:
                self.grid_mv[i, j, k] = ti.Vector.zero(float, 3)
                self.grid_m[i, j, k] = 0.0

    @ti.func
    def _box_cell(self, i, j, k):
        """Cell (i, j, k)'s index in the box [lo, hi), row by row."""
        return ((i - self.lo[0]) * (self.hi[1] - self.lo[1]) + j - self.lo[1]) * (self.hi[2] - self.lo[2]) + k - self.lo[2]

    @ti.kernel
    def tape_grid(self, r: ti.i32):
        """Keep the grid P2G left (row r's) in tape row r, if its box fits."""
        cells = (self.hi[0] - self.lo[0]) * (self.hi[1] - self.lo[1]) * (self.hi[2] - self.lo[2])
        for d in ti.static(range(3)):
            self.grid_box[r, d] = self.lo[d]
            self.grid_box[r, 3 + d] = self.hi[d]
        self.grid_box[r, 6] = ti.cast(cells <= self.grid_cells, ti.i32)
        ti.loop_config(serialize=self.serial_loops)
        for i, j, k in ti.ndrange((self.lo[0], self.hi[0]), (self.lo[1], self.hi[1]), (self.lo[2], self.hi[2])):
            if self.grid_box[r, 6]:
                c = self._box_cell(i, j, k)
                mv = self.grid_mv[i, j, k]
                self.grid_tape[r, c] = ti.Vector([mv[0], mv[1], mv[2], self.grid_m[i, j, k]])

    @ti.kernel
    def restore_grid(self, r: ti.i32):
        """Put back the grid and box that tape row r holds (as P2G from row r would), and zero
        the grid's adjoints in the box (clear_box(True) in the same pass)."""
        for d in ti.static(range(3)):
            self.lo[d] = self.grid_box[r, d]
            self.hi[d] = self.grid_box[r, 3 + d]
        ti.loop_config(serialize=self.serial_loops)
        for i, j, k in ti.ndrange((self.lo[0], self.hi[0]), (self.lo[1], self.hi[1]), (self.lo[2], self.hi[2])):
            c = self._box_cell(i, j, k)
            q = self.grid_tape[r, c]
            self.grid_mv[i, j, k] = ti.Vector([q[0], q[1], q[2]])
            self.grid_m[i, j, k] = q[3]
            self.grid_mv.grad[i, j, k] = ti.Vector.zero(float, 3)
            self.grid_m.grad[i, j, k] = 0.0
            self.grid_v.grad[i, j, k] = ti.Vector.zero(float, 3)

    @ti.kernel
    def grid_op(self, s: ti.i32, consume: ti.template()):
        """Every cell's velocity in the box (zero where empty) from its momentum, gravity, the
        shapes at substep s and the domain walls. ``consume`` (forward only, never
        differentiated) also zeroes the momenta and masses it read: the grid is left clean
        for the next P2G without another pass."""
        ti.loop_config(serialize=self.serial_loops)
        for i, j, k in ti.ndrange((self.lo[0], self.hi[0]), (self.lo[1], self.hi[1]), (self.lo[2], self.hi[2])):
            I = ti.Vector([i, j, k])
            m = self.grid_m[I]
            v = ti.Vector([0.0, 0.0, 0.0])
            if m > 0:
                v = self.grid_mv[I] / m + self.dt * self.gravity
                pos = self.origin + I * self.dx
                for k in ti.static(range(self.n_shapes)):
                    v = self._collide(s, k, pos, v)
                for d in ti.static(range(3)):
                    if I[d] < 3 and v[d] < 0:
                        v[d] = 0.0
                    if I[d] > self.n_grid - 3 and v[d] > 0:
                        v[d] = 0.0
                if ti.static(consume):
                    self.grid_mv[I] = ti.Vector([0.0, 0.0, 0.0])
                    self.grid_m[I] = 0.0
            self.grid_v[I] = v

    @ti.func
    def _collide(self, s, k, pos, v):
        R, p = self.shape_R[s, k], self.shape_p[s, k]
        q = R.transpose() @ (pos - p)
        phi, nl = collider_sdf(self.shape_kind[k], self.shape_size[k], q, self.shape_kinds)
        out = v
        if phi < 0.5 * self.band:
            n = R @ nl
            v_shape = (self.shape_R[s + 1, k] @ q + self.shape_p[s + 1, k] - pos) / self.dt
            vr = v - v_shape
            vn = vr.dot(n)
            if vn < 0:  # approaching: drop the normal part, Coulomb-limit the tangential
                vt = vr - vn * n
                speed = ti.sqrt(vt.dot(vt) + SLIP_VELOCITY**2)  # smoothed: finite derivative at zero slip
                held = v_shape + vt * ti.max(0.0, 1.0 + self.friction[None] * vn / speed)
                if ti.static(self.band > 0):  # across the band: part of the way
                    r = ti.max(phi / self.band + 0.5, 0.0)
                    out = v + (1.0 - r * r * (3.0 - 2.0 * r)) * (held - v)
                else:
                    out = held
        return out

    @ti.kernel
    def g2p(self, s: ti.i32, o: ti.i32):
        ti.loop_config(serialize=self.serial_loops)
        for p in range(self.n):
            base, fx, w, _ = self._kernel_weights(self.x[s, p])
            new_v = ti.Vector.zero(float, 3)
            new_C = ti.Matrix.zero(float, 3, 3)
            for i, j, k in ti.static(ti.ndrange(3, 3, 3)):
                offset = ti.Vector([i, j, k])
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                gv = self.grid_v[base + offset]
                new_v += weight * gv
                new_C += 4.0 * self.inv_dx * weight * gv.outer_product(offset - fx)
            self.v[o, p] = new_v
            self.C[o, p] = new_C
            self.x[o, p] = self.x[s, p] + self.dt * new_v

    @ti.kernel
    def g2p_scatter_adjoint(self, s: ti.i32, o: ti.i32):
        """Grid half of ``g2p``'s reverse: the new velocities' and affine velocities'
        adjoints onto grid_v.grad. A scatter like P2G's, serial on small CPUs for the same
        reason (in parallel its float64 atomics took 5x P2G's time)."""
        ti.loop_config(serialize=self.serial)
        for p in range(self.n):
            base, fx, w, _ = self._kernel_weights(self.x[s, p])
            G_C = 4.0 * self.inv_dx * self.C.grad[o, p]
            at_base = self.v.grad[o, p] + self.dt * self.x.grad[o, p] - G_C @ fx
            for i, j, k in ti.static(ti.ndrange(3, 3, 3)):
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                self.grid_v.grad[base + ti.Vector([i, j, k])] += weight * (at_base + G_C @ ti.Vector([i, j, k]))

    @ti.kernel
    def particle_adjoint(self, s: ti.i32, o: ti.i32):
        """Particle half of the substep's reverse, after grid_op's: adjoints of substep s's
        x, v, C, b and fext, from the grid's momentum and mass adjoints (P2G's reverse), from
        the new state's adjoints through the grid velocities (G2P's), in one pass over each
        particle's 27 nodes, then through the stress (the constitutive update's reverse).
        Offsets from the base cell are compile-time integers, so products with them are
        written as such (offset - fx terms split). The material adjoints are left per
        particle, summed over the step's substeps, for ``sum_material_adjoints``: a parallel
        loop's atomic adds to one address queue on a CPU."""
        ti.loop_config(serialize=self.serial_loops)
        for p in range(self.n):
            base, fx, w, dw = self._kernel_weights(self.x[s, p])
            body = self.body[p]
            m = self.mass[body]
            k_tau = -self.dt * self.vol[body] * 4.0 * self.inv_dx * self.inv_dx
            Cp = self.C[s, p]
            A = (k_tau * self.tau[s, p] + m * Cp) * self.dx  # P2G's affine, per cell unit
            at_base = m * self.v[s, p] + self.dt * self.fext[s, p] - A @ fx  # momentum to a node: at_base + A @ offset
            G_v = self.v.grad[o, p] + self.dt * self.x.grad[o, p]
            G_C = 4.0 * self.inv_dx * self.C.grad[o, p]
            G_C_base = -G_C @ fx
            S0 = ti.Vector.zero(float, 3)  # sum of weight x momentum adjoint
            S1 = ti.Matrix.zero(float, 3, 3)  # sum of weight x momentum adjoint (x) offset
            Sv = ti.Vector.zero(float, 3)  # sum of weight x grid velocity (the new v)
            g_fx = ti.Vector.zero(float, 3)
            for i, j, k in ti.static(ti.ndrange(3, 3, 3)):
                I = base + ti.Vector([i, j, k])
                off = ti.Vector([i, j, k], dt=float)
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                dweight = ti.Vector([dw[i, 0] * w[j, 1] * w[k, 2], w[i, 0] * dw[j, 1] * w[k, 2], w[i, 0] * w[j, 1] * dw[k, 2]])
                G, gv = self.grid_mv.grad[I], self.grid_v[I]
                wG = weight * G
                S0 += wG
                S1 += wG.outer_product(off)
                Sv += weight * gv
                q = G.dot(at_base + A @ off) + self.grid_m.grad[I] * m + gv.dot(G_v + G_C_base + G_C @ off)
                g_fx += q * dweight
            g_fx -= A.transpose() @ S0 + G_C.transpose() @ Sv
            g_affine = (S1 - S0.outer_product(fx)) * self.dx
            g_b, g_C, g_material = self._constitutive_reverse(body, Cp, self.b[s, p], self.b.grad[o, p], k_tau * g_affine)
            self.material_adjoint[p] += g_material
            # the first writes to row s's adjoints in a reverse substep: set, not added, so
            # rows are never cleared (later kernels add to them)
            self.v.grad[s, p] = m * S0
            self.fext.grad[s, p] = self.dt * S0
            self.x.grad[s, p] = self.x.grad[o, p] + g_fx * self.inv_dx
            self.C.grad[s, p] = m * g_affine + g_C
            self.b.grad[s, p] = g_b

    def clear_param_grads(self) -> None:
        """Zero the material adjoints (and a step's per-particle sums, should a backward have
        stopped within one)."""
        for f in (self.E, self.nu, self.yield_stress, self.viscosity, self.friction):
            f.grad.fill(0)
        self.material_adjoint.fill(0)

    @ti.kernel
    def sum_material_adjoints(self):
        """Move the particles' material adjoints to their bodies' (on a CPU in order:
        deterministic, and quicker than threads' atomic adds to a few addresses)."""
        ti.loop_config(serialize=self.on_cpu)
        for p in range(self.n):
            body, g = self.body[p], self.material_adjoint[p]
            self.material_adjoint[p] = ti.Vector.zero(float, 5)
            self.E.grad[body] += g[0]
            self.nu.grad[body] += g[1]
            self.viscosity.grad[body] += g[2]
            self.bulk.grad[body] += g[3]
            self.yield_stress.grad[body] += g[4]

    @ti.kernel
    def _load(self, s: ti.i32, x: ti.types.ndarray(), v: ti.types.ndarray(), C: ti.types.ndarray(), b: ti.types.ndarray()):
        for p in range(self.n):
            for i in ti.static(range(3)):
                self.x[s, p][i] = x[p, i]
                self.v[s, p][i] = v[p, i]
                for j in ti.static(range(3)):
                    self.C[s, p][i, j] = C[p, i, j]
                    self.b[s, p][i, j] = b[p, i, j]

    @ti.kernel
    def _save(self, s: ti.i32, x: ti.types.ndarray(), v: ti.types.ndarray(), C: ti.types.ndarray(), b: ti.types.ndarray()):
        for p in range(self.n):
            for i in ti.static(range(3)):
                x[p, i] = self.x[s, p][i]
                v[p, i] = self.v[s, p][i]
                for j in ti.static(range(3)):
                    C[p, i, j] = self.C[s, p][i, j]
                    b[p, i, j] = self.b[s, p][i, j]

    @ti.kernel
    def _save_grad(self, s: ti.i32, x: ti.types.ndarray(), v: ti.types.ndarray(), C: ti.types.ndarray(), b: ti.types.ndarray()):
        for p in range(self.n):
            for i in ti.static(range(3)):
                x[p, i] = self.x.grad[s, p][i]
                v[p, i] = self.v.grad[s, p][i]
                for j in ti.static(range(3)):
                    C[p, i, j] = self.C.grad[s, p][i, j]
                    b[p, i, j] = self.b.grad[s, p][i, j]

    @ti.kernel
    def _load_grad(self, s: ti.i32, x: ti.types.ndarray(), v: ti.types.ndarray(), C: ti.types.ndarray(), b: ti.types.ndarray()):
        for p in range(self.n):
            for i in ti.static(range(3)):
                self.x.grad[s, p][i] = x[p, i]
                self.v.grad[s, p][i] = v[p, i]
                for j in ti.static(range(3)):
                    self.C.grad[s, p][i, j] = C[p, i, j]
                    self.b.grad[s, p][i, j] = b[p, i, j]

    # --- steps ---------------------------------------------------------------------------
    def initial_state(self) -> tuple[np.ndarray, ...]:
        eye = np.broadcast_to(np.eye(3), (self.n, 3, 3)).copy()
        return self.x0.copy(), self.v0.copy(), np.zeros((self.n, 3, 3)), eye

    def slot(self, s: int) -> int:
        """The ring row holding the state before substep s of the current step."""
        return self.row0 + s % self.slots

    # Grid momenta and masses are zero between transfers (P2G adds into them).
    def transfer(self, s: int) -> None:
        """Particles to grid, grid update (shapes at substep s), grid to particles. With
        gradients, the grid after P2G is kept on the grid tape's row of substep s's state."""
        i, o = self.slot(s), self.slot(s + 1)
        self.p2g(i)
        if self.requires_grad:
            self.tape_grid(i)
            self.grid_taped = None
        self.grid_op(s, True)
        self.g2p(i, o)

    def substep(self, s: int) -> None:
        """The stress of substep s's state (the constitutive update), then its transfer."""
        self.constitutive(self.slot(s), self.slot(s + 1))
        self.transfer(s)

    def reverse_substep(self, s: int) -> None:
        """Reverse of ``substep`` (its grid put back from the tape, or recomputed where it
        did not fit): new-state adjoints into the adjoints of substep s's state and coupling
        force. The last transfer from substep s's row must have been substep s's
        (sim.mpm.chunks' protocol: a reverse substep follows its forward)."""
        i, o = self.slot(s), self.slot(s + 1)
        if self.grid_taped is None:
            self.grid_taped = self.grid_box.to_numpy()[:, 6]
        if self.grid_taped[i]:
            self.restore_grid(i)
        else:
            self.p2g(i)
            self.clear_box(True)
        self.grid_op(s, False)
        with kernel_build.without_ir_passes():
            self.g2p_scatter_adjoint(i, o)
        self.grid_op.grad(s, False)
        with kernel_build.without_ir_passes():
            self.particle_adjoint(i, o)
        if s == 0:  # the last substep of a step to be reversed (in chunks too): once a step, not every substep
            self.sum_material_adjoints()
        self.clear_box(False)

    def save_slot(self, r: int) -> tuple[np.ndarray, ...]:
        """(x, v, C, b) of ring row r, float64."""
        npr = self.runtime.np_real
        out = (np.empty((self.n, 3), npr), np.empty((self.n, 3), npr), np.empty((self.n, 3, 3), npr), np.empty((self.n, 3, 3), npr))
        self._save(r, *out)
        return tuple(a.astype(np.float64) for a in out)

    def load_slot(self, r: int, state) -> None:
        self.tape = None  # a new run overwrites the ring
        self._load(r, *(np.ascontiguousarray(a, self.runtime.np_real) for a in state))

    def clear_state_grads(self) -> None:
        """Nothing to clear: a reverse substep sets its row's adjoints before adding to them."""

    def load_adjoint(self, r: int, adj) -> None:
        self._load_grad(r, *(np.ascontiguousarray(a, self.runtime.np_real) for a in adj))

    def read_adjoint(self, r: int) -> list[np.ndarray]:
        npr = self.runtime.np_real
        out = [np.empty((self.n, 3), npr), np.empty((self.n, 3), npr), np.empty((self.n, 3, 3), npr), np.empty((self.n, 3, 3), npr)]
        self._save_grad(r, *out)
        return [a.astype(np.float64) for a in out]

    def _start(self, state, poses) -> None:
        """Load a step: its start state into row 0 and the shapes' substep poses."""
        self.row0 = 0
        self.load_slot(0, state)
        self._load_poses(poses)

    def _load_poses(self, poses) -> None:
        npr = self.runtime.np_real
        sp, sR = poses
        self.shape_p.from_numpy(sp.astype(npr))
        self.shape_R.from_numpy(sR.astype(npr))

    def _taped_steps(self, state, sps, sRs, steps: int, every: int, owner):
        """Forward on the tape: step t's substeps in rows t x S .. (t + 1) x S. Returns the
        start states of every ``every``-th step (checkpoints, should the tape be
        overwritten before the backward) and the final state."""
        S, blocks = self.substeps, []
        self.row0 = 0
        self.load_slot(0, state)
        for t in range(steps):
            if t % every == 0:
                blocks.append(state)
            self.row0 = t * S
            self._load_poses((sps[t], sRs[t]))
            for s in range(S):
                self.substep(s)
            state = self.save_slot(self.slot(S))
            self._check(t, state[0])
        self.row0, self.tape = 0, owner
        return blocks, state

    def _reverse_tape(self, steps: int, sps, sRs, adj, g_shape, w):
        """Backward over the tape's rows, last step first; the state adjoint at the start.
        A step's first row is the previous step's last, so its adjoint stays in place."""
        S = self.substeps
        self.load_adjoint(steps * S, adj)
        for t in reversed(range(steps)):
            self.row0 = t * S
            self._load_poses((sps[t], sRs[t]))
            self.shape_p.grad.fill(0)
            for s in reversed(range(S)):
                self.reverse_substep(s)
            gs = self.shape_p.grad.to_numpy().astype(np.float64)
            g_shape[t] += ((1 - w) * gs).sum(0)
            g_shape[t + 1] += (w * gs).sum(0)
        self.row0, self.tape = 0, None
        return self.read_adjoint(0)

    def _step(self, state, poses) -> tuple[np.ndarray, ...]:
        self._start(state, poses)
        for s in range(self.substeps):
            self.substep(s)
        return self.save_slot(self.slot(self.substeps))

    def _poses(self, traj: MpmTrajectory | None, steps: int):
        S, K = self.substeps, max(self.n_shapes, 1)
        if traj is None or self.n_shapes == 0:
            return np.zeros((steps, S + 1, K, 3)), np.broadcast_to(np.eye(3), (steps, S + 1, K, 3, 3))
        from sim.fem.solver import _substep_rotations

        sp = traj.shape_pos.detach().cpu().numpy().astype(np.float64)
        if sp.shape != (steps + 1, self.n_shapes, 3):
            raise ValueError(f"shape_pos must have shape ({steps + 1}, {self.n_shapes}, 3), got {sp.shape}")
        w = np.linspace(0.0, 1.0, S + 1)[None, :, None, None]
        sps = sp[:-1, None] * (1 - w) + sp[1:, None] * w
        rot = np.broadcast_to(np.eye(3), (steps + 1, self.n_shapes, 3, 3)) if traj.shape_rot is None else traj.shape_rot
        return sps, _substep_rotations(np.asarray(rot), S)

    def _check(self, step: int, x: np.ndarray) -> None:
        lo = np.asarray(self.grid.origin) + 2 * self.dx
        hi = np.asarray(self.grid.origin) + self.grid.size - 2 * self.dx
        bad = ~np.all(np.isfinite(x), axis=1) | np.any((x < lo) | (x > hi), axis=1)
        if bad.any():
            name = self.bodies[self.body_of_np[np.argmax(bad)]].name
            raise SimulationError(step, name, "position", float("nan"), "blew up (NaN/inf or left the grid)")

    def run(self, steps: int, traj: MpmTrajectory | None = None, state=None, record=None):
        """Forward only: the final state (x, v, C, b) and positions at ``record`` steps."""
        sps, sRs = self._poses(traj, steps)
        state = self.initial_state() if state is None else state
        frames = {}
        for t in range(steps):
            state = self._step(state, (sps[t], sRs[t]))
            self._check(t, state[0])
            if record is not None and t + 1 in record:
                frames[t + 1] = state[0]
        return state, frames

    def rollout(self, steps: int, traj: MpmTrajectory | None = None, youngs=None, poisson=None, yield_stress=None, viscosity=None, friction=None, velocity=None):
        """Differentiable run; returns final particle positions and velocities (P, 3)
        w.r.t. shape keyframes, material parameters (per body), friction and the initial
        velocity (P, 3)."""
        if not self.requires_grad:
            raise RuntimeError("this MPM system was built with requires_grad=False")
        mats = [b.material for b in self.bodies]
        t = lambda v, name: torch.as_tensor([getattr(m, name) for m in mats] if v is None else v, dtype=torch.float64)  # noqa: E731
        friction = torch.as_tensor(self.friction[None] if friction is None else friction, dtype=torch.float64)
        velocity = torch.as_tensor(self.v0 if velocity is None else velocity, dtype=torch.float64)
        shape_pos = traj.shape_pos if traj is not None else torch.zeros(steps + 1, 0, 3, dtype=torch.float64)
        return _MpmRollout.apply(
            self, steps, traj, shape_pos, t(youngs, "youngs_modulus"), t(poisson, "poisson_ratio"), t(yield_stress, "yield_stress"), t(viscosity, "viscosity"), friction, velocity
        )

    def checkpoint_interval(self, steps: int) -> int:
        """Steps between a rollout's checkpoints: ``checkpoint_every``, or by default every
        step while the states fit the budget (sim.checkpoints)."""
        return self.checkpoint_every or checkpoint_interval(steps, self.n * 24 * 8)  # x, v, C, b in float64

    def backward(self, steps, traj, block_states, gx, gv, tape=None):
        """Gradients of a rollout; ``tape``: its owner, whose substep states the ring may
        still hold (then nothing is recomputed)."""
        sps, sRs = self._poses(traj, steps)
        S, k = self.substeps, self.checkpoint_interval(steps)
        params = (self.E, self.nu, self.yield_stress, self.viscosity, self.friction)
        self.clear_param_grads()
        adj = [gx, gv, np.zeros((self.n, 3, 3)), np.zeros((self.n, 3, 3))]
        g_shape = np.zeros((steps + 1, max(self.n_shapes, 1), 3))
        w = np.linspace(0.0, 1.0, S + 1)[:, None, None]
        if tape is not None and self.tape is tape:
            block_states = []  # nothing to recompute
            adj = self._reverse_tape(steps, sps, sRs, adj, g_shape, w)
        for block in reversed(range(len(block_states))):
            first = block * k
            starts = [block_states[block]]
            for t in range(first, min(first + k, steps) - 1):
                starts.append(self._step(starts[-1], (sps[t], sRs[t])))
            for t in reversed(range(first, min(first + k, steps))):
                self._start(starts[t - first], (sps[t], sRs[t]))
                self.shape_p.grad.fill(0)
                adj = reverse_substeps(self, S, self.chunk, adj)
                gs = self.shape_p.grad.to_numpy().astype(np.float64)
                g_shape[t] += ((1 - w) * gs).sum(0)
                g_shape[t + 1] += (w * gs).sum(0)
        grads = [f.grad.to_numpy().astype(np.float64) for f in params]
        return g_shape[:, : self.n_shapes], grads, adj[1]


def ring_row_bytes(bodies: list[MpmBodySpec], grid: MpmGrid, itemsize: int) -> int:
    """Bytes of one ring row with gradients: each particle's x, v, C, b, tau and fext (36
    reals) and their adjoints but tau's (27), and the row's grid tape (4 reals a cell)."""
    return (sum(len(b.positions) for b in bodies) * 63 + 4 * grid_tape_cells(bodies, grid)) * itemsize


def grid_tape_cells(bodies: list[MpmBodySpec], grid: MpmGrid) -> int:
    """Cells a grid-tape row holds: eight times the box the bodies' P2G covers at the start
    (room for the box to double along each axis), at most the whole grid. A transfer
    whose box outgrows it is recomputed in the backward instead."""
    x = np.concatenate([b.positions for b in bodies])
    base = np.floor((x - np.asarray(grid.origin)) / grid.dx - 0.5).astype(int)
    box = np.prod(base.max(0) - base.min(0) + 3)
    return int(min(8 * box, grid.resolution**3))


class _MpmRollout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sim: MpmSystem, steps, traj, shape_pos, E, nu, ys, visc, friction, velocity):
        sim.set_params(E.numpy(), nu.numpy(), ys.numpy(), visc.numpy(), float(friction))
        sps, sRs = sim._poses(traj, steps)
        x0, _, C0, b0 = sim.initial_state()
        state = (x0, velocity.detach().numpy().astype(np.float64), C0, b0)
        blocks, every = [], sim.checkpoint_interval(steps)
        if steps <= sim.tape_steps:
            blocks, state = sim._taped_steps(state, sps, sRs, steps, every, ctx)
        else:
            for t in range(steps):
                if t % every == 0:
                    blocks.append(state)
                state = sim._step(state, (sps[t], sRs[t]))
                sim._check(t, state[0])
        ctx.sim, ctx.steps, ctx.traj, ctx.blocks = sim, steps, traj, blocks
        ctx.params = (E.numpy(), nu.numpy(), ys.numpy(), visc.numpy(), float(friction))
        ctx.shape_shape = shape_pos.shape
        return torch.from_numpy(state[0]), torch.from_numpy(state[1])

    @staticmethod
    def backward(ctx, gx, gv):
        sim = ctx.sim
        sim.set_params(*ctx.params)
        zero = np.zeros((sim.n, 3))
        gx = zero if gx is None else gx.numpy()
        gv = zero if gv is None else gv.numpy()
        g_shape, (gE, gnu, gys, gvisc, gfr), g_v0 = sim.backward(ctx.steps, ctx.traj, ctx.blocks, gx, gv, tape=ctx)
        t = torch.from_numpy
        return None, None, None, t(g_shape).reshape(ctx.shape_shape), t(gE), t(gnu), t(gys), t(gvisc), torch.tensor(float(gfr)), t(g_v0)
