"""Data-parallel vector kernels over Taichi vector fields (the conjugate-gradient building blocks)."""


import taichi as ti


@ti.kernel
def dot(a: ti.template(), b: ti.template(), n: ti.i32) -> ti.f64:
    s = 0.0
    for i in range(n):
        s += a[i].dot(b[i])
    return s


@ti.kernel
def axpy(alpha: ti.f64, x: ti.template(), y: ti.template(), n: ti.i32):
    """y += alpha * x"""
    for i in range(n):
        y[i] += alpha * x[i]


@ti.kernel
def xpay(x: ti.template(), beta: ti.f64, y: ti.template(), n: ti.i32):
    """y = x + beta * y"""
    for i in range(n):
        y[i] = x[i] + beta * y[i]


@ti.kernel
def copy(src: ti.template(), dst: ti.template(), n: ti.i32):
    for i in range(n):
        dst[i] = src[i]


@ti.kernel
def scale_by(s: ti.template(), src: ti.template(), dst: ti.template(), n: ti.i32):
    """dst = s * src with s a scalar field (a diagonal preconditioner)."""
    for i in range(n):
        dst[i] = s[i] * src[i]


@ti.kernel
def fill_zero(a: ti.template(), n: ti.i32):
    for i in range(n):
        a[i] = ti.zero(a[i])
