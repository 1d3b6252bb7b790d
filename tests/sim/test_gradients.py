"""Adjoint gradients of rollouts with active sticking and sliding friction against float64
central finite differences, for every parameter kind, and through checkpointed segments."""

import dataclasses

import numpy as np
import pytest
import torch

from sim.gradcheck import KINDS, check_gradients
from sim.rollout import rollout, simulate
from sim.spec import ContactSettings
from sim.world import World
from tests.sim.scenes import pushed_sheet


@pytest.fixture(scope="module")
def world():
    spec = pushed_sheet(newton_tol=1e-11, newton_rtol=0.0, newton_ftol=0.0, newton_accept=0.0, cg_tol=1e-8,
                        adjoint_tol=1e-12, newton_max_iter=60)
    return World(dataclasses.replace(spec, contact=ContactSettings(friction_velocity=1e-2)))


def test_every_parameter_kind_matches_finite_differences(world):
    run = rollout(world)
    assert world.contact_count() > 0
    results = check_gradients(world, KINDS)
    # keyframes: test_sim_cli; the FEM modulus, in a world with pads: test_pad_shell
    assert [r.kind for r in results] == [k for k in KINDS if k not in ("keyframes", "fem_youngs_modulus")]
    for r in results:
        assert abs(r.analytic) > 0, r.kind
        assert r.rel_error <= 1e-3, (r.kind, r.analytic, r.numeric)
    assert run.stats  # the rollout took real Newton steps


def test_segment_length_does_not_change_gradients(world):
    weights = np.random.default_rng(3).normal(size=(1, world.shells.nv, 3))
    grads = [rollout(world, segment=s).backward(weights) for s in (1, 5)]
    for g in grads[1:]:
        np.testing.assert_allclose(g.actions, grads[0].actions, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(g.initial_x, grads[0].initial_x, rtol=1e-9, atol=1e-12)


def test_torch_function_passes_gradients_to_actions_and_parameters(world):
    actions = torch.tensor(world.spec.resolved_actions(), requires_grad=True)
    friction = torch.tensor(world.params()["collider_friction"], requires_grad=True)
    observed = simulate(world, actions, {"collider_friction": friction})
    loss = observed[-1, :, 0].mean()  # drag the sheet along x
    loss.backward()
    weights = np.zeros((1, world.shells.nv, 3))
    weights[0, :, 0] = 1.0 / world.shells.nv
    expected = rollout(world).backward(weights)
    np.testing.assert_allclose(actions.grad.numpy(), expected.actions, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(friction.grad.numpy(), expected.params["collider_friction"], rtol=1e-9)
    assert actions.grad[:, 0, 0].abs().sum() > 0  # moving the ball along x moves the sheet
