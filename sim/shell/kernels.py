"""Taichi kernels of the shell system, over ndarrays (compiled once per process, whatever the
mesh size, and kept in the offline cache between runs).

Naming: x = positions being solved for, xn / xm = positions at the step's start and one
step before, f = forces; c* = collider arrays (see sim.colliders). Force kernels only
accumulate into f, so their reverse-mode versions give Hessian-vector products
(seed f.grad = v, read x.grad) and, at the solution, the adjoint's parameter terms.
"""

import taichi as ti

from sim.sdf import collider_reach, collider_sdf, quat_to_mat
from sim.shell.energies import (
    bending, fold_angle, fold_angle_gradient, friction_coefficient, friction_potential, hinge_share, membrane,
    membrane_hessian_block, membrane_hessian_parts,
)

A = ti.types.ndarray()
T = ti.template()  # arrays handed on to ti.func helpers by reference
# Loops run serially where sim.runtime.serial_loops says so (also the proximity search's);
# ShellSystem sets this before the kernels compile (they read it then), once per process:
# sheets up to 129 x 129 stepped as fast serially as threaded.
SERIAL = False
# Parts of the force kernel, a template bit mask. Taichi's reverse of the whole kernel took
# 20.5 s to compile, of its three parts 4.6, 7.0 and 1.9 s: its IR passes grow faster than
# the kernel, so the reverse runs (and compiles) part by part.
ELASTIC, COLLIDERS, PAIRS = 1, 2, 4
ALL_FORCES = ELASTIC | COLLIDERS | PAIRS


# ---------------------------------------------------------------- forces and energies


@ti.func
def _body(i, x: T, xn: T, xm: T, mass: T, vshell: T, damp: T, gravity: T, dt):
    """Gravity and mass-proportional damping of the BDF2 velocity: (energy, force)."""
    m = mass[i]
    c = damp[vshell[i]]
    anchor = (4.0 * xn[i] - xm[i]) / 3.0
    energy = -m * gravity[0].dot(x[i]) + 0.75 * c * m / dt * (x[i] - anchor).norm_sqr()
    force = m * gravity[0] - c * m * (3.0 * x[i] - 4.0 * xn[i] + xm[i]) / (2.0 * dt)
    return energy, force


@ti.func
def _membrane(t, x: T, tri: T, tshell: T, dm_inv: T, area: T, thick: T, youngs: T, poisson: T):
    s = tshell[t]
    return membrane(x[tri[t][0]], x[tri[t][1]], x[tri[t][2]], dm_inv[t], area[t], thick[s], youngs[s], poisson[s])


@ti.func
def _bending(h, x: T, hinge: T, hshell: T, hweight: T, rest: T, bend: T):
    q = hinge[h]
    return bending(x[q[0]], x[q[1]], x[q[2]], x[q[3]], rest[h], hweight[h], bend[hshell[h]])


@ti.func
def _in_reach(i, c, x: T, xn: T, radius: T, ckind: T, csize: T, cpos0: T, cpos1: T):
    """Whether vertex i can touch collider c at the step's start or end (see collider_reach):
    the fingers reach a few vertices of a sheet, and their contact terms, reverse-mode ones
    above all, cost more than the rest of a force kernel."""
    reach = collider_reach(ckind[c], csize[c]) + radius[i]
    return (x[i] - cpos1[c]).norm_sqr() <= reach * reach or (xn[i] - cpos0[c]).norm_sqr() <= reach * reach


@ti.func
def _contact(
    i, c, x: T, xn: T, radius: T, ckind: T, csize: T, shape_kinds: T, cpos0: T, cquat0: T, cpos1: T, cquat1: T, cmu: T,
    ck: T, eps
):
    """(energy, force) on vertex i from collider c: penalty normal force plus smoothed
    Coulomb friction with the normal force and tangent plane of the step's start."""
    r = radius[i]
    rot1 = quat_to_mat(cquat1[c])
    p = rot1.transpose() @ (x[i] - cpos1[c])
    d, n_local = collider_sdf(ckind[c], csize[c], p, shape_kinds)
    energy = 0.0
    force = ti.Vector([0.0, 0.0, 0.0])
    k = ck[c]
    if d < r:
        energy += 0.5 * k * (d - r) * (d - r)
        force += -k * (d - r) * (rot1 @ n_local)
    rot0 = quat_to_mat(cquat0[c])
    p0 = rot0.transpose() @ (xn[i] - cpos0[c])
    d0, n0_local = collider_sdf(ckind[c], csize[c], p0, shape_kinds)
    if d0 < r:
        n0 = rot0 @ n0_local
        slip = rot0 @ p + cpos0[c] - xn[i]  # where the tool point now at x[i] was, relative to xn[i]
        u = slip - slip.dot(n0) * n0
        y = ti.sqrt(u.norm_sqr() + (1e-6 * eps) ** 2)  # |u|, smoothed so its derivative exists at u = 0
        mu_n = cmu[c] * k * (r - d0)
        energy += mu_n * friction_potential(y, eps)
        force += -mu_n * friction_coefficient(y, eps) * (rot1 @ (rot0.transpose() @ u))
    return energy, force


@ti.func
def _pair_weights(p, a, b, c):
    """Barycentric weights of the point of triangle (a, b, c) that the vertex at p meets:
    its projection onto the plane, clamped into the triangle (a smooth function of the
    positions almost everywhere, so the adjoint sees how the contact point moves)."""
    e1 = b - a
    e2 = c - a
    r = p - a
    d11, d12, d22 = e1.dot(e1), e1.dot(e2), e2.dot(e2)
    det = d11 * d22 - d12 * d12 + 1e-300
    s = ti.max((d22 * e1.dot(r) - d12 * e2.dot(r)) / det, 0.0)
    t = ti.max((d11 * e2.dot(r) - d12 * e1.dot(r)) / det, 0.0)
    over = ti.max(s + t, 1.0)
    s, t = s / over, t / over
    return ti.Vector([1.0 - s - t, s, t])


@ti.func
def edge_weights(a0, a1, b0, b1):
    """(s, t): the closest points of segments a0-a1 and b0-b1 are a0 + s (a1 - a0) and
    b0 + t (b1 - b0), both clamped onto their segments."""
    da, db, r = a1 - a0, b1 - b0, a0 - b0
    aa, bb, ab = da.dot(da), db.dot(db), da.dot(db)
    ar, br = da.dot(r), db.dot(r)
    det = aa * bb - ab * ab
    s = 0.0
    if det > 1e-12 * aa * bb:  # not parallel
        s = ti.min(ti.max((ab * br - ar * bb) / det, 0.0), 1.0)
    t = (ab * s + br) / (bb + 1e-300)
    if t < 0.0:
        t = 0.0
        s = ti.min(ti.max(-ar / (aa + 1e-300), 0.0), 1.0)
    elif t > 1.0:
        t = 1.0
        s = ti.min(ti.max((ab - ar) / (aa + 1e-300), 0.0), 1.0)
    return s, t


@ti.func
def _pair_frame(p, x: T, xn: T, spair: T, skind: T):
    """(coefficients c, gap now, gap at the step's start, contact normal) of pair p, whose
    gap is sum_j c_j x[q_j]. A vertex-triangle pair (kind 0) runs from the triangle's
    point met by the vertex at the step's start to the vertex; an edge-edge pair (kind 1)
    between the two edges' closest points at the step's start. The points' weights are
    fixed over the step, and so is the normal, the start gap's direction (the triangle's,
    or the edges', where they touched), so that a vertex or an edge pushed through within
    a step is pushed back, not onwards."""
    q = spair[p]
    c = ti.Vector([0.0, 0.0, 0.0, 0.0])
    face = ti.Vector([0.0, 0.0, 0.0])
    if skind[p] == 0:
        w = _pair_weights(xn[q[0]], xn[q[1]], xn[q[2]], xn[q[3]])
        c = ti.Vector([1.0, -w[0], -w[1], -w[2]])
        face = (xn[q[2]] - xn[q[1]]).cross(xn[q[3]] - xn[q[1]])
    else:
        s, t = edge_weights(xn[q[0]], xn[q[1]], xn[q[2]], xn[q[3]])
        c = ti.Vector([1.0 - s, s, t - 1.0, -t])
        face = (xn[q[1]] - xn[q[0]]).cross(xn[q[3]] - xn[q[2]])
    gap = c[0] * x[q[0]] + c[1] * x[q[1]] + c[2] * x[q[2]] + c[3] * x[q[3]]
    gap0 = c[0] * xn[q[0]] + c[1] * xn[q[1]] + c[2] * xn[q[2]] + c[3] * xn[q[3]]
    n0 = face / ti.sqrt(face.norm_sqr() + 1e-30)
    length = gap0.norm()
    if length > 1e-9:
        n0 = gap0 / length
    return c, gap, gap0, n0


@ti.func
def _pair(p, x: T, xn: T, spair: T, skind: T, sdist: T, smu: T, k, eps):
    """(energy, force along the gap, coefficients c) of shell-shell contact pair p (see
    _pair_frame): vertex q[j] takes c_j times the force. Penalty on the distance along the
    normal below sdist, smoothed Coulomb friction on the slip of one side over the other
    during the step, with the normal force of the step's start."""
    c, gap, gap0, n0 = _pair_frame(p, x, xn, spair, skind)
    dist = sdist[p]
    d = gap.dot(n0)
    energy = 0.0
    force = ti.Vector([0.0, 0.0, 0.0])
    if d < dist:
        energy += 0.5 * k * (dist - d) * (dist - d)
        force += k * (dist - d) * n0
    d0 = gap0.dot(n0)
    if d0 < dist:
        u = gap - gap0  # the slip of one side over the other during the step
        ut = u - u.dot(n0) * n0
        y = ti.sqrt(ut.norm_sqr() + (1e-6 * eps) ** 2)
        mu_n = smu[p] * k * (dist - d0)
        energy += mu_n * friction_potential(y, eps)
        force += -mu_n * friction_coefficient(y, eps) * ut
    return energy, force, c


@ti.kernel
def forces(
    x: A, xn: A, xm: A, f: A, mass: A, vshell: A, damp: A, gravity: A,
    tri: A, tshell: A, dm_inv: A, area: A, thick: A, youngs: A, poisson: A,
    hinge: A, hshell: A, hweight: A, rest: A, bend: A, nv: ti.i32, nt: ti.i32, nh: ti.i32, dt: ti.f64,
    radius: A, ckind: A, csize: A, shape_kinds: ti.template(), cpos0: A, cquat0: A, cpos1: A, cquat1: A, cmu: A, ck: A,
    nc: ti.i32, eps: ti.f64,
    spair: A, skind: A, sdist: A, smu: A, npairs: ti.i32, kpair: ti.f64, parts: ti.template(),
):
    """f += the forces on the shells of the chosen ``parts`` (a bit mask of the following):
    gravity, damping, membrane and bending (ELASTIC), collider contact (COLLIDERS) and
    shell-shell contact (PAIRS). The forward takes them all in one launch; the reverse runs
    part by part. Every loop that adds into vertices shared between its iterations (elements,
    a vertex's colliders, contact pairs) runs serially on small CPUs: in parallel their float
    atomic adds land in thread order, and a cloth between two tactile pads then ended a 75-step
    run 4.5 mm apart from an identical one."""
    if ti.static(parts & ELASTIC):
        for i in range(nv):
            _, force = _body(i, x, xn, xm, mass, vshell, damp, gravity, dt)
            f[i] += force
        ti.loop_config(serialize=SERIAL)
        for t in range(nt):
            _, fb, fc = _membrane(t, x, tri, tshell, dm_inv, area, thick, youngs, poisson)
            f[tri[t][0]] += -(fb + fc)
            f[tri[t][1]] += fb
            f[tri[t][2]] += fc
        ti.loop_config(serialize=SERIAL)
        for h in range(nh):
            _, f0, f1, f2, f3 = _bending(h, x, hinge, hshell, hweight, rest, bend)
            q = hinge[h]
            f[q[0]] += f0
            f[q[1]] += f1
            f[q[2]] += f2
            f[q[3]] += f3
    if ti.static(parts & COLLIDERS):
        ti.loop_config(serialize=SERIAL)
        for i, c in ti.ndrange(nv, nc):
            if _in_reach(i, c, x, xn, radius, ckind, csize, cpos0, cpos1):
                _, force = _contact(i, c, x, xn, radius, ckind, csize, shape_kinds, cpos0, cquat0, cpos1, cquat1, cmu, ck, eps)
                f[i] += force
    if ti.static(parts & PAIRS):
        ti.loop_config(serialize=SERIAL)
        for p in range(npairs):
            _, force, c = _pair(p, x, xn, spair, skind, sdist, smu, kpair, eps)
            q = spair[p]
            for j in ti.static(range(4)):
                f[q[j]] += c[j] * force


@ti.kernel
def potential(
    x: A, xn: A, xm: A, xhat: A, free: A, mass: A, vshell: A, damp: A, gravity: A,
    tri: A, tshell: A, dm_inv: A, area: A, thick: A, youngs: A, poisson: A,
    hinge: A, hshell: A, hweight: A, rest: A, bend: A, nv: ti.i32, nt: ti.i32, nh: ti.i32, dt: ti.f64,
    radius: A, ckind: A, csize: A, shape_kinds: ti.template(), cpos0: A, cquat0: A, cpos1: A, cquat1: A, cmu: A, ck: A,
    nc: ti.i32, eps: ti.f64,
    spair: A, skind: A, sdist: A, smu: A, npairs: ti.i32, kpair: ti.f64, inertia: ti.f64, external: ti.i32,
) -> ti.f64:
    """The energy whose minus gradient ``forces`` is, plus inertia times the step's inertia
    term (with inertia = 1 / beta^2: the incremental potential); with external = 0, the
    elastic energy alone. Loop counts switch terms off, so every loop stays at the top
    level (parallel)."""
    e = 0.0
    ti.loop_config(serialize=SERIAL)
    for i in range(nv * external):
        w, _ = _body(i, x, xn, xm, mass, vshell, damp, gravity, dt)
        e += w + 0.5 * inertia * mass[i] * (x[i] - xhat[i]).norm_sqr() * free[i]
    ti.loop_config(serialize=SERIAL)
    for t in range(nt):
        w, _, _ = _membrane(t, x, tri, tshell, dm_inv, area, thick, youngs, poisson)
        e += w
    ti.loop_config(serialize=SERIAL)
    for h in range(nh):
        w, _, _, _, _ = _bending(h, x, hinge, hshell, hweight, rest, bend)
        e += w
    ti.loop_config(serialize=SERIAL)
    for i, c in ti.ndrange(nv * external, nc):
        if _in_reach(i, c, x, xn, radius, ckind, csize, cpos0, cpos1):
            w, _ = _contact(i, c, x, xn, radius, ckind, csize, shape_kinds, cpos0, cquat0, cpos1, cquat1, cmu, ck, eps)
            e += w
    ti.loop_config(serialize=SERIAL)
    for p in range(npairs * external):
        # not `_` for the coefficients: in this kernel `_` already holds 3-vectors, and a Taichi
        # variable keeps its first type
        w, _, _coefficients = _pair(p, x, xn, spair, skind, sdist, smu, kpair, eps)
        e += w
    return e


@ti.kernel
def pair_blocks(
    x: A, xn: A, blocks: A, diag_slot: A, free: A, spair: A, skind: A, sdist: A, smu: A, npairs: ti.i32, k: ti.f64,
    eps: ti.f64,
):
    """The pairs' diagonal blocks of the approximate Hessian (their couplings between
    vertices are left to CG's exact products): penalty along the gap, friction across it."""
    ti.loop_config(serialize=SERIAL)
    for p in range(npairs):
        q = spair[p]
        c, gap, gap0, n0 = _pair_frame(p, x, xn, spair, skind)
        dist = sdist[p]
        block = ti.Matrix.zero(float, 3, 3)
        if gap.dot(n0) < dist:
            block += k * n0.outer_product(n0)
        d0 = gap0.dot(n0)
        if d0 < dist:
            ut = (gap - gap0) - (gap - gap0).dot(n0) * n0
            y = ti.sqrt(ut.norm_sqr() + (1e-6 * eps) ** 2)
            stick = smu[p] * k * (dist - d0) * friction_coefficient(y, eps)
            block += stick * (ti.Matrix.identity(float, 3) - n0.outer_product(n0))
        for j in ti.static(range(4)):
            blocks[diag_slot[q[j], 0]] += free[q[j]] * c[j] * c[j] * block


@ti.kernel
def newton_measures(
    x: A, xn: A, xhat: A, f: A, mass: A, free: A, r: A, b: A, scale: A, gravity: A,
    radius: A, ckind: A, csize: A, shape_kinds: ti.template(), cpos0: A, cquat0: A, cpos1: A, cquat1: A, cmu: A, ck: A,
    nc: ti.i32, spair: A, skind: A, sdist: A, smu: A, npairs: ti.i32, kpair: ti.f64, eps: ti.f64,
    nx: ti.i32, nv: ti.i32, beta: ti.f64,
) -> ti.types.vector(3, ti.f64):
    """What a Newton iteration decides by, in one launch (each costs ~0.2 ms on the CPU):
    the residual r = M (x - x_hat) / beta^2 - f on free vertices and b = -r; then
    (max |r| beta^2 / m: the error as a displacement, the largest shell displacement over
    the step, max |r| / scale: the force residual relative to each vertex's weight plus the
    sizes of the contact forces on it)."""
    error, moved, relative = 0.0, 0.0, 0.0
    ti.loop_config(serialize=SERIAL)
    for i in range(nx):
        r[i] = free[i] * (mass[i] * (x[i] - xhat[i]) / (beta * beta) - f[i])
        b[i] = -r[i]
        scale[i] = mass[i] * gravity[0].norm()
        ti.atomic_max(error, r[i].norm() * beta * beta / mass[i])
    ti.loop_config(serialize=SERIAL)
    for i in range(nv):
        ti.atomic_max(moved, (x[i] - xn[i]).norm())
    ti.loop_config(serialize=SERIAL)
    for i, c in ti.ndrange(nx, nc):
        if _in_reach(i, c, x, xn, radius, ckind, csize, cpos0, cpos1):
            _, force = _contact(i, c, x, xn, radius, ckind, csize, shape_kinds, cpos0, cquat0, cpos1, cquat1, cmu, ck, eps)
            scale[i] += force.norm()
    ti.loop_config(serialize=SERIAL)
    for p in range(npairs):
        _, force, c = _pair(p, x, xn, spair, skind, sdist, smu, kpair, eps)
        q = spair[p]
        size = force.norm()
        for j in ti.static(range(4)):
            scale[q[j]] += ti.abs(c[j]) * size
    ti.loop_config(serialize=SERIAL)
    for i in range(nx):
        ti.atomic_max(relative, r[i].norm() / ti.max(scale[i], 1e-300))
    return ti.Vector([error, moved, relative], ti.f64)


@ti.kernel
def penetration(x: A, radius: A, ckind: A, csize: A, shape_kinds: ti.template(), cpos: A, cquat: A, ck: A, pen: A,
                nv: ti.i32, nc: ti.i32):
    """pen[i] = deepest overlap of vertex i's contact radius with any collider that pushes
    the shells (<= 0: none). A finger carrying a pad has no stiffness for them: it holds the
    gel, and what the gel grips, inside its box."""
    ti.loop_config(serialize=SERIAL)
    for i in range(nv):
        pen[i] = -1e30
    ti.loop_config(serialize=SERIAL)
    for i, c in ti.ndrange(nv, nc):
        if ck[c] > 0:
            rot = quat_to_mat(cquat[c])
            d, _ = collider_sdf(ckind[c], csize[c], rot.transpose() @ (x[i] - cpos[c]), shape_kinds)
            ti.atomic_max(pen[i], radius[i] - d)


# ---------------------------------------------------------------- solver


@ti.kernel
def predict(xn: A, xm: A, vn: A, vm: A, xhat: A, x: A, free: A, pin: A, nv: ti.i32, beta: ti.f64):
    ti.loop_config(serialize=SERIAL)
    for i in range(nv):
        xhat[i] = (4.0 * xn[i] - xm[i]) / 3.0 + beta * (4.0 * vn[i] - vm[i]) / 3.0
        x[i] = free[i] * xhat[i] + (1.0 - free[i]) * pin[i]


@ti.func
def _pick3(v0, v1, v2, k):
    """v_k for a loop index k (0..2)."""
    return ti.select(k == 0, v0, ti.select(k == 1, v1, v2))


@ti.func
def _pick4(v0, v1, v2, v3, k):
    """v_k for a loop index k (0..3)."""
    return ti.select(k < 2, ti.select(k == 0, v0, v1), ti.select(k == 2, v2, v3))


@ti.kernel
def assemble_hessian(
    x: A, xn: A, blocks: A, diag_slot: A, tri_slot: A, hinge_slot: A, free: A, mass: A, vshell: A, damp: A,
    tri: A, tshell: A, dm_inv: A, area: A, thick: A, youngs: A, poisson: A, hinge: A, hshell: A, hweight: A,
    bend: A, radius: A, ckind: A, csize: A, shape_kinds: ti.template(), cpos0: A, cquat0: A, cpos1: A, cquat1: A, cmu: A,
    ck: A, nblocks: ti.i32, nv: ti.i32, nt: ti.i32, nh: ti.i32, nc: ti.i32, beta: ti.f64, dt: ti.f64, eps: ti.f64,
):
    """The positive semi-definite approximation of H on its fixed block pattern (see
    sim.shell.sparse): inertia and damping, membrane (Gauss-Newton and tensile stress),
    bending (Gauss-Newton), penalty contact along the normal and friction across it. Blocks
    coupling a pinned vertex are left out, so its row is its mass term alone."""
    ti.loop_config(serialize=SERIAL)
    for k in range(nblocks):
        blocks[k] = ti.zero(blocks[k])
    ti.loop_config(serialize=SERIAL)
    for i in range(nv):
        blocks[diag_slot[i, 0]] += mass[i] * (1.0 / (beta * beta) + 1.5 * damp[vshell[i]] / dt) * ti.Matrix.identity(float, 3)
    # Serial element loops on small CPUs: as parallel loops their atomic block sums took
    # 2.4x the time on two threads. The block loops stay loops (statically unrolled, the
    # kernel took 9 s to compile).
    ti.loop_config(serialize=SERIAL)
    for t in range(nt):
        s = tshell[t]
        q = tri[t]
        f, tensile, gb, gc, vol, mu, lam = membrane_hessian_parts(
            x[q[0]], x[q[1]], x[q[2]], dm_inv[t], area[t], thick[s], youngs[s], poisson[s])
        for a, b in ti.ndrange(3, 3):
            gu = _pick3(-(gb + gc), gb, gc, a)
            gv = _pick3(-(gb + gc), gb, gc, b)
            blocks[tri_slot[t, 3 * a + b]] += free[q[a]] * free[q[b]] * membrane_hessian_block(gu, gv, f, tensile, vol, mu, lam)
    ti.loop_config(serialize=SERIAL)
    for h in range(nh):
        q = hinge[h]
        share, _, _, _, _ = hinge_share(x[q[0]], x[q[1]], x[q[2]], x[q[3]])
        if share > 0.0:  # (a flat wing has no angle gradient)
            k = bend[hshell[h]] * hweight[h] * share
            g0, g1, g2, g3 = fold_angle_gradient(x[q[0]], x[q[1]], x[q[2]], x[q[3]])
            for a, b in ti.ndrange(4, 4):
                gu = _pick4(g0, g1, g2, g3, a)
                gv = _pick4(g0, g1, g2, g3, b)
                blocks[hinge_slot[h, 4 * a + b]] += free[q[a]] * free[q[b]] * k * gu.outer_product(gv)
    ti.loop_config(serialize=SERIAL)
    for i, c in ti.ndrange(nv, nc):
        if _in_reach(i, c, x, xn, radius, ckind, csize, cpos0, cpos1):
            r = radius[i]
            rot1 = quat_to_mat(cquat1[c])
            p = rot1.transpose() @ (x[i] - cpos1[c])
            d, n_local = collider_sdf(ckind[c], csize[c], p, shape_kinds)
            block = ti.Matrix.zero(float, 3, 3)
            if d < r:
                n = rot1 @ n_local
                block += ck[c] * n.outer_product(n)
            rot0 = quat_to_mat(cquat0[c])
            d0, n0_local = collider_sdf(ckind[c], csize[c], rot0.transpose() @ (xn[i] - cpos0[c]), shape_kinds)
            if d0 < r:
                slip = rot0 @ p + cpos0[c] - xn[i]
                n0 = rot0 @ n0_local
                u = slip - slip.dot(n0) * n0
                y = ti.sqrt(u.norm_sqr() + (1e-6 * eps) ** 2)
                m = rot1 @ n0_local  # the tangent plane, carried along with the tool
                stick = cmu[c] * ck[c] * (r - d0) * friction_coefficient(y, eps)
                block += stick * (ti.Matrix.identity(float, 3) - m.outer_product(m))
            blocks[diag_slot[i, 0]] += free[i] * block


@ti.kernel
def dot(a: A, b: A, nv: ti.i32) -> ti.f64:
    s = 0.0
    ti.loop_config(serialize=SERIAL)
    for i in range(nv):
        s += a[i].dot(b[i])
    return s


@ti.kernel
def axpy(alpha: ti.f64, a: A, y: A, nv: ti.i32):
    """y += alpha * a"""
    ti.loop_config(serialize=SERIAL)
    for i in range(nv):
        y[i] += alpha * a[i]


@ti.kernel
def copy(src: A, dst: A, nv: ti.i32):
    ti.loop_config(serialize=SERIAL)
    for i in range(nv):
        dst[i] = src[i]


@ti.kernel
def clear(a: A, nv: ti.i32):
    ti.loop_config(serialize=SERIAL)
    for i in range(nv):
        a[i] = ti.zero(a[i])


@ti.kernel
def plastic_update(x: A, hinge: A, hshell: A, rest: A, rest_new: A, yield_angle: A, nh: ti.i32):
    """Rest fold angles follow the fold beyond the yield angle (paper keeps a crease)."""
    ti.loop_config(serialize=SERIAL)
    for h in range(nh):
        q = hinge[h]
        angle = fold_angle(x[q[0]], x[q[1]], x[q[2]], x[q[3]])
        over = angle - rest[h]
        limit = yield_angle[hshell[h]]
        rest_new[h] = ti.select(over > limit, angle - limit, ti.select(over < -limit, angle + limit, rest[h]))


@ti.kernel
def advance(x: A, xn: A, xm: A, vn: A, vm: A, rest: A, rest_new: A, nv: ti.i32, nh: ti.i32, dt: ti.f64):
    ti.loop_config(serialize=SERIAL)
    for i in range(nv):
        v = (3.0 * x[i] - 4.0 * xn[i] + xm[i]) / (2.0 * dt)
        xm[i] = xn[i]
        vm[i] = vn[i]
        xn[i] = x[i]
        vn[i] = v
    ti.loop_config(serialize=SERIAL)
    for h in range(nh):
        rest[h] = rest_new[h]
