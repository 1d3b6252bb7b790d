"""Differentiable dynamic rigid bodies stepped inside the volumetric world's substeps.

A free body's state is its centre x, quaternion q (w, x, y, z), linear velocity v and
angular velocity w (world frame); semi-implicit Euler: forces and torques of the substep
change v and w (with the gyroscopic term), then x and q move with the new velocities (q
renormalised). A hinged body keeps one angle and its rate (``angle`` rows: theta, omega);
its torque about the axis over its moment about the axis (parallel axis theorem) turns it,
and its pose and velocities follow from the angle, so contact kernels see every body the
same way.

Contact, penalty normal force with Hunt-Crossley damping and smoothed Coulomb friction like
the rest of the tree (sim.fem.solver, sim.coupling), their damping coefficients capped where
explicit Euler stays stable (``DAMPING_CAP`` times the mass the contact moves per substep; a
body's share is its mass times the fraction of its surface a point stands for, so all its
points together stay below the cap):
  - ``collider_contact``: points spread over each body's surface (each standing for an
    area) against the world's colliders (the table, tools without pads) through the
    colliders' signed distances; friction is the body's own.
  - ``pad_contact``: the FEM bodies' surface nodes against each body's shape through
    ``sim.sdf.collider_sdf``; the node takes the force, the body the opposite force and its
    torque; stiffness, damping and friction are the volumetric contact's.
Both add into the force/torque rows of the substep; the loop is nodes x bodies and samples x
colliders, linear in nodes for the few bodies a scene holds.

State lives in a ring of ``slots`` rows like the FEM and MPM state (sim.mpm.chunks); every
kernel is reversed by Taichi's autodiff (they are small and compile in seconds).
"""


import math

import numpy as np
import taichi as ti

from sim.coupling import DAMPING_CAP
from sim.fem.spec import quat_to_matrix
from sim.runtime import ensure_runtime, serial_loops
from sim.sdf import collider_sdf, collider_size, quat_to_mat, shape_kinds
from sim.spec import COLLIDER_SHAPES

STATE_KEYS = ("rigid_x", "rigid_q", "rigid_v", "rigid_w", "rigid_angle")
LIMIT_RATE = 0.2  # the hinge limits' spring: omega * dt of the substep (stable below 2)


@ti.kernel
def _set_row(f: ti.template(), r: ti.i32, a: ti.types.ndarray()):
    for i in range(a.shape[0]):
        for k in ti.static(range(f.n)):
            f[r, i][k] = a[i, k]


@ti.kernel
def _get_row(f: ti.template(), r: ti.i32, a: ti.types.ndarray()):
    for i in range(a.shape[0]):
        for k in ti.static(range(f.n)):
            a[i, k] = f[r, i][k]


@ti.func
def _quat_mul(a, b):
    return ti.Vector([a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3],
                      a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2],
                      a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1],
                      a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0]])


@ti.func
def _ramp(pen, delta):
    """Penetration smoothed quadratically over its first ``delta`` metres."""
    r = pen - 0.5 * delta
    if pen < delta:
        r = pen * pen / (2.0 * delta)
    return r


@ti.data_oriented
class RigidSystem:
    def __init__(self, bodies, shapes, dt: float, substeps: int, gravity, slots: int, real,
                 contact) -> None:
        """shapes: sim.fem.spec.ShapeSpec of the colliders the bodies touch; contact: the
        volumetric ContactParams (stiffness Pa/m, damping s/m, friction against pads)."""
        names = [b.name for b in bodies]
        if len(set(names)) != len(names):
            raise ValueError(f"rigid body names must be unique, got {names}")
        self.bodies, self.dt, self.substeps, self.slots = list(bodies), float(dt), int(substeps), int(slots)
        self.np_real = np.float64 if real == ti.f64 else np.float32
        self.delta, self.eps2 = float(contact.smoothing), float(contact.slip_velocity) ** 2
        B, S, K = len(bodies), self.slots, max(len(shapes), 1)
        self.n_bodies, self.n_shapes = B, len(shapes)
        samples = [b.surface_samples() for b in bodies]
        self.n_samples = sum(len(p) for p, _ in samples)
        self.serial_loops = serial_loops(ensure_runtime(), self.n_samples * self.n_shapes)
        vec = lambda shape, n=3, grad=True: ti.Vector.field(n, real, shape=shape, needs_grad=grad)  # noqa: E731
        self.x, self.v, self.w = vec((S, B)), vec((S, B)), vec((S, B))
        self.q, self.angle = vec((S, B), 4), vec((S, B), 2)
        self.force, self.torque = vec((S, B)), vec((S, B))
        self.mass = ti.field(real, B, needs_grad=True)
        self.friction = ti.field(real, B, needs_grad=True)
        self.kn = ti.field(real, (), needs_grad=True)  # contact parameters of a world without FEM bodies
        self.kd = ti.field(real, (), needs_grad=True)
        self.mu = ti.field(real, (), needs_grad=True)
        self.unit_inertia = vec(B, grad=False)
        self.kind, self.size, self.radius = ti.field(ti.i32, B), vec(B, grad=False), ti.field(real, B)
        self.hinged = ti.field(ti.i32, B)
        self.pivot, self.axis, self.x0 = vec(B, grad=False), vec(B, grad=False), vec(B, grad=False)
        self.q0 = vec(B, 4, grad=False)
        self.lower, self.upper, self.hinge_damping = ti.field(real, B), ti.field(real, B), ti.field(real, B)
        N = max(self.n_samples, 1)
        self.sample, self.sample_area, self.sample_body = vec(N, grad=False), ti.field(real, N), ti.field(ti.i32, N)
        self.shape_p = vec((self.substeps + 1, K))
        self.shape_R = ti.Matrix.field(3, 3, real, (self.substeps + 1, K))
        self.shape_kind, self.shape_size = ti.field(ti.i32, K), vec(K, grad=False)
        self.gravity = ti.Vector(list(gravity), dt=real)

        self.kind.from_numpy(np.array([COLLIDER_SHAPES.index(b.shape) for b in bodies], np.int32))
        self.size.from_numpy(np.array([b.size for b in bodies], np.float64))
        self.radius.from_numpy(np.array([b.bounding_radius() for b in bodies], np.float64))
        self.unit_inertia.from_numpy(np.array([b.unit_inertia() for b in bodies]))
        hinges = [b.hinge for b in bodies]
        self.hinged.from_numpy(np.array([h is not None for h in hinges], np.int32))
        self.any_hinged, self.any_free = any(h is not None for h in hinges), any(h is None for h in hinges)
        self.pivot.from_numpy(np.array([h.pivot if h else (0, 0, 0) for h in hinges], np.float64))
        self.axis.from_numpy(np.array([h.unit_axis if h else (0, 0, 1) for h in hinges], np.float64))
        self.lower.from_numpy(np.array([h.lower if h else 0.0 for h in hinges], np.float64))
        self.upper.from_numpy(np.array([h.upper if h else 0.0 for h in hinges], np.float64))
        self.hinge_damping.from_numpy(np.array([h.damping if h else 0.0 for h in hinges], np.float64))
        self.x0.from_numpy(np.array([b.position for b in bodies], np.float64))
        self.q0.from_numpy(np.array([np.asarray(b.rotation) / np.linalg.norm(b.rotation) for b in bodies], np.float64))
        if self.n_samples:
            self.sample.from_numpy(np.concatenate([p for p, _ in samples]))
            self.sample_area.from_numpy(np.concatenate([a for _, a in samples]))
            self.sample_body.from_numpy(np.concatenate([np.full(len(p), i, np.int32) for i, (p, _) in enumerate(samples)]))
        self.surface = ti.field(real, B)  # area of each body's surface
        self.surface.from_numpy(np.array([a.sum() for _, a in samples], np.float64))
        self.shape_kinds = shape_kinds(sh.shape for sh in shapes)  # the collider_sdf branches kernels compile
        self.body_kinds = shape_kinds(b.shape for b in bodies)  # the same for the bodies' own shapes
        for k, sh in enumerate(shapes):
            self.shape_kind[k] = COLLIDER_SHAPES.index(sh.shape)
            self.shape_size[k] = collider_size(sh.shape, sh.size, getattr(sh, "sdf", None))
        self.set_params(contact=(contact.stiffness, contact.damping, contact.friction))

    # --- parameters --------------------------------------------------------------------
    def set_params(self, mass=None, friction=None, contact=None) -> None:
        B = self.n_bodies
        self.mass.from_numpy(np.asarray([b.mass for b in self.bodies] if mass is None else mass, np.float64).reshape(B))
        self.friction.from_numpy(np.asarray([b.friction for b in self.bodies] if friction is None else friction,
                                            np.float64).reshape(B))
        if contact is not None:
            self.kn[None], self.kd[None], self.mu[None] = (float(c) for c in contact)

    @staticmethod
    def stable_dt(bodies, stiffness: float) -> float:
        """Half the bound 2/omega of a body pressing half its surface (a thin plate's face)
        into contact at once, on the mass a point of its surface feels: a free body's whole
        mass (pressing a face), a hinged body's moment about the axis over its farthest
        point's distance squared."""
        limits = []
        for b in bodies:
            points, area = b.surface_samples()
            felt = b.mass
            if b.hinge is not None:
                a, pose = b.hinge.unit_axis, quat_to_matrix(b.rotation)
                r = points @ pose.T + np.asarray(b.position) - np.asarray(b.hinge.pivot)
                reach = np.linalg.norm(r - np.outer(r @ a, a), axis=1).max()
                arm = np.asarray(b.position) - np.asarray(b.hinge.pivot)
                moment = a @ pose @ np.diag(b.unit_inertia()) @ pose.T @ a + np.sum((arm - arm.dot(a) * a) ** 2)
                felt = b.mass * moment / reach**2
            limits.append(1.0 / math.sqrt(stiffness * 0.5 * area.sum() / felt))
        return min(limits)

    # --- state -------------------------------------------------------------------------
    def initial_state(self) -> dict[str, np.ndarray]:
        poses = [b.initial_pose() for b in self.bodies]
        v = np.array([b.velocity for b in self.bodies], np.float64).reshape(-1, 3)
        w = np.array([b.angular_velocity for b in self.bodies], np.float64).reshape(-1, 3)
        angle = np.zeros((self.n_bodies, 2))
        for i, b in enumerate(self.bodies):
            if b.hinge is not None:  # a hinged body starts at rest at its starting angle
                angle[i, 0] = b.hinge.angle
                v[i], w[i] = 0.0, 0.0
        return {"rigid_x": np.array([p for p, _ in poses]).reshape(-1, 3), "rigid_q": np.array([q for _, q in poses]).reshape(-1, 4),
                "rigid_v": v, "rigid_w": w, "rigid_angle": angle}

    def _fields(self, grad: bool = False):
        fields = (self.x, self.q, self.v, self.w, self.angle)
        return [f.grad if grad else f for f in fields]

    def save_slot(self, r: int, grad: bool = False) -> dict[str, np.ndarray]:
        out = {}
        for k, f in zip(STATE_KEYS, self._fields(grad)):
            out[k] = np.empty((self.n_bodies, f.n), self.np_real)
            _get_row(f, r, out[k])
        return {k: v.astype(np.float64) for k, v in out.items()}

    def load_slot(self, r: int, state: dict, grad: bool = False) -> None:
        for k, f in zip(STATE_KEYS, self._fields(grad)):
            _set_row(f, r, np.ascontiguousarray(state[k], self.np_real))

    def load_poses(self, sp: np.ndarray, sR: np.ndarray) -> None:
        """The colliders' positions and rotations at every substep (substeps + 1, K, ...)."""
        if self.n_shapes:
            self.shape_p.from_numpy(np.ascontiguousarray(sp))
            self.shape_R.from_numpy(np.ascontiguousarray(sR))

    def clear_state_grads(self) -> None:
        for f in (*self._fields(), self.force, self.torque):
            f.grad.fill(0)

    def clear_param_grads(self) -> None:
        for f in (self.mass, self.friction, self.kn, self.kd, self.mu, self.shape_p):
            f.grad.fill(0)

    # --- kernels -----------------------------------------------------------------------
    @ti.kernel
    def collider_contact(self, s: ti.i32, t: ti.i32, kn: ti.template(), kd: ti.template()):
        """Forces of the colliders (at substep t) on the bodies' surface points (row s)."""
        ti.loop_config(serialize=self.serial_loops)
        for j, k in ti.ndrange(self.n_samples, self.n_shapes):
            b = self.sample_body[j]
            c = self.x[s, b]
            r = quat_to_mat(self.q[s, b]) @ self.sample[j]
            xp = c + r
            R, p = self.shape_R[t, k], self.shape_p[t, k]
            local = R.transpose() @ (xp - p)
            phi, nl = collider_sdf(self.shape_kind[k], self.shape_size[k], local, self.shape_kinds)
            if phi < 0:
                n = R @ nl
                v_shape = (self.shape_R[t + 1, k] @ local + self.shape_p[t + 1, k] - xp) / self.dt
                vr = self.v[s, b] + self.w[s, b].cross(r) - v_shape
                vn = vr.dot(n)
                spring = kn[None] * self.sample_area[j] * _ramp(-phi, self.delta)
                cap = DAMPING_CAP * self.mass[b] * self.sample_area[j] / (self.surface[b] * self.dt)
                fn = ti.max(spring - ti.min(spring * kd[None], cap) * vn, 0.0)
                vt = vr - vn * n
                f = fn * n - ti.min(self.friction[b] * fn / ti.sqrt(vt.dot(vt) + self.eps2), cap) * vt
                self.force[s, b] += f
                self.torque[s, b] += r.cross(f)

    @ti.kernel
    def pad_contact(self, s: ti.i32, n_nodes: ti.i32, node: ti.template(), area: ti.template(), mass: ti.template(),
                    x: ti.template(), v: ti.template(), fc: ti.template(), kn: ti.template(), kd: ti.template(),
                    mu: ti.template()):
        """Forces between FEM surface nodes (``node[c]`` with ``area[c]``, ``mass[node[c]]``,
        row s of x, v) and the bodies' shapes: the node's into fc[s], the opposite into the
        body's rows."""
        ti.loop_config(serialize=self.serial_loops)
        for c, b in ti.ndrange(n_nodes, self.n_bodies):
            i = node[c]
            r = x[s, i] - self.x[s, b]
            if r.norm_sqr() < self.radius[b] ** 2:
                R = quat_to_mat(self.q[s, b])
                phi, nl = collider_sdf(self.kind[b], self.size[b], R.transpose() @ r, self.body_kinds)
                if phi < 0:
                    n = R @ nl
                    vr = v[s, i] - self.v[s, b] - self.w[s, b].cross(r)
                    vn = vr.dot(n)
                    spring = kn[None] * area[c] * _ramp(-phi, self.delta)
                    # the node against a point of the body, which feels at least a quarter of its mass
                    cap = DAMPING_CAP / (self.dt * (1.0 / mass[i] + 4.0 / self.mass[b]))
                    fn = ti.max(spring - ti.min(spring * kd[None], cap) * vn, 0.0)
                    vt = vr - vn * n
                    f = fn * n - ti.min(mu[None] * fn / ti.sqrt(vt.dot(vt) + self.eps2), cap) * vt
                    fc[s, i] += f
                    self.force[s, b] -= f
                    self.torque[s, b] -= r.cross(f)

    @ti.func
    def _hinged_update(self, b, s, o, m, u, f, tau):
        a, c = self.axis[b], self.pivot[b]
        arm = self.x[s, b] - c
        R = quat_to_mat(self.q[s, b])
        ra = R.transpose() @ a
        radial = arm - arm.dot(a) * a
        moment = m * ((ra * ra * u).sum() + radial.dot(radial))
        theta, omega = self.angle[s, b][0], self.angle[s, b][1]
        torque = a.dot(tau + arm.cross(f)) - self.hinge_damping[b] * omega
        rate = LIMIT_RATE / self.dt
        if theta > self.upper[b]:
            torque -= moment * rate * (rate * (theta - self.upper[b]) + 2.0 * omega)
        elif theta < self.lower[b]:
            torque -= moment * rate * (rate * (theta - self.lower[b]) + 2.0 * omega)
        omega_n = omega + self.dt * torque / moment
        theta_n = theta + self.dt * omega_n
        half = ti.sin(0.5 * theta_n)
        turn = ti.Vector([ti.cos(0.5 * theta_n), half * a[0], half * a[1], half * a[2]])
        arm_n = quat_to_mat(turn) @ (self.x0[b] - c)
        self.angle[o, b] = ti.Vector([theta_n, omega_n])
        self.x[o, b] = c + arm_n
        self.q[o, b] = _quat_mul(turn, self.q0[b])
        self.w[o, b] = omega_n * a
        self.v[o, b] = omega_n * a.cross(arm_n)

    @ti.func
    def _free_update(self, b, s, o, m, u, f, tau):
        R = quat_to_mat(self.q[s, b])
        w = self.w[s, b]
        local = R.transpose() @ w
        spin = R @ (m * u * local)  # angular momentum
        v_n = self.v[s, b] + self.dt * f / m
        w_n = w + self.dt * (R @ ((R.transpose() @ (tau - w.cross(spin))) / (m * u)))
        q = self.q[s, b]
        q_n = q + 0.5 * self.dt * _quat_mul(ti.Vector([0.0, w_n[0], w_n[1], w_n[2]]), q)
        self.v[o, b] = v_n
        self.w[o, b] = w_n
        self.x[o, b] = self.x[s, b] + self.dt * v_n
        self.q[o, b] = q_n / q_n.norm()
        self.angle[o, b] = self.angle[s, b]

    @ti.kernel
    def update(self, s: ti.i32, o: ti.i32):
        """Row s to row o: one semi-implicit Euler substep of every body. Only the kinds of
        body the system has are compiled: with both, Taichi's reverse of this kernel took
        5.8 s to compile, with hinged bodies alone 1.4 s."""
        ti.loop_config(serialize=self.serial_loops)
        for b in range(self.n_bodies):
            m = self.mass[b]
            u = self.unit_inertia[b]
            f = self.force[s, b] + m * self.gravity
            tau = self.torque[s, b]
            if ti.static(self.any_hinged and self.any_free):
                if self.hinged[b]:
                    self._hinged_update(b, s, o, m, u, f, tau)
                else:
                    self._free_update(b, s, o, m, u, f, tau)
            elif ti.static(self.any_hinged):
                self._hinged_update(b, s, o, m, u, f, tau)
            else:
                self._free_update(b, s, o, m, u, f, tau)

    # --- readings ------------------------------------------------------------------------
    def kinetic_energy(self, state: dict) -> float:
        total = 0.0
        masses = self.mass.to_numpy()
        for i, b in enumerate(self.bodies):
            R = quat_to_matrix(state["rigid_q"][i])
            w = R.T @ state["rigid_w"][i]
            total += 0.5 * masses[i] * (state["rigid_v"][i] @ state["rigid_v"][i] + np.sum(b.unit_inertia() * w * w))
        return float(total)
