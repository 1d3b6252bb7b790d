"""Explicit, differentiable FEM for tactile pads and soft bodies.

Stable Neo-Hookean elasticity (Smith et al. 2018, log-free form: Psi = mu/2 (I_C - 3) +
lam'/2 (J - alpha)^2 with lam' = lam + mu, alpha = 1 + mu/lam', which matches linear
elasticity at rest and stays finite under inversion), lumped masses, semi-implicit Euler,
mass-proportional damping relative to each body's driven frame, and penalty contact with
smoothed Coulomb friction against moving rigid shapes.

State lives in Taichi fields indexed by substep within one step (a segment; a system
built with fewer ``slots`` uses them as a ring, sim.mpm.chunks); steps are checkpointed in
numpy at their boundaries and recomputed during backward, so memory grows with the horizon
only by one (x, v) copy per step. Driven poses are indexed by substep, state by slot. ``rollout`` wraps it all in a
``torch.autograd.Function`` whose inputs are the driven poses of bodies and shapes at step
boundaries and the material/contact parameters.
"""


from dataclasses import dataclass

import numpy as np
import taichi as ti
import torch

from sim.coupling import DAMPING_CAP
from sim.errors import SimulationError
from sim.fem.mesh import tet_volumes
from sim.fem.spec import ContactParams, FemBodySpec, ShapeSpec, quat_to_matrix
from sim.sdf import collider_sdf, collider_size, shape_kinds
from sim.spec import COLLIDER_SHAPES
from sim.runtime import ensure_runtime, serial_loops, serial_scatter


@dataclass
class Trajectory:
    """Driven poses at step boundaries (index 0 = initial). Positions are differentiable
    torch tensors; rotations are fixed numpy matrices (identity when None)."""

    body_pos: torch.Tensor  # (T+1, B, 3)
    shape_pos: torch.Tensor  # (T+1, K, 3)
    body_rot: np.ndarray | None = None  # (T+1, B, 3, 3)
    shape_rot: np.ndarray | None = None  # (T+1, K, 3, 3)


def _substep_rotations(rot: np.ndarray, substeps: int) -> np.ndarray:
    """(T+1, n, 3, 3) -> (T, S+1, n, 3, 3): rotations slerped across each step."""
    from scipy.spatial.transform import Rotation, Slerp

    t_count, n = rot.shape[0] - 1, rot.shape[1]
    out = np.empty((t_count, substeps + 1, n, 3, 3))
    frac = np.linspace(0.0, 1.0, substeps + 1)
    for j in range(n):
        if np.allclose(rot[:, j], rot[0, j]):
            out[:, :, j] = rot[0, j]
            continue
        slerp = Slerp(np.arange(t_count + 1), Rotation.from_matrix(rot[:, j]))
        times = (np.arange(t_count)[:, None] + frac[None, :]).ravel()
        out[:, :, j] = slerp(times).as_matrix().reshape(t_count, substeps + 1, 3, 3)
    return out


@ti.func
def _col(m, k: ti.template()):
    return ti.Vector([m[0, k], m[1, k], m[2, k]])


def stable_dt(bodies: list[FemBodySpec], contact: ContactParams | None, point_area: float = 0.0) -> float:
    """The largest explicit substep these bodies (and contact, if given) stay stable at:
    half the CFL limit of the stiffest element (P-wave across its smallest height) and half
    the bound 2/omega of the stiffest contact spring. Both grow as sqrt(mass_scale).
    point_area: the largest area of another body's contact point (a shell vertex) that may
    press on one node, where larger than the node's own."""
    limits = []
    for body in bodies:
        m, mesh = body.material, body.mesh
        nodes, tet = mesh.nodes, mesh.tets
        p = nodes[tet[:, [[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]]]]
        areas = 0.5 * np.linalg.norm(np.cross(p[..., 1, :] - p[..., 0, :], p[..., 2, :] - p[..., 0, :]), axis=-1)
        vol = np.abs(tet_volumes(nodes, tet))
        rho = m.density * body.mass_scale
        modulus = m.youngs_modulus * (1 - m.poisson_ratio) / ((1 + m.poisson_ratio) * (1 - 2 * m.poisson_ratio))
        limits.append(0.5 * np.min(3.0 * vol / areas.max(axis=1)) / np.sqrt(modulus / rho))
        if contact is not None:
            mass = np.zeros(len(nodes))
            np.add.at(mass, tet.ravel(), np.repeat(rho * vol / 4.0, 4))
            f = mesh.surface_faces
            q = nodes[f]
            ar = 0.5 * np.linalg.norm(np.cross(q[:, 1] - q[:, 0], q[:, 2] - q[:, 0]), axis=1)
            area = np.zeros(len(nodes))
            np.add.at(area, f.ravel(), np.repeat(ar / 3.0, 3))
            free = np.setdiff1d(mesh.surface_nodes, mesh.back)
            if len(free):
                limits.append(1.0 / np.sqrt(contact.stiffness * np.maximum(area[free], point_area) / mass[free]).max())
    return float(min(limits))


@ti.kernel
def _set_row(f: ti.template(), s: ti.i32, a: ti.types.ndarray()):
    for i in range(a.shape[0]):
        for k in ti.static(range(3)):
            f[s, i][k] = a[i, k]


@ti.kernel
def _get_row(f: ti.template(), s: ti.i32, a: ti.types.ndarray()):
    for i in range(a.shape[0]):
        for k in ti.static(range(3)):
            a[i, k] = f[s, i][k]


@ti.data_oriented
class FemSystem:
    def __init__(
        self,
        bodies: list[FemBodySpec],
        shapes: list[ShapeSpec] = (),
        contact: ContactParams = ContactParams(),
        dt: float = 5e-5,
        substeps: int = 20,
        gravity=(0.0, 0.0, -9.81),
        slots: int | None = None,
    ):
        """slots: rows of substep state (default substeps + 1: a whole step)."""
        if not bodies:
            raise ValueError("an FEM system needs at least one body")
        names = [b.name for b in bodies]
        if len(set(names)) != len(names):
            raise ValueError(f"FEM body names must be unique, got {names}")
        self.runtime = ensure_runtime()
        self.serial = serial_scatter(self.runtime)
        real = self.runtime.real
        self.bodies, self.shapes, self.contact_params = list(bodies), list(shapes), contact
        self.dt, self.substeps = float(dt), int(substeps)
        self.gravity = ti.Vector(list(gravity), dt=real)

        rests, tets, drv, bid, offs, contact_nodes = [], [], [], [], [0], []
        for b, body in enumerate(bodies):
            m = body.mesh
            rests.append(m.nodes)
            tets.append(m.tets + offs[-1])
            d = np.zeros(len(m.nodes), np.int32)
            d[m.back] = 1
            drv.append(d)
            bid.append(np.full(len(m.nodes), b, np.int32))
            surf = np.setdiff1d(m.surface_nodes, m.back)
            contact_nodes.append(surf + offs[-1])
            offs.append(offs[-1] + len(m.nodes))
        self.offsets = offs
        rest = np.concatenate(rests)
        tet = np.concatenate(tets).astype(np.int32)
        tet_body = np.concatenate([np.full(len(b.mesh.tets), i, np.int32) for i, b in enumerate(bodies)])
        self.rest_np = rest
        self.n_nodes, self.n_tets, self.n_bodies = len(rest), len(tet), len(bodies)
        self.serial_loops = serial_loops(self.runtime, self.n_tets)
        self.n_shapes = len(self.shapes)
        self.driven_np = np.concatenate(drv)
        self.body_of_np = np.concatenate(bid)

        # Reference shape matrices, volumes, lumped masses and per-node surface areas.
        a, b_, c, d = (rest[tet[:, k]] for k in range(4))
        dm = np.stack([b_ - a, c - a, d - a], axis=2)
        vol = np.abs(np.linalg.det(dm)) / 6.0
        dens = np.array([bodies[i].material.density * bodies[i].mass_scale for i in tet_body])
        mass = np.zeros(len(rest))
        np.add.at(mass, tet.ravel(), np.repeat(dens * vol / 4.0, 4))
        area = np.zeros(len(rest))
        for i, body in enumerate(bodies):
            f = body.mesh.surface_faces + offs[i]
            p = rest[f]
            ar = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
            np.add.at(area, f.ravel(), np.repeat(ar / 3.0, 3))
        cn = np.concatenate(contact_nodes).astype(np.int32)
        self.contact_nodes_np, self.mass_np, self.area_np = cn, mass, area

        S, N, M, B = self.substeps, self.n_nodes, self.n_tets, self.n_bodies
        K, C = max(self.n_shapes, 1), max(len(cn), 1)
        self.slots = S + 1 if slots is None else int(slots)
        vec = lambda shape, grad=False: ti.Vector.field(3, real, shape=shape, needs_grad=grad)  # noqa: E731
        self.x, self.v = vec((self.slots, N), True), vec((self.slots, N), True)
        self.fe, self.fc = vec((self.slots, N), True), vec((self.slots, N), True)
        self.rest = vec(N)
        self.mass = ti.field(real, N)
        self.driven = ti.field(ti.i32, N)
        self.body_of = ti.field(ti.i32, N)
        self.tet = ti.Vector.field(4, ti.i32, M)
        self.tet_body = ti.field(ti.i32, M)
        self.dm_inv = ti.Matrix.field(3, 3, real, M)
        self.vol = ti.field(real, M)
        self.E = ti.field(real, B, needs_grad=True)
        self.nu = ti.field(real, B, needs_grad=True)
        self.damping = ti.field(real, B)
        self.weight = ti.field(real, B)  # gravity scale: 1 / mass_scale
        self.cn = ti.field(ti.i32, C)
        self.area = ti.field(real, C)
        self.kn = ti.field(real, (), needs_grad=True)
        self.kd = ti.field(real, (), needs_grad=True)
        self.mu = ti.field(real, (), needs_grad=True)
        self.body_p = vec((S + 1, B), True)
        self.body_R = ti.Matrix.field(3, 3, real, (S + 1, B))
        self.shape_p = vec((S + 1, K), True)
        self.shape_R = ti.Matrix.field(3, 3, real, (S + 1, K))
        self.shape_kind = ti.field(ti.i32, K)
        self.shape_size = vec(K)

        npr = self.runtime.np_real
        self.rest.from_numpy(rest.astype(npr))
        self.mass.from_numpy(mass.astype(npr))
        self.driven.from_numpy(self.driven_np)
        self.body_of.from_numpy(self.body_of_np)
        self.tet.from_numpy(tet)
        self.tet_body.from_numpy(tet_body)
        self.dm_inv.from_numpy(np.linalg.inv(dm).astype(npr))
        self.vol.from_numpy(vol.astype(npr))
        self.damping.from_numpy(np.array([b.material.damping for b in bodies], npr))
        self.weight.from_numpy(np.array([1.0 / b.mass_scale for b in bodies], npr))
        if len(cn):
            self.cn.from_numpy(cn)
            self.area.from_numpy(area[cn].astype(npr))
        self.n_contact = len(cn)
        self.shape_kinds = shape_kinds(sh.shape for sh in self.shapes)  # the collider_sdf branches kernels compile
        for k, sh in enumerate(self.shapes):
            self.shape_kind[k] = COLLIDER_SHAPES.index(sh.shape)
            self.shape_size[k] = collider_size(sh.shape, sh.size, sh.sdf)
        self.set_params()
        self.stable_dt = stable_dt(self.bodies, contact if self.n_shapes else None)
        if self.dt > self.stable_dt:
            raise ValueError(
                f"FEM dt {self.dt:.3g} s exceeds the explicit stability limit {self.stable_dt:.3g} s of these "
                "meshes, materials and contact stiffness; use a smaller dt, a coarser mesh, a softer "
                "material or contact, or a larger density (mass scaling, fine for quasi-static pressing)"
            )

        # Initial state: each body's rest mesh at its initial pose, at rest.
        self.body_pos0 = np.array([b.position for b in bodies], np.float64)
        self.body_rot0 = np.array([quat_to_matrix(b.rotation) for b in bodies])
        self.x0 = self.place(self.body_pos0, self.body_rot0)

    # --- parameters and state --------------------------------------------------------
    def set_params(self, youngs=None, poisson=None, contact=None) -> None:
        """Young's moduli / Poisson ratios per body and (stiffness, damping, friction)."""
        youngs = [b.material.youngs_modulus for b in self.bodies] if youngs is None else youngs
        poisson = [b.material.poisson_ratio for b in self.bodies] if poisson is None else poisson
        cp = self.contact_params
        contact = (cp.stiffness, cp.damping, cp.friction) if contact is None else contact
        npr = self.runtime.np_real
        self.E.from_numpy(np.asarray(youngs, npr).reshape(self.n_bodies))
        self.nu.from_numpy(np.asarray(poisson, npr).reshape(self.n_bodies))
        self.kn[None], self.kd[None], self.mu[None] = (float(c) for c in contact)

    def place(self, body_pos: np.ndarray, body_rot: np.ndarray) -> np.ndarray:
        """World positions of every node for bodies rigidly at these poses."""
        R, p = body_rot[self.body_of_np], body_pos[self.body_of_np]
        return np.einsum("nij,nj->ni", R, self.rest_np) + p

    # --- kernels ---------------------------------------------------------------------
    @ti.func
    def _tet_state(self, s, t):
        """Deformation gradient, Lame parameters (mu, lam' = lam + mu), alpha, J, dJ/dF."""
        ids = self.tet[t]
        x0 = self.x[s, ids[0]]
        ds = ti.Matrix.cols([self.x[s, ids[1]] - x0, self.x[s, ids[2]] - x0, self.x[s, ids[3]] - x0])
        F = ds @ self.dm_inv[t]
        b = self.tet_body[t]
        E, nu = self.E[b], self.nu[b]
        mu = E / (2.0 * (1.0 + nu))
        lam = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu)) + mu
        f0, f1, f2 = _col(F, 0), _col(F, 1), _col(F, 2)
        J = f0.dot(f1.cross(f2))
        cof = ti.Matrix.cols([f1.cross(f2), f2.cross(f0), f0.cross(f1)])
        return F, mu, lam, 1.0 + mu / lam, J, cof

    @ti.kernel
    def elastic(self, s: ti.i32):
        ti.loop_config(serialize=self.serial)
        for t in range(self.n_tets):
            F, mu, lam, alpha, J, cof = self._tet_state(s, t)
            P = mu * F + lam * (J - alpha) * cof
            H = -self.vol[t] * (P @ self.dm_inv[t].transpose())
            ids = self.tet[t]
            for k in ti.static(range(3)):
                self.fe[s, ids[k + 1]] += _col(H, k)
                self.fe[s, ids[0]] -= _col(H, k)

    @ti.kernel
    def elastic_adjoint(self, s: ti.i32):
        """Hand-written reverse of ``elastic`` (Taichi's takes minutes to compile): from
        fe.grad[s] into x.grad[s], E.grad and nu.grad. The stress derivative is symmetric
        (P is the gradient of the energy), so dP/dF^T[gP] = dP/dF[gP]."""
        ti.loop_config(serialize=self.serial)
        for t in range(self.n_tets):
            F, mu, lam, alpha, J, cof = self._tet_state(s, t)
            ids = self.tet[t]
            g0 = self.fe.grad[s, ids[0]]
            gH = ti.Matrix.cols([self.fe.grad[s, ids[1]] - g0, self.fe.grad[s, ids[2]] - g0, self.fe.grad[s, ids[3]] - g0])
            gP = -self.vol[t] * (gH @ self.dm_inv[t])
            f0, f1, f2 = _col(F, 0), _col(F, 1), _col(F, 2)
            a0, a1, a2 = _col(gP, 0), _col(gP, 1), _col(gP, 2)
            dcof = ti.Matrix.cols([a1.cross(f2) + f1.cross(a2), a2.cross(f0) + f2.cross(a0), a0.cross(f1) + f0.cross(a1)])
            gF = mu * gP + lam * (cof * gP).sum() * cof + lam * (J - alpha) * dcof
            gDs = gF @ self.dm_inv[t].transpose()
            for k in ti.static(range(3)):
                self.x.grad[s, ids[k + 1]] += _col(gDs, k)
                self.x.grad[s, ids[0]] -= _col(gDs, k)
            # dP/dmu = F - cof and dP/dlam' = (J - 1) cof (alpha depends on both)
            g_mu = (gP * (F - cof)).sum()
            g_lam = (J - 1.0) * (gP * cof).sum()
            b = self.tet_body[t]
            E, nu = self.E[b], self.nu[b]
            d = (1.0 + nu) * (1.0 - 2.0 * nu)
            dmu_dE, dmu_dnu = 1.0 / (2.0 * (1.0 + nu)), -E / (2.0 * (1.0 + nu) ** 2)
            self.E.grad[b] += g_mu * dmu_dE + g_lam * (nu / d + dmu_dE)
            self.nu.grad[b] += g_mu * dmu_dnu + g_lam * (E * (1.0 + 2.0 * nu * nu) / (d * d) + dmu_dnu)

    @ti.kernel
    def contact(self, s: ti.i32, t: ti.i32):
        """Contact forces on the state in row s against the shapes at substep t."""
        ti.loop_config(serialize=self.serial_loops)
        for c, k in ti.ndrange(self.n_contact, self.n_shapes):
            delta = ti.static(self.contact_params.smoothing)
            eps2 = ti.static(self.contact_params.slip_velocity**2)
            i = self.cn[c]
            R, p = self.shape_R[t, k], self.shape_p[t, k]
            q = R.transpose() @ (self.x[s, i] - p)
            phi, nl = collider_sdf(self.shape_kind[k], self.shape_size[k], q, self.shape_kinds)
            if phi < 0:
                pen = -phi
                ramp = pen - 0.5 * delta
                if pen < delta:
                    ramp = pen * pen / (2.0 * delta)
                n = R @ nl
                v_shape = (self.shape_R[t + 1, k] @ q + self.shape_p[t + 1, k] - self.x[s, i]) / self.dt
                vr = self.v[s, i] - v_shape
                vn = vr.dot(n)
                spring = self.kn[None] * self.area[c] * ramp
                # damping and friction capped where explicit Euler stays stable (sim.coupling)
                cap = DAMPING_CAP * self.mass[i] / self.dt
                fn = ti.max(spring - ti.min(spring * self.kd[None], cap) * vn, 0.0)
                vt = vr - vn * n
                ft = -ti.min(self.mu[None] * fn / ti.sqrt(vt.dot(vt) + eps2), cap) * vt
                self.fc[s, i] += fn * n + ft

    @ti.kernel
    def update(self, s: ti.i32, o: ti.i32, t: ti.i32):
        """Row s to row o over substep t (the driven frames at t and t + 1)."""
        ti.loop_config(serialize=self.serial_loops)
        for i in range(self.n_nodes):
            b = self.body_of[i]
            frame_next = self.body_R[t + 1, b] @ self.rest[i] + self.body_p[t + 1, b]
            if self.driven[i]:
                self.x[o, i] = frame_next
                self.v[o, i] = (frame_next - self.x[s, i]) / self.dt
            else:
                frame_now = self.body_R[t, b] @ self.rest[i] + self.body_p[t, b]
                v_frame = (frame_next - frame_now) / self.dt
                acc = (self.fe[s, i] + self.fc[s, i]) / self.mass[i] + self.weight[b] * self.gravity
                c = self.damping[b] * self.dt
                vn = (self.v[s, i] + self.dt * acc + c * v_frame) / (1.0 + c)
                self.v[o, i] = vn
                self.x[o, i] = self.x[s, i] + self.dt * vn

    # --- segments ----------------------------------------------------------------------
    def _load_segment(self, x, v, bp, bR, sp, sR) -> None:
        npr = self.runtime.np_real
        _set_row(self.x, 0, np.ascontiguousarray(x, npr))
        _set_row(self.v, 0, np.ascontiguousarray(v, npr))
        self._load_poses(bp, bR, sp, sR)

    def _load_poses(self, bp, bR, sp, sR) -> None:
        """The bodies' and shapes' poses at every substep of a segment."""
        npr = self.runtime.np_real
        self.body_p.from_numpy(bp.astype(npr))
        self.body_R.from_numpy(bR.astype(npr))
        if self.n_shapes:
            self.shape_p.from_numpy(sp.astype(npr))
            self.shape_R.from_numpy(sR.astype(npr))

    def _forward_segment(self) -> None:
        if self.slots <= self.substeps:
            raise RuntimeError("an FEM system with a ring of substep rows is stepped by its owner (sim.volumetric)")
        self.fe.fill(0)
        self.fc.fill(0)
        for s in range(self.substeps):
            self.elastic(s)
            self.contact(s, s)
            self.update(s, s + 1, s)

    def _backward_segment(self) -> None:
        for s in reversed(range(self.substeps)):
            self.update.grad(s, s + 1, s)
            self.contact.grad(s, s)
            self.elastic_adjoint(s)

    def _row(self, f, s: int) -> np.ndarray:
        out = np.empty((self.n_nodes, 3), self.runtime.np_real)
        _get_row(f, s, out)
        return out.astype(np.float64)

    # --- rollouts ------------------------------------------------------------------------
    def _segments(self, traj: Trajectory):
        """Per-step substep poses: lists of (body_p, body_R, shape_p, shape_R) arrays."""
        S = self.substeps
        bp = traj.body_pos.detach().cpu().numpy().astype(np.float64)
        sp = traj.shape_pos.detach().cpu().numpy().astype(np.float64).reshape(bp.shape[0], self.n_shapes, 3)
        T = bp.shape[0] - 1
        if T < 1 or bp.shape[1:] != (self.n_bodies, 3):
            raise ValueError(f"body_pos must have shape (steps+1, {self.n_bodies}, 3), got {tuple(bp.shape)}")
        if sp.shape[0] != T + 1:
            raise ValueError(f"shape_pos must have {T + 1} rows like body_pos, got {sp.shape[0]}")
        w = np.linspace(0.0, 1.0, S + 1)[None, :, None, None]
        bps = bp[:-1, None] * (1 - w) + bp[1:, None] * w
        sps = sp[:-1, None] * (1 - w) + sp[1:, None] * w
        eye = lambda n: np.broadcast_to(np.eye(3), (T + 1, n, 3, 3))  # noqa: E731
        bR = _substep_rotations(eye(self.n_bodies) if traj.body_rot is None else np.asarray(traj.body_rot), S)
        sR = _substep_rotations(eye(self.n_shapes) if traj.shape_rot is None else np.asarray(traj.shape_rot), S)
        if self.n_shapes == 0:
            sps, sR = np.zeros((T, S + 1, 1, 3)), np.broadcast_to(np.eye(3), (T, S + 1, 1, 3, 3))
        return bps, bR, sps, sR

    def forward(self, traj: Trajectory, x0=None, v0=None):
        """Run every step; return (positions, contact forces) at step ends, (T, N, 3) each,
        and the (x, v) checkpoints at step starts."""
        bps, bR, sps, sR = self._segments(traj)
        T = len(bps)
        x = self.x0.copy() if x0 is None else np.asarray(x0, np.float64)
        v = np.zeros_like(x) if v0 is None else np.asarray(v0, np.float64)
        xs, fcs, ckpt = np.empty((T, self.n_nodes, 3)), np.empty((T, self.n_nodes, 3)), []
        for t in range(T):
            ckpt.append((x, v))
            self._load_segment(x, v, bps[t], bR[t], sps[t], sR[t])
            self._forward_segment()
            x, v = self._row(self.x, self.substeps), self._row(self.v, self.substeps)
            self._check(t, x)
            xs[t], fcs[t] = x, self._row(self.fc, self.substeps - 1)
        return xs, fcs, ckpt

    def _check(self, step: int, x: np.ndarray) -> None:
        bad = ~np.all(np.isfinite(x), axis=1)
        if bad.any():
            body = self.bodies[self.body_of_np[np.argmax(bad)]].name
            raise SimulationError(step, body, "position", float("nan"), "blew up (NaN/inf positions)")

    def backward(self, traj: Trajectory, ckpt, gx: np.ndarray, gfc: np.ndarray):
        """Adjoint of ``forward``: gradients w.r.t. body/shape keyframe positions, E, nu and
        the contact (stiffness, damping, friction), from output gradients gx, gfc (T, N, 3)."""
        bps, bR, sps, sR = self._segments(traj)
        T, S, npr = len(bps), self.substeps, self.runtime.np_real
        g_body = np.zeros((T + 1, self.n_bodies, 3))
        g_shape = np.zeros((T + 1, max(self.n_shapes, 1), 3))
        w = np.linspace(0.0, 1.0, S + 1)[:, None, None]
        for f in (self.E, self.nu, self.kn, self.kd, self.mu):
            f.grad.fill(0)
        adj_x = np.zeros((self.n_nodes, 3))
        adj_v = np.zeros((self.n_nodes, 3))
        for t in reversed(range(T)):
            self._load_segment(*ckpt[t], bps[t], bR[t], sps[t], sR[t])
            self._forward_segment()
            for f in (self.x, self.v, self.fe, self.fc, self.body_p, self.shape_p):
                f.grad.fill(0)
            _set_row(self.x.grad, S, np.ascontiguousarray(adj_x + gx[t], npr))
            _set_row(self.v.grad, S, np.ascontiguousarray(adj_v, npr))
            _set_row(self.fc.grad, S - 1, np.ascontiguousarray(gfc[t], npr))
            self._backward_segment()
            adj_x, adj_v = self._row(self.x.grad, 0), self._row(self.v.grad, 0)
            gb = self.body_p.grad.to_numpy().astype(np.float64)
            gs = self.shape_p.grad.to_numpy().astype(np.float64)
            g_body[t] += ((1 - w) * gb).sum(0)
            g_body[t + 1] += (w * gb).sum(0)
            g_shape[t] += ((1 - w) * gs).sum(0)
            g_shape[t + 1] += (w * gs).sum(0)
        g_contact = np.array([self.kn.grad[None], self.kd.grad[None], self.mu.grad[None]], np.float64)
        return (
            g_body,
            g_shape[:, : self.n_shapes],
            self.E.grad.to_numpy().astype(np.float64),
            self.nu.grad.to_numpy().astype(np.float64),
            g_contact,
        )

    def rollout(self, traj: Trajectory, youngs=None, poisson=None, contact=None):
        """Differentiable run: (positions, contact forces) at step ends, (T, N, 3) torch
        float64 tensors. youngs/poisson (B,) and contact (3,) default to the specs."""
        cp = self.contact_params
        as_t = lambda v, d: torch.as_tensor(d if v is None else v, dtype=torch.float64)  # noqa: E731
        youngs = as_t(youngs, [b.material.youngs_modulus for b in self.bodies])
        poisson = as_t(poisson, [b.material.poisson_ratio for b in self.bodies])
        contact = as_t(contact, [cp.stiffness, cp.damping, cp.friction])
        return _Rollout.apply(self, traj, traj.body_pos, traj.shape_pos, youngs, poisson, contact)


class _Rollout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sim: FemSystem, traj, body_pos, shape_pos, youngs, poisson, contact):
        sim.set_params(youngs.detach().numpy(), poisson.detach().numpy(), contact.detach().numpy())
        xs, fcs, ckpt = sim.forward(traj)
        ctx.sim, ctx.traj, ctx.ckpt = sim, traj, ckpt
        ctx.params = (youngs.detach().numpy(), poisson.detach().numpy(), contact.detach().numpy())
        return torch.from_numpy(xs), torch.from_numpy(fcs)

    @staticmethod
    def backward(ctx, gx, gfc):
        sim = ctx.sim
        sim.set_params(*ctx.params)
        zero = np.zeros((len(ctx.ckpt), sim.n_nodes, 3))
        gx = zero if gx is None else gx.detach().numpy()
        gfc = zero if gfc is None else gfc.detach().numpy()
        gb, gs, gE, gnu, gc = sim.backward(ctx.traj, ctx.ckpt, gx, gfc)
        t = torch.from_numpy
        return None, None, t(gb), t(gs).reshape(ctx.traj.shape_pos.shape), t(gE), t(gnu), t(gc)
