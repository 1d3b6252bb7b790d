"""Check rollout gradients against float64 central finite differences along random directions.

For each parameter kind the check draws a random direction d, compares the adjoint
directional derivative g.d with (L(p + h d) - L(p - h d)) / 2h and reports the relative
error. The loss is any function of the observed shell positions given as
``loss(observed) -> (value, dvalue/dobserved)``; by default a fixed random linear form of
the final positions (so every vertex and coordinate matters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from sim.rollout import rollout
from sim.world import World

# fem_youngs_modulus: the pads' and soft bodies' moduli, where shells touch them (sim.pad_shell)
KINDS = ("actions", "keyframes", "youngs_modulus", "bending_stiffness", "friction", "contact_stiffness", "initial_pose",
         "fem_youngs_modulus")
_PARAM_OF = {"friction": "collider_friction", "contact_stiffness": "collider_stiffness"}


@dataclass
class CheckResult:
    kind: str
    analytic: float
    numeric: float
    step: float
    inactive: bool = False  # the parameter barely moves the loss: both sides are solver noise

    @property
    def rel_error(self) -> float:
        scale = max(abs(self.analytic), abs(self.numeric))
        return abs(self.analytic - self.numeric) / scale if scale > 0 else 0.0


def directional_check(kind: str, grad: np.ndarray, direction: np.ndarray, step: float,
                      loss_at: Callable[[np.ndarray], float], value: float) -> CheckResult:
    """grad . direction against the central difference of ``loss_at(offset)`` (the loss with
    the parameter moved by offset) at offsets +-step * direction. Directions are O(1) moves
    (relative ones for materials): a change of the loss below 1e-8 of its size (``value``)
    means the parameter does not act on this run."""
    analytic = float(np.sum(grad * direction))
    numeric = (loss_at(step * direction) - loss_at(-step * direction)) / (2 * step)
    inactive = max(abs(analytic), abs(numeric)) <= 1e-8 * max(abs(value), 1e-30)
    return CheckResult(kind, analytic, numeric, step, inactive)


def action_direction(rng: np.random.Generator, actions: np.ndarray, rotation_scale: float) -> np.ndarray:
    """A random direction for per-step tool actions, its quaternion part scaled down."""
    d = rng.normal(size=actions.shape)
    d[..., 3:7] *= rotation_scale
    return d


def random_linear_loss(shape: tuple[int, ...], seed: int = 0) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    weights = np.random.default_rng(seed).normal(size=shape)
    return lambda observed: (float(np.sum(weights * observed)), weights)


def check_gradients(
    world: World,
    kinds: tuple[str, ...] = KINDS,
    loss: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
    seed: int = 0,
    rel_step: float = 1e-6,
    keyframes: tuple[np.ndarray, np.ndarray, int] | None = None,
) -> list[CheckResult]:
    """``keyframes`` = (W, values, tool slot): the actions of that tool are W @ values, and
    the "keyframes" kind moves the values (skipped without it)."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown parameter kinds {unknown} (expected some of {KINDS})")
    steps = world.spec.settings.steps
    actions = world.spec.resolved_actions()
    params = world.params()
    x0 = world.shells.x_init.copy()
    rng = np.random.default_rng(seed)
    nv = world.shells.nv
    loss = loss or random_linear_loss((1, nv, 3), seed)

    def evaluate(acts, prm, x_init):
        run = rollout(world, acts, prm, [steps], {"x": x_init})
        return run, loss(run.observed)

    run, (value, dobs) = evaluate(actions, params, x0)
    grads = run.backward(dobs)
    results = []
    for kind in kinds:
        if kind == "actions":
            if not world.spec.tools:
                continue
            h = rel_step * max(1.0, np.abs(actions).max())
            d = action_direction(rng, actions, 0.1)  # keep quaternion moves modest
            result = directional_check(kind, grads.actions, d, h, lambda o: evaluate(actions + o, params, x0)[1][0], value)
        elif kind == "keyframes":
            if keyframes is None:
                continue
            weights, values, slot = keyframes
            dk = rng.normal(size=values.shape)
            dk[:, 3:7] *= 0.1
            h = rel_step * max(1.0, np.abs(values).max())

            def moved(offset):
                acts = actions.copy()
                acts[:, slot] += weights @ offset
                return evaluate(acts, params, x0)[1][0]

            result = directional_check(kind, weights.T @ grads.actions[:, slot], dk, h, moved, value)  # chain through W
        elif kind == "initial_pose":
            # a rigid move of every shell: a translation plus a small rotation about the centroid
            c = x0.mean(0)
            w, t = rng.normal(size=3), rng.normal(size=3)
            d = np.cross(w, x0 - c) + t
            d[world.shells.free_np[:nv] == 0] = 0.0  # pinned vertices stay where they are pinned
            result = directional_check(kind, grads.initial_x, d, rel_step, lambda o: evaluate(actions, params, x0 + o)[1][0], value)
        else:
            key = _PARAM_OF.get(kind, kind)
            if key not in params or params[key].size == 0:
                continue
            d = rng.uniform(0.5, 1.5, size=params[key].shape) * params[key]  # relative direction
            result = directional_check(kind, grads.params[key], d, rel_step,
                                       lambda o: evaluate(actions, {**params, key: params[key] + o}, x0)[1][0], value)
        results.append(result)
    world.set_params(params)
    world.set_actions(actions)
    return results
