"""Optimizers on analytic objectives: convergence, bounds, determinism and exact resume."""

import math

import numpy as np
import pytest
import torch

from sim.errors import SimulationError
from sim.optim.optimizers import iterate, load_state, make_optimizer, save_state
from sim.optim.problem import OptimizationError, Problem


def quadratic(center):
    c = torch.as_tensor(center, dtype=torch.float64)
    return lambda x: ((x - c) ** 2).sum()


def rastrigin(x):  # global minimum 0 at the origin, a local minimum near every integer point
    return (x**2 + 2.0 * (1 - torch.cos(2 * math.pi * x))).sum()


def test_adam_converges_and_reports_gradient_norm_before_clipping():
    p = Problem(quadratic([0.3, -0.4, 0.1]), x0=np.zeros(3), lower=-1, upper=1)
    opt = make_optimizer("adam", p, {"lr": 0.05, "horizon": 150, "init_noise": 0.0}, seed=0)
    reports = list(iterate(opt, 150))
    assert reports[-1].best_loss < 1e-5
    assert reports[0].grad_norm == pytest.approx(2 * 2 * math.sqrt(0.09 + 0.16 + 0.01))  # range-scaled, unclipped
    assert [r.iteration for r in reports] == list(range(1, 151))
    assert all(b.wall_time >= a.wall_time for a, b in zip(reports, reports[1:]))


def test_adam_steps_as_torch_optim_adam_does():
    """The written-out update (sim.optim.adam) against torch.optim.Adam's, with the same rate
    schedule and clipping, on a quadratic whose path stays inside the bounds."""
    from sim.optim.adam import AdamSettings

    settings = AdamSettings(lr=0.05, horizon=20, init_noise=0.0, clip_norm=0.5)
    loss = quadratic([0.3, -0.4, 0.1])
    p = Problem(loss, x0=np.array([0.5, 0.5, -0.5]), lower=-1, upper=1)
    ours = [r.params for r in iterate(make_optimizer("adam", p, vars(settings), seed=0), 20)]
    z = torch.tensor((p.x0 + 1) / 2, requires_grad=True)
    reference = torch.optim.Adam([z], lr=settings.lr, betas=settings.betas)
    theirs = []
    for i in range(20):
        x = (-1 + 2 * z).detach().requires_grad_(True)
        theirs.append(x.detach().numpy().copy())
        (g,) = torch.autograd.grad(loss(x), x)
        g = 2 * g
        z.grad = g * min(1.0, settings.clip_norm / float(g.norm()))
        reference.param_groups[0]["lr"] = settings.rate(i)
        reference.step()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert np.abs(theirs[-1] - theirs[0]).max() > 0.1  # the path went somewhere


@pytest.mark.parametrize("name", ["adam", "cmaes", "hybrid"])
def test_every_optimizer_keeps_to_the_bounds(name):
    # the unconstrained minimum (2, 2) lies outside the box: the answer is the corner (1, 1)
    p = Problem(quadratic([2.0, 2.0]), x0=np.zeros(2), lower=-1, upper=1)
    reports = list(iterate(make_optimizer(name, p, seed=1), 60))
    assert all(np.all(np.abs(r.params) <= 1.0) for r in reports)
    assert reports[-1].best_loss == pytest.approx(2.0, abs=2e-3)


def test_cmaes_minimises_rosenbrock_without_gradients():
    def rosen(x):
        return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()

    p = Problem(rosen, x0=np.zeros(4), lower=-2, upper=2)
    reports = list(iterate(make_optimizer("cmaes", p, seed=3), 250))
    assert reports[-1].best_loss < 1e-6
    assert all(r.grad_norm is None for r in reports)


def test_hybrid_escapes_the_local_basin_adam_is_stuck_in():
    p = Problem(rastrigin, x0=np.full(2, 2.0), lower=-3, upper=3)
    adam = list(iterate(make_optimizer("adam", p, seed=0), 40))[-1].best_loss
    hybrid = make_optimizer("hybrid", p, {"explore": 15, "cmaes": {"popsize": 12}}, seed=0)
    hybrid_reports = list(iterate(hybrid, 40))
    assert adam > 1.0  # stuck near (2, 2)
    assert hybrid_reports[-1].best_loss < 0.1  # the global basin: every other minimum is >= ~1
    assert {r.phase for r in hybrid_reports} == {"cmaes", "adam"}


@pytest.mark.parametrize("name", ["adam", "cmaes", "hybrid"])
def test_same_seed_same_run_and_resume_is_exact(name, tmp_path):
    p = Problem(rastrigin, x0=np.full(3, 1.2), lower=-3, upper=3)
    settings = {"explore": 4} if name == "hybrid" else None
    straight = list(iterate(make_optimizer(name, p, settings, seed=7), 10))
    again = list(iterate(make_optimizer(name, p, settings, seed=7), 10))
    first = make_optimizer(name, p, settings, seed=7)
    head = list(iterate(first, 6))  # hybrid: past its switch to Adam
    save_state(tmp_path / "state.pt", first)
    np.random.rand(5)  # other users of numpy's global stream must not matter
    tail = list(iterate(load_state(tmp_path / "state.pt", p)[0], 4))
    for a, b, c in zip(straight, again, head + tail):
        assert a.loss == b.loss == c.loss and a.iteration == c.iteration and a.evaluations == c.evaluations
        assert np.array_equal(a.params, b.params) and np.array_equal(a.params, c.params)
    assert tail[-1].wall_time >= head[-1].wall_time


def test_cmaes_seeds_differ():
    p = Problem(rastrigin, x0=np.full(3, 1.2), lower=-3, upper=3)
    a, b = (list(iterate(make_optimizer("cmaes", p, seed=s), 2))[-1] for s in (0, 1))
    assert not np.array_equal(a.params, b.params)


def test_bad_objective_and_settings_are_named():
    p = Problem(lambda x: (x * float("nan")).sum(), x0=np.zeros(2), lower=-1, upper=1)
    with pytest.raises(OptimizationError, match="nan"):
        make_optimizer("adam", p).step()
    assert "the loss is nan" in make_optimizer("cmaes", p).step().failure
    # samples the objective rejects rank last; the rest still steer the search
    holes = Problem(lambda x: torch.where(x[0] > 0.5, torch.tensor(float("inf"), dtype=torch.float64), ((x - 0.3) ** 2).sum()),
                    x0=np.zeros(2), lower=-1, upper=1)
    assert list(iterate(make_optimizer("cmaes", holes, seed=0), 40))[-1].best_loss < 1e-4
    with pytest.raises(ValueError, match="learning_rate"):
        make_optimizer("adam", p, {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        make_optimizer("sgd", p)
    with pytest.raises(ValueError, match="finite"):
        Problem(quadratic([0.0]), x0=np.zeros(1), lower=-np.inf, upper=1)
    with pytest.raises(FileNotFoundError, match="no saved optimizer state"):
        load_state(p and "/nonexistent/state.pt", p)


def thrown_ball(target: float, max_speed: float = 2.5):
    """A tiny simulator: a ball thrown at velocity 4 x (m/s) flies 20 steps of 10 ms under
    gravity; like the real solvers it checks each step and raises SimulationError once the
    ball is faster than max_speed. Loss: squared distance of the final x from target."""

    def loss(x: torch.Tensor) -> torch.Tensor:
        pos, vel = torch.zeros(2, dtype=torch.float64), 4.0 * x
        for step in range(20):
            vel = vel + 0.01 * torch.tensor([0.0, -9.81], dtype=torch.float64)
            pos = pos + 0.01 * vel
            speed = float(vel.detach().norm())
            if speed > max_speed:
                raise SimulationError(step, "ball", "speed", speed, f"{speed:.2f} m/s exceeds {max_speed} m/s")
        return (pos[0] - target) ** 2

    return loss


def test_failed_simulations_are_recorded_and_backed_off_from(tmp_path):
    # the target needs a throw close to the speed limit: bold steps overshoot into failures
    p = Problem(thrown_ball(target=0.38), x0=np.array([0.1, 0.1]), lower=-1, upper=1)
    settings = {"lr": 0.3, "warmup": 0, "horizon": 60, "init_noise": 0.0}
    adam = make_optimizer("adam", p, settings, seed=0)
    reports = list(iterate(adam, 60))
    failed = [r for r in reports if r.failure]
    assert failed and all(r.loss == math.inf and r.grad_norm is None and "ball: speed" in r.failure for r in failed)
    assert adam.step_scale == 0.5 ** len(failed)
    assert reports[-1].best_loss < 1e-6 and not reports[-1].failure  # it went on and got there
    assert all(np.isfinite(p.value(r.params)) for r in reports if not r.failure)
    # the back-off state survives a resume: the same run, stopped after its first failures
    first = make_optimizer("adam", p, settings, seed=0)
    head = list(iterate(first, reports.index(failed[1]) + 1))
    save_state(tmp_path / "state.pt", first)
    tail = list(iterate(load_state(tmp_path / "state.pt", p)[0], 60 - len(head)))
    assert [r.loss for r in head + tail] == [r.loss for r in reports]

    cmaes = make_optimizer("cmaes", p, {"sigma0": 0.5}, seed=0)
    reports = list(iterate(cmaes, 30))
    assert any(r.failure and "evaluations failed" in r.failure for r in reports)  # rejected samples, ranked last
    assert reports[-1].best_loss < 1e-6

    hybrid = make_optimizer("hybrid", p, {"explore": 3, "adam": {"lr": 0.3, "warmup": 0, "horizon": 30}}, seed=0)
    assert list(iterate(hybrid, 30))[-1].best_loss < 1e-6


def cliff(x):  # minimum 0 at 0.45; past the cliff at 0.5, a worse basin that slopes away to 0.9
    return torch.where(x < 0.5, (x - 0.45) ** 2, 1.0 + 0.1 * (x - 0.9) ** 2).sum()


def test_backtracking_undoes_a_step_over_a_cliff(tmp_path):
    p = Problem(cliff, x0=np.zeros(1), lower=-1, upper=1)
    settings = {"lr": 0.3, "warmup": 0, "horizon": 40, "init_noise": 0.0}
    plain = list(iterate(make_optimizer("adam", p, settings), 40))
    assert plain[-1].params[0] > 0.5 and plain[-1].best_loss == pytest.approx(0.45**2)  # lost in the far basin

    adam = make_optimizer("adam", p, {**settings, "backtrack": 3.0})
    reports = list(iterate(adam, 40))
    undone = [r for r in reports if r.failure]
    assert undone and all(np.isfinite(r.loss) and r.loss > 3 * r.best_loss and "back to the best" in r.failure for r in undone)
    assert reports[-1].best_loss < 1e-6 and adam.step_scale == 0.5 ** len(undone)
    save_state(tmp_path / "state.pt", adam)  # the halved steps survive a resume
    assert load_state(tmp_path / "state.pt", p)[0].step_scale == adam.step_scale
    with pytest.raises(ValueError, match="invalid Adam settings"):
        make_optimizer("adam", p, {"backtrack": 0.5})  # would undo every step that does not improve


def test_sampling_keeps_the_start_when_every_sample_is_worse():
    # the start is the optimum: every CMA-ES sample is worse, so the hybrid refines from it
    p = Problem(quadratic([0.2, 0.2]), x0=np.array([0.2, 0.2]), lower=-1, upper=1)
    hybrid = make_optimizer("hybrid", p, {"explore": 2, "adam": {"lr": 1e-4}}, seed=0)
    reports = list(iterate(hybrid, 3))
    assert reports[0].best_loss == 0.0 and np.array_equal(reports[0].params, p.x0)
    assert reports[2].phase == "adam" and np.allclose(reports[2].params, p.x0, atol=1e-12)


def test_a_run_that_fails_at_its_start_says_so():
    p = Problem(thrown_ball(target=0.38), x0=np.array([0.9, 0.9]), lower=-1, upper=1)  # too fast from the start
    with pytest.raises(OptimizationError, match="nothing to back off to.*ball: speed"):
        make_optimizer("adam", p, {"init_noise": 0.0}).step()
    report = make_optimizer("cmaes", p, {"sigma0": 0.01}, seed=0).step()
    assert report.loss == math.inf and report.failure.startswith("7 of 7 evaluations failed")


def test_adam_reads_moments_saved_by_torch_optim_adam():
    """Runs saved before the update was written out hold torch.optim.Adam's state dict."""
    from sim.optim.adam import _moments

    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    reference = torch.optim.Adam([z])
    assert _moments(reference.state_dict()) is None  # no step yet: fresh moments
    z.grad = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    reference.step()
    t, m, v = _moments(reference.state_dict())
    assert t == 1
    np.testing.assert_allclose(m, 0.1 * z.grad)
    np.testing.assert_allclose(v, 0.001 * z.grad**2)
