"""The lab-sim controller's interpolation meets every given derivative at both ends."""

import numpy as np

from robot.ros2.lab_sim import hermite_coefficients


def ends(c, h):
    p = np.polynomial.Polynomial(c)
    return [p(0), p.deriv()(0), p.deriv(2)(0), p(h), p.deriv()(h), p.deriv(2)(h)]


def test_quintic_cubic_and_linear_segments():
    h = 0.7
    p0, v0, a0, p1, v1, a1 = (np.array([x]) for x in (0.3, -1.0, 2.0, 1.1, 0.5, -3.0))
    np.testing.assert_allclose(ends(hermite_coefficients(h, p0, v0, a0, p1, v1, a1)[:, 0], h),
                               [0.3, -1.0, 2.0, 1.1, 0.5, -3.0], atol=1e-9)
    nan = np.array([np.nan])
    cubic = ends(hermite_coefficients(h, p0, v0, nan, p1, v1, nan)[:, 0], h)
    np.testing.assert_allclose([cubic[i] for i in (0, 1, 3, 4)], [0.3, -1.0, 1.1, 0.5], atol=1e-9)
    linear = hermite_coefficients(h, p0, nan, nan, p1, nan, nan)[:, 0]
    np.testing.assert_allclose(linear, [0.3, 0.8 / h, 0, 0, 0, 0], atol=1e-12)
