"""Loss terms: values on analytic cases and gradients against float64 central differences."""

import math

import pytest
import torch

from sim.optim import losses

D = torch.float64


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=D)


def _gradcheck(fn, *args):
    args = tuple(a.clone().requires_grad_(True) for a in args)
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-6)


def test_chamfer_analytic_and_gradient():
    a = torch.tensor([[0.0, 0, 0], [1.0, 0, 0]], dtype=D)
    assert float(losses.chamfer(a, a)) == 0.0
    b = a + torch.tensor([0.0, 0.1, 0.0], dtype=D)  # every nearest distance is 0.1
    assert float(losses.chamfer(a, b)) == pytest.approx(2 * 0.01)
    _gradcheck(losses.chamfer, _rand(20, 3), _rand(15, 3, seed=1))
    # chunking gives the same value
    x, y = _rand(50, 3), _rand(40, 3, seed=2)
    assert torch.allclose(losses.chamfer(x, y, chunk=7), losses.chamfer(x, y))


def test_position_and_pose_targets():
    rest = _rand(10, 3)
    c, s = math.cos(0.3), math.sin(0.3)
    rot = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=D)
    t = torch.tensor([0.5, -0.2, 0.1], dtype=D)
    placed = (rest - rest.mean(0)) @ rot.T + t
    assert float(losses.pose_target(placed, rest, rot, t)) == pytest.approx(0.0, abs=1e-24)
    assert float(losses.pose_target(placed + 0.1, rest, rot, t)) == pytest.approx(3 * 0.01)
    assert float(losses.position_target(placed, t)) == pytest.approx(0.0, abs=1e-24)
    _gradcheck(lambda p: losses.pose_target(p, rest, rot, t), _rand(10, 3, seed=3))
    _gradcheck(lambda p, w: losses.position_target(p, t, w), _rand(10, 3, seed=4), _rand(10, seed=5).abs() + 0.1)


def test_force_and_tactile_targets():
    f = torch.tensor([1.0, 2.0, 3.0], dtype=D)
    assert float(losses.force_target(f, 2.0)) == pytest.approx(2.0 / 3.0)
    _gradcheck(lambda v: losses.force_target(v, 1.5), _rand(8, 3))
    img, target = _rand(6, 5, 2), _rand(6, 5, 2, seed=1)
    mask = torch.zeros(6, 5, 1)
    mask[2:4] = 1
    assert torch.allclose(losses.tactile_target(img, target, mask), ((img - target)[2:4] ** 2).mean())
    _gradcheck(lambda v: losses.tactile_target(v, target, mask), img)
    with pytest.raises(ValueError, match="differ in shape"):
        losses.tactile_target(img, target[:3])


def test_slip_is_zero_inside_the_cone_and_grows_outside():
    normal = torch.tensor([2.0, 2.0], dtype=D)
    inside = torch.tensor([[0.5, 0.0], [0.0, 0.9]], dtype=D)
    assert float(losses.slip(inside, normal, 0.5)) == 0.0
    outside = torch.tensor([[1.5, 0.0], [0.0, 0.0]], dtype=D)  # 0.5 over the cone on one contact
    assert float(losses.slip(outside, normal, 0.5)) == pytest.approx(0.25 / 2, rel=1e-6)
    _gradcheck(lambda t, n: losses.slip(t, n, 0.4, margin=0.1), _rand(12, 2) * 2, _rand(12, seed=1).abs() + 0.5)


def test_smoothness_and_effort():
    t = torch.linspace(0, 1, 11, dtype=D)[:, None]
    assert float(losses.smoothness(3 * t + 1, 0.1)) == pytest.approx(0.0, abs=1e-18)  # straight line
    assert float(losses.smoothness(t**2 * 0.5, 0.1)) == pytest.approx(1.0)  # x = t^2/2 has x'' = 1 (t in steps of 0.1 s)
    _gradcheck(lambda m: losses.smoothness(m, 0.05), _rand(9, 4))
    assert float(losses.effort(torch.ones(4, 3, dtype=D))) == pytest.approx(3.0)
    _gradcheck(losses.effort, _rand(7, 3))
