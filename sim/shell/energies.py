"""Per-element energies of thin shells and their forces (minus gradients), as Taichi funcs.

Forces are written by hand; their Jacobians (Hessian-vector products for Newton and the
adjoint) come from Taichi's reverse-mode autodiff of the force kernels. The tests compare
every force with central differences of its energy.
"""


import taichi as ti

# a hinge's bending fades out while either of its triangles is flatter than this shape quality
# (1: equilateral; a sheet's right isosceles triangles: 0.87)
DEGENERATE_QUALITY = 0.1


@ti.func
def membrane(xa, xb, xc, dm_inv, area, thickness, youngs, poisson):
    """St. Venant-Kirchhoff plane stress on one triangle: (energy, force on b, force on c).

    The force on a is minus their sum. F maps the rest triangle's 2-D frame to the world;
    E = (F^T F - I) / 2 is the Green strain."""
    ds = ti.Matrix.cols([xb - xa, xc - xa])
    f = ds @ dm_inv
    strain = 0.5 * (f.transpose() @ f - ti.Matrix.identity(float, 2))
    mu = youngs / (2.0 * (1.0 + poisson))
    lam = youngs * poisson / (1.0 - poisson * poisson)
    trace = strain[0, 0] + strain[1, 1]
    stress = 2.0 * mu * strain + lam * trace * ti.Matrix.identity(float, 2)
    vol = area * thickness
    energy = vol * (mu * (strain * strain).sum() + 0.5 * lam * trace * trace)
    h = -vol * (f @ stress) @ dm_inv.transpose()
    return energy, ti.Vector([h[0, 0], h[1, 0], h[2, 0]]), ti.Vector([h[0, 1], h[1, 1], h[2, 1]])


@ti.func
def fold_angle(x0, x1, x2, x3):
    """Signed dihedral angle at the edge x0-x1 between triangles (x0, x1, x2) and (x1, x0, x3)."""
    e = x1 - x0
    na = e.cross(x2 - x0)
    nb = (x3 - x0).cross(e)
    return ti.atan2(na.cross(nb).dot(e) / e.norm(), na.dot(nb))


@ti.func
def fold_angle_gradient(x0, x1, x2, x3):
    """d(angle)/d(x0, x1, x2, x3), closed form (Bridson et al. 2003)."""
    e = x1 - x0
    length = e.norm()
    na = e.cross(x2 - x0)
    nb = (x3 - x0).cross(e)
    ga = na / na.norm_sqr()
    gb = nb / nb.norm_sqr()
    g2 = -length * ga
    g3 = -length * gb
    g0 = -((x2 - x1).dot(e) / length * ga + (x3 - x1).dot(e) / length * gb)
    g1 = (x2 - x0).dot(e) / length * ga + (x3 - x0).dot(e) / length * gb
    return g0, g1, g2, g3


@ti.func
def bending(x0, x1, x2, x3, rest_angle, weight, stiffness):
    """Discrete hinge bending 1/2 k w s (angle - rest)^2, s its ``hinge_share``: (energy,
    forces on x0..x3)."""
    delta = fold_angle(x0, x1, x2, x3) - rest_angle
    k = stiffness * weight
    share, s0, s1, s2, s3 = hinge_share(x0, x1, x2, x3)
    zero = ti.Vector([0.0, 0.0, 0.0])
    f0, f1, f2, f3 = zero, zero, zero, zero
    if share > 0.0:  # (a flat wing has no angle gradient)
        g0, g1, g2, g3 = fold_angle_gradient(x0, x1, x2, x3)
        c, e = -k * share * delta, -0.5 * k * delta * delta
        f0, f1, f2, f3 = c * g0 + e * s0, c * g1 + e * s1, c * g2 + e * s2, c * g3 + e * s3
    return 0.5 * k * share * delta * delta, f0, f1, f2, f3


@ti.func
def _shape_quality(a, b, c):
    """(q, dq/da, dq/db, dq/dc): q = 2 sqrt(3) |(b - a) x (c - a)| / (sum of squared edges),
    1 for an equilateral triangle, 0 for a flat one."""
    n = (b - a).cross(c - a)
    twice_area = n.norm()
    edges = (b - a).norm_sqr() + (c - b).norm_sqr() + (a - c).norm_sqr()
    kappa = 2.0 * ti.sqrt(3.0)
    q = kappa * twice_area / edges
    n_hat = n / ti.max(twice_area, 1e-300)
    db, dc = (c - a).cross(n_hat), n_hat.cross(b - a)  # gradients of twice the area
    eb, ec = 2.0 * (2.0 * b - a - c), 2.0 * (2.0 * c - a - b)  # and of the edges' sum
    gb = kappa * db / edges - q * eb / edges
    gc = kappa * dc / edges - q * ec / edges
    return q, -gb - gc, gb, gc


@ti.func
def _fade(q):
    """(smoothstep of q / DEGENERATE_QUALITY clamped to [0, 1], its derivative in q)."""
    u = ti.math.clamp(q / DEGENERATE_QUALITY, 0.0, 1.0)
    slope = 0.0
    if u > 0.0 and u < 1.0:
        slope = 6.0 * u * (1.0 - u) / DEGENERATE_QUALITY
    return u * u * (3.0 - 2.0 * u), slope


@ti.func
def hinge_share(x0, x1, x2, x3):
    """(s, ds/dx0..ds/dx3): how much of a hinge's bending acts, from its wings' shapes: 1,
    fading out as either wing flattens below DEGENERATE_QUALITY. The angle's gradient has the
    wings' areas in its denominators: a fold of the default scene's 12.5 mm cloth squeezed to
    1.6 mm crushed a triangle flat, and its hinges' forces grew a thousandfold per Newton
    iteration while nothing moved. Faded, they vanish with the wing's area, and so does the
    energy, over the jump of the angle where a wing flips through flat."""
    qa, a0, a1, a2 = _shape_quality(x0, x1, x2)
    qb, b1, b0, b3 = _shape_quality(x1, x0, x3)
    fa, sa = _fade(qa)
    fb, sb = _fade(qb)
    return fa * fb, fb * sa * a0 + fa * sb * b0, fb * sa * a1 + fa * sb * b1, fb * sa * a2, fa * sb * b3


@ti.func
def friction_coefficient(y, eps):
    """f1(y) / y of the smoothed Coulomb law: f1 rises as 2y/eps - y^2/eps^2 to 1 at eps
    (sticking), then stays 1 (sliding); C1 at eps."""
    return ti.select(y < eps, 2.0 / eps - y / (eps * eps), 1.0 / ti.max(y, eps))


@ti.func
def friction_potential(y, eps):
    """F0 with F0' = f1: y^2/eps - y^3/(3 eps^2) below eps, y - eps/3 above."""
    return ti.select(y < eps, y * y / eps - y * y * y / (3.0 * eps * eps), y - eps / 3.0)


@ti.func
def membrane_hessian_parts(xa, xb, xc, dm_inv, area, thickness, youngs, poisson):
    """What the membrane's Hessian blocks are made of: (F, S+, g_b, g_c, volume, mu, lambda).

    With F = sum_v x_v g_v^T (g_a = -g_b - g_c) and P = F S (St. Venant-Kirchhoff), the
    block of vertices u, v is vol [ (g_u^T S g_v) I + mu (g_u.g_v) F F^T + mu (F g_v)(F g_u)^T
    + lam (F g_u)(F g_v)^T ]. All but the first term are the Gauss-Newton part (positive
    semi-definite); S+ is the stress with its compressive eigenvalue dropped, which keeps the
    first term so too (a buckling sheet's negative stiffness is left to the exact products)."""
    f = ti.Matrix.cols([xb - xa, xc - xa]) @ dm_inv
    strain = 0.5 * (f.transpose() @ f - ti.Matrix.identity(float, 2))
    mu = youngs / (2.0 * (1.0 + poisson))
    lam = youngs * poisson / (1.0 - poisson * poisson)
    stress = 2.0 * mu * strain + lam * (strain[0, 0] + strain[1, 1]) * ti.Matrix.identity(float, 2)
    mean = 0.5 * (stress[0, 0] + stress[1, 1])
    radius = ti.sqrt(0.25 * (stress[0, 0] - stress[1, 1]) ** 2 + stress[0, 1] ** 2)
    high, low = mean + radius, mean - radius
    tensile = stress
    if high <= 0.0:
        tensile = ti.zero(stress)
    elif low < 0.0:  # keep the tensile eigenpair: high times the projector onto its eigenvector
        tensile = high / (high - low) * (stress - low * ti.Matrix.identity(float, 2))
    gb = ti.Vector([dm_inv[0, 0], dm_inv[0, 1]])
    gc = ti.Vector([dm_inv[1, 0], dm_inv[1, 1]])
    return f, tensile, gb, gc, area * thickness, mu, lam


@ti.func
def membrane_hessian_block(gu, gv, f, tensile, vol, mu, lam):
    fu = f @ gu
    fv = f @ gv
    return vol * (
        gu.dot(tensile @ gv) * ti.Matrix.identity(float, 3) + mu * gu.dot(gv) * (f @ f.transpose())
        + mu * fv.outer_product(fu) + lam * fu.outer_product(fv)
    )
