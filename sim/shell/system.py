"""Thin shells: fields, force/energy kernels, the implicit step and its adjoint.

Time integration is BDF2 (second order, L-stable: stiff membrane modes are damped, and a
constant acceleration is integrated exactly). Each step solves for the new positions x

    g(x) = M (x - x_hat) / beta^2 - f(x) = 0,   beta = 2 dt / 3,
    x_hat = (4 x_n - x_{n-1}) / 3 + beta (4 v_n - v_{n-1}) / 9,

by Newton's method with matrix-free Hessian-vector products (reverse-mode autodiff of the
hand-written force kernels) and Jacobi-preconditioned CG, with a backtracking line search
on the incremental potential. Friction and damping use the previous step's positions
(lagged normal force and tangent plane), so every force is minus the gradient of a
potential in x and the Hessian is symmetric. The first step takes its fictitious history
from gravity alone (x_{-1} = x_0 - dt v_0 + dt^2 g / 2), so free fall is exact.

The backward pass of a step solves one adjoint system H lambda = dL/dx_{n+1} with the same
operator (implicit function theorem), then one reverse pass of the force kernels with
seed lambda yields the adjoints of the previous state, the collider poses and the
material and contact parameters.
"""


import numpy as np
import taichi as ti

from sim import geometry, vecops
from sim.colliders import Colliders
from sim.errors import SimulationError
from sim.sdf import collider_sdf, quat_to_mat
from sim.shell.energies import bending, fold_angle, friction_coefficient, friction_potential, membrane
from sim.spec import ShellSpec, WorldSpec

STATE_KEYS = ("x", "v", "x_prev", "v_prev", "rest_angle")
PARAM_KEYS = ("youngs_modulus", "bending_stiffness")


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


@ti.data_oriented
class ShellSystem:
    name = "shells"

    def __init__(self, spec: WorldSpec, colliders: Colliders, real) -> None:
        self.spec = spec
        self.col = colliders
        s = spec.settings
        self.dt = s.dt
        x, rest, tris, hinge, vshell, tshell, hshell, pins = _concat(spec.shells)
        self.nv, self.nt, self.nh, self.ns = len(x), len(tris), len(hinge), len(spec.shells)
        self.shell_ranges = np.cumsum([0] + [len(sh.vertices) for sh in spec.shells])
        self.x_init = x
        self.v_init = np.concatenate([np.tile(sh.velocity, (len(sh.vertices), 1)) for sh in spec.shells])
        free = np.ones(self.nv)
        free[pins] = 0.0
        self.free_np = free

        vec = lambda n, grad=False: ti.Vector.field(3, real, max(n, 1), needs_grad=grad)  # noqa: E731
        sca = lambda n, grad=False, dt=real: ti.field(dt, max(n, 1), needs_grad=grad)  # noqa: E731
        nv, nt, nh, ns = self.nv, self.nt, self.nh, self.ns
        # state and unknowns
        self.x, self.xn, self.xm = vec(nv, True), vec(nv, True), vec(nv, True)
        self.vn, self.vm, self.xhat, self.f = vec(nv), vec(nv), vec(nv), vec(nv, True)
        self.pin, self.free, self.mass, self.radius = vec(nv), sca(nv), sca(nv), sca(nv)
        self.vshell = sca(nv, dt=ti.i32)
        # solver work vectors
        self.r, self.z, self.p, self.ap, self.b, self.sol, self.xs = (vec(nv) for _ in range(7))
        self.prec, self.kdiag, self.pen = sca(nv), sca(nv), sca(nv)
        # elements
        self.tri, self.tshell = ti.Vector.field(3, ti.i32, max(nt, 1)), sca(nt, dt=ti.i32)
        self.dm_inv, self.area = ti.Matrix.field(2, 2, real, max(nt, 1)), sca(nt)
        self.hinge, self.hshell = ti.Vector.field(4, ti.i32, max(nh, 1)), sca(nh, dt=ti.i32)
        self.hweight = sca(nh)
        self.rest, self.rest_new = sca(nh, True), sca(nh, True)
        # per-shell material
        self.youngs, self.bend = sca(ns, True), sca(ns, True)
        self.poisson, self.thick, self.damp, self.yield_angle = sca(ns), sca(ns), sca(ns), sca(ns)
        self.gravity = ti.Vector.field(3, real, ())

        mats = [sh.material for sh in spec.shells]
        areas = geometry.triangle_areas(rest, tris)
        self.tri.from_numpy(tris)
        self.tshell.from_numpy(tshell)
        self.dm_inv.from_numpy(geometry.rest_frames(rest, tris))
        self.area.from_numpy(areas)
        self.vshell.from_numpy(vshell)
        mass = np.zeros(nv)
        for k in range(3):
            np.add.at(mass, tris[:, k], areas * np.array([m.density * m.thickness for m in mats])[tshell] / 3)
        if np.any(mass <= 0):
            raise ValueError(f"shell vertex {int(np.argmin(mass))} belongs to no triangle (it would have no mass)")
        self.mass_np = mass
        self.mass.from_numpy(mass)
        self.radius.from_numpy(np.array([m.thickness / 2 for m in mats])[vshell])
        self.free.from_numpy(free)
        self.pin.from_numpy(x)
        if nh:
            self.hinge.from_numpy(hinge)
            self.hshell.from_numpy(hshell)
            tri_area_of_edge = np.zeros(nh)
            lengths = np.linalg.norm(rest[hinge[:, 1]] - rest[hinge[:, 0]], axis=1)
            wing = lambda k: geometry.triangle_areas(rest, hinge[:, [0, 1, k]])  # noqa: E731
            tri_area_of_edge = wing(2) + wing(3)
            self.hweight.from_numpy(3.0 * lengths**2 / tri_area_of_edge)
            self.rest_init = geometry.dihedral_angles(rest, hinge)
        else:
            self.rest_init = np.zeros(0)
        self.poisson.from_numpy(np.array([m.poisson_ratio for m in mats]))
        self.thick.from_numpy(np.array([m.thickness for m in mats]))
        self.damp.from_numpy(np.array([m.damping for m in mats]))
        self.yield_angle.from_numpy(np.array([m.yield_angle for m in mats]))
        self.gravity[None] = s.gravity
        self.set_params({k: np.array([getattr(m, k) for m in mats]) for k in PARAM_KEYS})

    # ------------------------------------------------------------------ parameters

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        self.youngs.from_numpy(np.asarray(params["youngs_modulus"], np.float64))
        self.bend.from_numpy(np.asarray(params["bending_stiffness"], np.float64))
        self._static_diagonal()

    def params(self) -> dict[str, np.ndarray]:
        return {"youngs_modulus": self.youngs.to_numpy()[: self.ns], "bending_stiffness": self.bend.to_numpy()[: self.ns]}

    @ti.kernel
    def _static_diagonal(self):
        """Per-vertex estimate of the membrane stiffness diagonal (the CG preconditioner)."""
        for i in range(self.nv):
            self.kdiag[i] = 0.0
        for t in range(self.nt):
            s = self.tshell[t]
            e, nu = self.youngs[s], self.poisson[s]
            k = self.area[t] * self.thick[s] * (e / (1.0 - nu * nu))
            g1 = ti.Vector([self.dm_inv[t][0, 0], self.dm_inv[t][0, 1]])
            g2 = ti.Vector([self.dm_inv[t][1, 0], self.dm_inv[t][1, 1]])
            self.kdiag[self.tri[t][0]] += k * (g1 + g2).norm_sqr()
            self.kdiag[self.tri[t][1]] += k * g1.norm_sqr()
            self.kdiag[self.tri[t][2]] += k * g2.norm_sqr()

    # ------------------------------------------------------------------ state

    def reset(self, x: np.ndarray | None = None, v: np.ndarray | None = None) -> None:
        """Back to the initial state (or to the given initial positions and velocities)."""
        dt, g = self.dt, np.array(self.spec.settings.gravity)
        free = self.free_np[:, None]
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
            "x": self.xn.to_numpy()[: self.nv],
            "v": self.vn.to_numpy()[: self.nv],
            "x_prev": self.xm.to_numpy()[: self.nv],
            "v_prev": self.vm.to_numpy()[: self.nv],
            "rest_angle": self.rest.to_numpy()[: self.nh],
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for key, fld in (("x", self.xn), ("v", self.vn), ("x_prev", self.xm), ("v_prev", self.vm)):
            arr = np.asarray(state[key], np.float64)
            if arr.shape != (self.nv, 3):
                raise ValueError(f"shell state {key!r} must have shape {(self.nv, 3)}, got {arr.shape}")
            fld.from_numpy(_pad(arr, fld.shape[0]))
        if self.nh:
            self.rest.from_numpy(np.asarray(state["rest_angle"], np.float64))
        vecops.copy(self.xn, self.x, self.nv)

    # ------------------------------------------------------------------ forces

    @ti.kernel
    def clear_forces(self):
        for i in range(self.nv):
            self.f[i] = ti.zero(self.f[i])

    @ti.kernel
    def internal_force(self, dt: ti.f64):
        """Gravity, mass-proportional damping of the BDF2 velocity, membrane and bending."""
        for i in range(self.nv):
            m = self.mass[i]
            v = (3.0 * self.x[i] - 4.0 * self.xn[i] + self.xm[i]) / (2.0 * dt)
            self.f[i] += m * self.gravity[None] - self.damp[self.vshell[i]] * m * v
        for t in range(self.nt):
            a, b, c = self.tri[t][0], self.tri[t][1], self.tri[t][2]
            s = self.tshell[t]
            _, fb, fc = membrane(
                self.x[a], self.x[b], self.x[c], self.dm_inv[t], self.area[t], self.thick[s], self.youngs[s], self.poisson[s]
            )
            self.f[a] += -fb - fc
            self.f[b] += fb
            self.f[c] += fc
        for h in range(self.nh):
            i0, i1, i2, i3 = self.hinge[h][0], self.hinge[h][1], self.hinge[h][2], self.hinge[h][3]
            _, f0, f1, f2, f3 = bending(
                self.x[i0], self.x[i1], self.x[i2], self.x[i3], self.rest[h], self.hweight[h], self.bend[self.hshell[h]]
            )
            self.f[i0] += f0
            self.f[i1] += f1
            self.f[i2] += f2
            self.f[i3] += f3

    @ti.func
    def _contact(self, i, c, eps):
        """(energy, force) on vertex i from collider c: penalty normal force plus smoothed
        Coulomb friction with the normal force and tangent plane of the step's start."""
        col = self.col
        r = self.radius[i]
        rot1 = quat_to_mat(col.quat1[c])
        p = rot1.transpose() @ (self.x[i] - col.pos1[c])
        d, n_local = collider_sdf(col.kind[c], col.size[c], p)
        energy = 0.0
        force = ti.Vector([0.0, 0.0, 0.0])
        k = col.stiffness[c]
        if d < r:
            energy += 0.5 * k * (d - r) * (d - r)
            force += -k * (d - r) * (rot1 @ n_local)
        rot0 = quat_to_mat(col.quat0[c])
        p0 = rot0.transpose() @ (self.xn[i] - col.pos0[c])
        d0, n0_local = collider_sdf(col.kind[c], col.size[c], p0)
        if d0 < r:
            normal_force = k * (r - d0)
            n0 = rot0 @ n0_local
            slip = rot0 @ p + col.pos0[c] - self.xn[i]  # where the tool point now at x was
            u = slip - slip.dot(n0) * n0
            y = u.norm()
            mu_n = col.friction[c] * normal_force
            energy += mu_n * friction_potential(y, eps)
            force += -mu_n * friction_coefficient(y, eps) * (rot1 @ (rot0.transpose() @ u))
        return energy, force

    @ti.kernel
    def contact_force(self, eps: ti.f64):
        for i, c in ti.ndrange(self.nv, self.col.count):
            _, force = self._contact(i, c, eps)
            self.f[i] += force

    def forces(self) -> None:
        self.clear_forces()
        self.internal_force(self.dt)
        if self.col.count:
            self.contact_force(self._eps())

    def _force_adjoint(self) -> None:
        """Reverse pass of every force kernel: grads += f.grad^T df/d(inputs)."""
        if self.col.count:
            self.contact_force.grad(self._eps())
        self.internal_force.grad(self.dt)

    def _eps(self) -> float:
        return self.spec.contact.friction_velocity * self.dt

    # ------------------------------------------------------------------ energies

    @ti.kernel
    def internal_energy(self) -> ti.f64:
        e = 0.0
        for t in range(self.nt):
            a, b, c = self.tri[t][0], self.tri[t][1], self.tri[t][2]
            s = self.tshell[t]
            w, _, _ = membrane(
                self.x[a], self.x[b], self.x[c], self.dm_inv[t], self.area[t], self.thick[s], self.youngs[s], self.poisson[s]
            )
            e += w
        for h in range(self.nh):
            i0, i1, i2, i3 = self.hinge[h][0], self.hinge[h][1], self.hinge[h][2], self.hinge[h][3]
            w, _, _, _, _ = bending(
                self.x[i0], self.x[i1], self.x[i2], self.x[i3], self.rest[h], self.hweight[h], self.bend[self.hshell[h]]
            )
            e += w
        return e

    @ti.kernel
    def body_energy(self, dt: ti.f64) -> ti.f64:
        e = 0.0
        for i in range(self.nv):
            m = self.mass[i]
            anchor = (4.0 * self.xn[i] - self.xm[i]) / 3.0
            e += -m * self.gravity[None].dot(self.x[i])
            e += 0.75 * self.damp[self.vshell[i]] * m / dt * (self.x[i] - anchor).norm_sqr()
        return e

    @ti.kernel
    def contact_energy(self, eps: ti.f64) -> ti.f64:
        e = 0.0
        for i, c in ti.ndrange(self.nv, self.col.count):
            w, _ = self._contact(i, c, eps)
            e += w
        return e

    @ti.kernel
    def inertia_energy(self, beta: ti.f64) -> ti.f64:
        e = 0.0
        for i in range(self.nv):
            e += 0.5 * self.mass[i] / (beta * beta) * (self.x[i] - self.xhat[i]).norm_sqr() * self.free[i]
        return e

    def incremental_potential(self, beta: float) -> float:
        e = self.inertia_energy(beta) + self.internal_energy() + self.body_energy(self.dt)
        if self.col.count:
            e += self.contact_energy(self._eps())
        return e

    # ------------------------------------------------------------------ solver kernels

    @ti.kernel
    def predict(self, beta: ti.f64):
        for i in range(self.nv):
            self.xhat[i] = (4.0 * self.xn[i] - self.xm[i]) / 3.0 + beta * (4.0 * self.vn[i] - self.vm[i]) / 9.0
            self.x[i] = self.free[i] * self.xhat[i] + (1.0 - self.free[i]) * self.pin[i]

    @ti.kernel
    def residual(self, beta: ti.f64) -> ti.f64:
        """r = M (x - x_hat) / beta^2 - f on free vertices; returns max |r| beta^2 / m (m)."""
        worst = 0.0
        for i in range(self.nv):
            self.r[i] = self.free[i] * (self.mass[i] * (self.x[i] - self.xhat[i]) / (beta * beta) - self.f[i])
            ti.atomic_max(worst, self.r[i].norm() * beta * beta / self.mass[i])
        return worst

    @ti.kernel
    def _preconditioner(self, beta: ti.f64, eps: ti.f64):
        for i in range(self.nv):
            self.prec[i] = self.mass[i] / (beta * beta) + self.kdiag[i]
        for i, c in ti.ndrange(self.nv, self.col.count):
            rot = quat_to_mat(self.col.quat1[c])
            d, _ = collider_sdf(self.col.kind[c], self.col.size[c], rot.transpose() @ (self.x[i] - self.col.pos1[c]))
            if d < self.radius[i]:
                self.prec[i] += self.col.stiffness[c] * (1.0 + 2.0 * self.col.friction[c] * (self.radius[i] - d) / eps)
        for i in range(self.nv):
            self.prec[i] = 1.0 / self.prec[i]

    @ti.kernel
    def _cg_start(self) -> ti.f64:
        """sol = 0, r = b, z = P r, p = z (seeded as f.grad); returns r.z"""
        rz = 0.0
        for i in range(self.nv):
            self.sol[i] = ti.zero(self.sol[i])
            self.r[i] = self.b[i]
            self.z[i] = self.prec[i] * self.b[i]
            self.p[i] = self.z[i]
            self.f.grad[i] = self.p[i]
            self.x.grad[i] = ti.zero(self.x.grad[i])
            rz += self.r[i].dot(self.z[i])
        return rz

    @ti.kernel
    def _cg_curvature(self, beta: ti.f64) -> ti.f64:
        """Ap = H p from the reverse pass; returns p.Ap"""
        pap = 0.0
        for i in range(self.nv):
            self.ap[i] = self.free[i] * (self.mass[i] * self.p[i] / (beta * beta) - self.x.grad[i])
            pap += self.p[i].dot(self.ap[i])
        return pap

    @ti.kernel
    def _cg_update(self, alpha: ti.f64) -> ti.f64:
        rz = 0.0
        for i in range(self.nv):
            self.sol[i] += alpha * self.p[i]
            self.r[i] -= alpha * self.ap[i]
            self.z[i] = self.prec[i] * self.r[i]
            rz += self.r[i].dot(self.z[i])
        return rz

    @ti.kernel
    def _cg_direction(self, gamma: ti.f64):
        for i in range(self.nv):
            self.p[i] = self.z[i] + gamma * self.p[i]
            self.f.grad[i] = self.p[i]
            self.x.grad[i] = ti.zero(self.x.grad[i])

    def pcg(self, beta: float, rtol: float, max_iter: int) -> int:
        """Solve H sol = b by Jacobi-preconditioned CG, H = M / beta^2 - df/dx on free
        vertices, H p by one reverse pass of the force kernels. Stops on negative curvature
        (then sol is the last descent direction). Converged when the preconditioned residual
        norm fell by rtol. Returns the iterations taken."""
        rz = self._cg_start()
        target = rtol * rtol * rz
        for it in range(max_iter):
            if rz <= target:
                return it
            self._force_adjoint()
            curvature = self._cg_curvature(beta)
            if curvature <= 0:
                if it == 0:
                    vecops.copy(self.z, self.sol, self.nv)
                return it
            alpha = rz / curvature
            rz_new = self._cg_update(alpha)
            self._cg_direction(rz_new / rz)
            rz = rz_new
        return max_iter

    @ti.kernel
    def _max_norm_sol(self) -> ti.f64:
        worst = 0.0
        for i in range(self.nv):
            ti.atomic_max(worst, self.sol[i].norm())
        return worst

    @ti.kernel
    def _set_rhs(self, sign: ti.f64):
        for i in range(self.nv):
            self.b[i] = sign * self.r[i]

    # ------------------------------------------------------------------ step

    def solve(self, step: int) -> dict:
        """Newton's method for the new positions (left in self.x). Returns solver counts."""
        s = self.spec.settings
        beta = 2.0 * self.dt / 3.0
        self.predict(beta)
        cg_total = 0
        for it in range(s.newton_max_iter + 1):
            self.forces()
            err = self.residual(beta)
            if not np.isfinite(err):
                raise SimulationError(step, self.name, "residual", err, "the Newton residual is not finite")
            if err <= s.newton_tol:
                return {"newton": it, "cg": cg_total}
            if it == s.newton_max_iter:
                break
            self._preconditioner(beta, self._eps())
            self._set_rhs(-1.0)  # solve H dx = -r
            cg_total += self.pcg(beta, s.cg_tol, s.cg_max_iter)
            if self._max_norm_sol() <= s.newton_tol:  # the Newton update itself is below tolerance
                vecops.axpy(1.0, self.sol, self.x, self.nv)
                return {"newton": it + 1, "cg": cg_total}
            self._line_search(beta, err)
        raise SimulationError(
            step, self.name, "newton residual", err,
            f"Newton did not converge in {s.newton_max_iter} iterations (residual {err:.3g} m > {s.newton_tol:.3g} m)",
        )

    def _line_search(self, beta: float, err: float) -> None:
        """Backtrack from the full Newton step until the incremental potential decreases
        enough (Armijo) or, near convergence where the potential's change drowns in
        round-off, until the residual decreases."""
        n = self.nv
        e0 = self.incremental_potential(beta)
        slope = -vecops.dot(self.b, self.sol, n)  # b is minus the potential's gradient
        if slope >= 0:  # not a descent direction (CG hit negative curvature): preconditioned gradient
            vecops.scale_by(self.prec, self.b, self.sol, n)
            slope = -vecops.dot(self.b, self.sol, n)
        vecops.copy(self.x, self.xs, n)
        alpha = 1.0
        for _ in range(40):
            vecops.axpy(alpha, self.sol, self.x, n)
            e = self.incremental_potential(beta)
            if e <= e0 + 1e-4 * alpha * slope:
                return
            if abs(e - e0) <= 1e-12 * abs(e0):  # round-off level: judge by the residual
                self.forces()
                if self.residual(beta) < err:
                    return
            vecops.copy(self.xs, self.x, n)
            alpha *= 0.5
        vecops.axpy(alpha, self.sol, self.x, n)

    @ti.kernel
    def plastic_update(self):
        """Rest fold angles follow the fold beyond the yield angle (paper keeps a crease)."""
        for h in range(self.nh):
            i0, i1, i2, i3 = self.hinge[h][0], self.hinge[h][1], self.hinge[h][2], self.hinge[h][3]
            angle = fold_angle(self.x[i0], self.x[i1], self.x[i2], self.x[i3])
            over = angle - self.rest[h]
            limit = self.yield_angle[self.hshell[h]]
            self.rest_new[h] = ti.select(
                over > limit, angle - limit, ti.select(over < -limit, angle + limit, self.rest[h])
            )

    @ti.kernel
    def _advance(self, dt: ti.f64):
        for i in range(self.nv):
            v = (3.0 * self.x[i] - 4.0 * self.xn[i] + self.xm[i]) / (2.0 * dt)
            self.xm[i] = self.xn[i]
            self.vm[i] = self.vn[i]
            self.xn[i] = self.x[i]
            self.vn[i] = v
        for h in range(self.nh):
            self.rest[h] = self.rest_new[h]

    def step(self, step: int) -> dict:
        stats = self.solve(step)
        if self.nh:
            self.plastic_update()
        self._advance(self.dt)
        return stats

    # ------------------------------------------------------------------ checks and read-outs

    @ti.kernel
    def _penetration(self):
        for i in range(self.nv):
            self.pen[i] = 0.0
        for i, c in ti.ndrange(self.nv, self.col.count):
            rot = quat_to_mat(self.col.quat1[c])
            d, _ = collider_sdf(self.col.kind[c], self.col.size[c], rot.transpose() @ (self.xn[i] - self.col.pos1[c]))
            ti.atomic_max(self.pen[i], self.radius[i] - d)

    def check(self, step: int, max_penetration: float, max_speed: float) -> None:
        """Raise SimulationError naming the step, shell and quantity when the state blew up."""
        x = self.xn.to_numpy()[: self.nv]
        v = self.vn.to_numpy()[: self.nv]
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
            self._penetration()
            pen = self.pen.to_numpy()[: self.nv]
            i = int(np.argmax(pen))
            if pen[i] > max_penetration:
                raise SimulationError(
                    step, self._owner(i), "penetration", float(pen[i]),
                    f"vertex {i} is {pen[i]:.3g} m inside a collider (tolerance {max_penetration:g} m)",
                )

    def _owner(self, vertex: int) -> str:
        return self.spec.shells[int(np.searchsorted(self.shell_ranges, vertex, side="right") - 1)].name

    def contact_count(self) -> int:
        if not self.col.count:
            return 0
        self._penetration()
        return int(np.sum(self.pen.to_numpy()[: self.nv] > 0))

    def energies(self) -> dict[str, float]:
        """Physical energies of the current state (J): kinetic, elastic, gravity potential."""
        vecops.copy(self.xn, self.x, self.nv)
        v = self.vn.to_numpy()[: self.nv]
        x = self.xn.to_numpy()[: self.nv]
        g = np.array(self.spec.settings.gravity)
        return {
            "kinetic": float(0.5 * np.sum(self.mass_np * np.sum(v * v, axis=1))),
            "elastic": float(self.internal_energy()),
            "gravity": float(-np.sum(self.mass_np * (x @ g))),
        }

    # ------------------------------------------------------------------ backward

    def backward_step(self, state: dict, x_new: np.ndarray, adj: dict, adjoint_tol: float, max_iter: int) -> dict:
        """Adjoint of one step. ``state`` is the state at the step's start, ``x_new`` the solved
        positions, ``adj`` the adjoints of the state after the step (same keys as the state).
        Returns the adjoints of the state before the step and this step's parameter
        gradients; the collider pose gradients are left in the colliders' .grad."""
        dt, beta, nv = self.dt, 2.0 * self.dt / 3.0, self.nv
        self.set_state(state)
        self.x.from_numpy(_pad(x_new, self.x.shape[0]))
        m = self.mass_np[:, None]
        free = self.free_np[:, None]
        # plastic rest angles: adjoint to x_new and to the old rest angles
        grest = np.zeros(self.nh)
        a = np.asarray(adj["x"]) + 1.5 / dt * np.asarray(adj["v"])
        if self.nh:
            self.x.grad.fill(0)
            self.rest.grad.fill(0)
            self.rest_new.grad.from_numpy(np.asarray(adj["rest_angle"], np.float64))
            self.plastic_update.grad()
            a = a + self.x.grad.to_numpy()[:nv]
            grest = self.rest.grad.to_numpy()[: self.nh].copy()
        a = a * free
        # one adjoint solve with the Newton operator at the solution
        self.forces()
        self._preconditioner(beta, self._eps())
        self.b.from_numpy(_pad(a, self.b.shape[0]))
        self.pcg(beta, adjoint_tol, max_iter)
        lam = self.sol.to_numpy()[:nv]
        # lambda^T df/d(inputs) in one reverse pass, on cleared gradients (the solve's
        # Hessian-vector products accumulated into every one of them)
        for fld in (self.x, self.xn, self.xm, self.rest, self.youngs, self.bend):
            fld.grad.fill(0)
        self.col.clear_grads()
        self.f.grad.from_numpy(_pad(lam, self.f.shape[0]))
        self._force_adjoint()
        m_lam = m * lam / beta**2
        out = {
            "x": np.asarray(adj["x_prev"]) - 2.0 / dt * np.asarray(adj["v"]) + 4.0 / 3.0 * m_lam + self.xn.grad.to_numpy()[:nv],
            "v": np.asarray(adj["v_prev"]) + 4.0 * beta / 9.0 * m_lam,
            "x_prev": 0.5 / dt * np.asarray(adj["v"]) - m_lam / 3.0 + self.xm.grad.to_numpy()[:nv],
            "v_prev": -beta / 9.0 * m_lam,
            "rest_angle": grest + (self.rest.grad.to_numpy()[: self.nh] if self.nh else 0.0),
        }
        step_params = {**self.param_grads(), **self.col.param_grads()}
        return out, step_params

    def param_grads(self) -> dict[str, np.ndarray]:
        return {"youngs_modulus": self.youngs.grad.to_numpy()[: self.ns], "bending_stiffness": self.bend.grad.to_numpy()[: self.ns]}

    def initial_state_adjoint(self, adj: dict) -> dict[str, np.ndarray]:
        """Adjoints of the initial positions and velocities, through reset()'s history."""
        free = self.free_np[:, None]
        return {
            "x": np.asarray(adj["x"]) + np.asarray(adj["x_prev"]),
            "v": free * (np.asarray(adj["v"]) - self.dt * np.asarray(adj["x_prev"]) + np.asarray(adj["v_prev"])),
        }


def _pad(arr: np.ndarray, n: int) -> np.ndarray:
    arr = np.ascontiguousarray(arr, np.float64)
    if len(arr) == n:
        return arr
    out = np.zeros((n, *arr.shape[1:]))
    out[: len(arr)] = arr
    return out
