import numpy as np
import torch

from robot.kinematics import forward, inverse, jacobian, matrix_to_quat, pose_matrix, quat_to_matrix
from tests.robot.conftest import READY


def test_torch_forward_matches_numpy_and_batches(arm):
    rng = np.random.default_rng(0)
    q = rng.uniform(arm.limit_array("lower"), arm.limit_array("upper"), (4, 7))
    t = forward(arm, torch.tensor(q, dtype=torch.float64))
    assert t.shape == (4, 4, 4)
    for i in range(4):
        np.testing.assert_allclose(t[i].numpy(), forward(arm, q[i]), atol=1e-12)


def test_torch_gradient_matches_central_differences(arm):
    rng = np.random.default_rng(1)
    q = torch.tensor(READY + rng.normal(0, 0.2, 7), dtype=torch.float64, requires_grad=True)
    w = torch.tensor(rng.normal(size=(4, 4)))  # a loss that reads the whole pose

    def loss(x):
        return (forward(arm, x) * w).sum()

    loss(q).backward()
    eps = 1e-6
    for _ in range(3):
        d = torch.tensor(rng.normal(size=7))
        fd = (loss(q.detach() + eps * d) - loss(q.detach() - eps * d)) / (2 * eps)
        assert abs(float(q.grad @ d) - float(fd)) < 1e-7 * max(1.0, abs(float(fd)))


def test_jacobian_matches_finite_differences(arm):
    q = READY + 0.1
    j = jacobian(arm, q)
    eps = 1e-7
    for i in range(7):
        dq = np.zeros(7)
        dq[i] = eps
        tp, tm = forward(arm, q + dq), forward(arm, q - dq)
        np.testing.assert_allclose(j[:3, i], (tp[:3, 3] - tm[:3, 3]) / (2 * eps), atol=1e-6)
        w = (tp[:3, :3] - tm[:3, :3]) / (2 * eps) @ forward(arm, q)[:3, :3].T  # skew(omega)
        np.testing.assert_allclose(j[3:, i], [w[2, 1], w[0, 2], w[1, 0]], atol=1e-6)


def test_quaternion_round_trip():
    rng = np.random.default_rng(2)
    for _ in range(20):
        qt = rng.normal(size=4)
        qt = qt / np.linalg.norm(qt) * np.sign(qt[0])
        np.testing.assert_allclose(matrix_to_quat(quat_to_matrix(qt)), qt, atol=1e-12)


def test_inverse_reaches_poses_within_limits(arm):
    rng = np.random.default_rng(4)
    lo, hi = arm.limit_array("lower"), arm.limit_array("upper")
    for _ in range(5):
        target = forward(arm, rng.uniform(lo, hi))
        r = inverse(arm, target, READY)
        assert r.converged and np.all(r.q >= lo) and np.all(r.q <= hi)
        np.testing.assert_allclose(forward(arm, r.q), target, atol=1e-3)


def test_inverse_reports_distance_of_unreachable_pose(arm):
    target = pose_matrix([2.0, 0.0, 0.5], [0, 1, 0, 0])
    r = inverse(arm, target, READY, restarts=2)
    assert not r.converged
    # No pose is closer than the shoulder distance minus the sum of the link lengths.
    reach = 0.316 + 0.384 + 2 * 0.0825 + 0.088 + 0.107 + 0.1034
    floor = np.linalg.norm(np.array([2.0, 0.0, 0.5 - 0.333])) - reach
    assert floor <= r.position_error < floor + 0.4
