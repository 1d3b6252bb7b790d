"""Per-element energies of thin shells and their forces (minus gradients), as Taichi funcs.

Forces are written by hand; their Jacobians (Hessian-vector products for Newton and the
adjoint) come from Taichi's reverse-mode autodiff of the force kernels. The tests compare
every force with central differences of its energy.
"""


import taichi as ti


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
    """Discrete hinge bending 1/2 k w (angle - rest)^2: (energy, forces on x0..x3)."""
    delta = fold_angle(x0, x1, x2, x3) - rest_angle
    g0, g1, g2, g3 = fold_angle_gradient(x0, x1, x2, x3)
    c = -stiffness * weight * delta
    return 0.5 * stiffness * weight * delta * delta, c * g0, c * g1, c * g2, c * g3


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
