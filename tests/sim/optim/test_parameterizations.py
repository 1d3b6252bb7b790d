"""Trajectory parameterizations: hard bounds hold after projection, decode is differentiable."""

import numpy as np
import pytest
import torch

from sim.optim.bspline import basis_matrix
from sim.optim.parameterization import Channels, PerStepActions, SpeedLimit, SplineKeyframes, ThroughKinematics

XYZG = Channels(
    names=("x", "y", "z", "grip"),
    lower=(-0.2, -0.2, 0.0, 0.0),
    upper=(0.2, 0.2, 0.3, 0.05),
    speed_limits=(SpeedLimit((0, 1, 2), 0.25), SpeedLimit((3,), 0.1)),
)
START = np.array([0.0, 0.0, 0.1, 0.02])


def _speeds(motion, dt):
    rate = np.diff(motion, axis=0) / dt
    return np.linalg.norm(rate[:, :3], axis=1), np.abs(rate[:, 3])


def _assert_feasible(motion, dt, slack=1e-9):
    assert np.all(motion >= np.array(XYZG.lower) - slack) and np.all(motion <= np.array(XYZG.upper) + slack)
    lin, grip = _speeds(motion, dt)
    assert lin.max() <= 0.25 + 1e-6 and grip.max() <= 0.1 + 1e-6


def test_bspline_basis_is_a_partition_of_unity_clamped_at_both_ends():
    b = basis_matrix(7, 3, np.linspace(0, 1, 50))
    assert np.allclose(b.sum(1), 1.0) and np.all(b >= -1e-15)
    assert b[0, 0] == pytest.approx(1.0) and b[-1, -1] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["steps", "spline"])
def test_projection_enforces_workspace_speed_and_gripper_bounds(kind):
    dt, steps = 0.02, 60
    p = PerStepActions(XYZG, steps, dt, START) if kind == "steps" else SplineKeyframes(XYZG, steps, dt, START, keyframes=6)
    rng = np.random.default_rng(0)
    lo, hi = p.bounds()
    for _ in range(5):
        wild = rng.uniform(lo - 3 * (hi - lo), hi + 3 * (hi - lo))
        x = p.project(wild)
        motion = p.motion(x)
        assert np.allclose(motion[0], START)
        _assert_feasible(motion, dt)
        assert np.allclose(p.project(x), x)  # a projection: feasible points stay put
    # the wild vectors were infeasible, so the checks above had work to do
    with pytest.raises(AssertionError):
        _assert_feasible(p.motion(wild), dt)


def test_spline_keeps_feasible_keyframes_and_passes_through_start_and_end():
    p = SplineKeyframes(XYZG, 40, 0.05, START, keyframes=5)
    x = p.project(np.tile([0.05, -0.05, 0.15, 0.03], 4))
    motion = p.motion(x)
    assert np.allclose(motion[0], START) and np.allclose(motion[-1], [0.05, -0.05, 0.15, 0.03])
    assert p.keyframe_times()[0] == 0 and p.keyframe_times()[-1] == pytest.approx(2.0)


def test_per_step_decode_matches_integrated_velocity_and_gradcheck():
    p = PerStepActions(XYZG, 5, 0.1, START)
    x = torch.randn(p.size, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(p.decode(x)[-1], torch.as_tensor(START) + 0.1 * x.reshape(5, 4).sum(0))
    assert torch.autograd.gradcheck(lambda v: p.decode(v), (x,))


def test_joint_space_keyframes_through_differentiable_kinematics():
    links = torch.tensor([0.3, 0.2], dtype=torch.float64)

    def planar_fk(q):  # two-link planar arm: end point (x, y)
        a, b = q[:, 0], q[:, 0] + q[:, 1]
        return torch.stack([links[0] * torch.cos(a) + links[1] * torch.cos(b), links[0] * torch.sin(a) + links[1] * torch.sin(b)], 1)

    joints = Channels(("q1", "q2"), (-1.5, -2.0), (1.5, 2.0), (SpeedLimit((0,), 1.0), SpeedLimit((1,), 1.0)))
    p = ThroughKinematics(SplineKeyframes(joints, 30, 0.05, [0.0, 0.5], keyframes=4), planar_fk)
    x = torch.tensor(p.project(np.array([0.4, 0.6, 0.8, 1.0, 1.2, 1.4])), requires_grad=True)
    end = p.decode(x)
    assert end.shape == (31, 2)
    assert torch.allclose(end[0], planar_fk(torch.tensor([[0.0, 0.5]], dtype=torch.float64))[0])
    assert torch.autograd.gradcheck(lambda v: p.decode(v), (x,))


def test_bad_input_names_what_is_wrong():
    with pytest.raises(ValueError, match="grip"):
        Channels(("x", "grip"), (0, 1), (1, 0))
    with pytest.raises(ValueError, match="outside the bounds"):
        PerStepActions(XYZG, 3, 0.1, [1.0, 0, 0.1, 0.02])
    with pytest.raises(ValueError, match="takes 12 parameters"):
        SplineKeyframes(XYZG, 10, 0.1, START, keyframes=4).project(np.zeros(5))
