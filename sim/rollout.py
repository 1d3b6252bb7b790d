"""Rollouts and their gradients, in numpy and as a torch autograd function.

Usage (numpy)::

    world = World(spec)
    run = rollout(world, actions, params, observe=[spec.settings.steps])
    run.observed            # (len(observe), vertices, 3) shell positions at those steps
    grads = run.backward(dloss_dobserved)
    grads.actions           # (steps, tools, 8)
    grads.params            # {"youngs_modulus": (shells,), "bending_stiffness": (shells,),
                            #  "collider_friction": (colliders,), "collider_stiffness": (colliders,)}
    grads.initial_x, grads.initial_v   # (vertices, 3)

Usage (torch)::

    observed = simulate(world, actions_t, params_t, observe=[...], initial_x=x0_t)
    loss = my_loss(observed); loss.backward()   # grads land on actions_t, params_t values, x0_t

Every tensor is float64. The forward keeps states in memory (numpy) only at segment
boundaries (``segment`` steps apart) and at the end; the backward recomputes each segment
forward from its checkpoint, then runs the adjoint steps through it in reverse, so memory
grows with the number of checkpoints plus one segment, never with the horizon times the
state. By default every step is a checkpoint (nothing is recomputed) while all the states
fit in ``settings.checkpoint_budget_mb``; beyond that, segments of about sqrt(steps) steps.
All calls must run on the simulation thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from sim.checkpoints import checkpoint_interval
from sim.tools import action_gradient
from sim.world import World

PARAM_KEYS = ("youngs_modulus", "bending_stiffness", "collider_friction", "collider_stiffness")


@dataclass
class Gradients:
    actions: np.ndarray
    poses: np.ndarray  # (steps + 1, colliders, 7)
    params: dict[str, np.ndarray]
    initial_x: np.ndarray
    initial_v: np.ndarray


@dataclass
class Rollout:
    world: World
    poses: np.ndarray
    observe: list[int]
    observed: np.ndarray
    checkpoints: dict[int, dict] = field(default_factory=dict)
    stats: list[dict] = field(default_factory=list)
    segment: int = 1
    actions_t: torch.Tensor | None = None

    def backward(self, grad_observed: np.ndarray) -> Gradients:
        pose_grads, params, gx, gv = _backward(self, np.asarray(grad_observed, np.float64))
        actions = np.zeros_like(self.world.actions)
        if self.actions_t is not None and self.actions_t.numel():
            actions = action_gradient(self.world.spec, self.actions_t.detach().numpy(), pose_grads)
        return Gradients(actions, pose_grads, params, gx, gv)

    def memory_bytes(self) -> int:
        """Bytes held by the checkpoints (what the backward pass keeps besides one segment)."""
        return sum(a.nbytes for cp in self.checkpoints.values() for a in _arrays(cp))


def _arrays(state: dict):
    for value in state.values():
        if isinstance(value, dict):
            yield from _arrays(value)
        elif isinstance(value, np.ndarray):
            yield value


def rollout(
    world: World,
    actions: np.ndarray | None = None,
    params: dict[str, np.ndarray] | None = None,
    observe: list[int] | None = None,
    initial: dict[str, np.ndarray] | None = None,
    segment: int | None = None,
    on_step=None,
) -> Rollout:
    """Run the whole trajectory from the initial state. ``initial`` may override the shells'
    initial positions ``x`` and velocities ``v``. ``on_step(k, stats)`` is called after
    each step (progress, cancellation)."""
    spec = world.spec
    steps = spec.settings.steps
    actions = spec.resolved_actions() if actions is None else np.asarray(actions, np.float64)
    world.set_actions(actions)
    if params is not None:
        world.set_params(params)
    observe = sorted(set([steps] if observe is None else observe))
    if observe and not (0 <= observe[0] and observe[-1] <= steps):
        raise ValueError(f"observed steps must be within 0..{steps}, got {observe}")
    world.reset()
    if initial is not None:
        world.shells.reset(initial.get("x"), initial.get("v"))
    segment = segment or _default_segment(world.get_state(), steps, spec.settings.checkpoint_budget_mb)
    run = Rollout(world, world.poses, observe, np.zeros((len(observe), world.shells.nv, 3)), segment=segment)
    run.actions_t = torch.as_tensor(actions)
    slot = {k: i for i, k in enumerate(observe)}
    for k in range(steps + 1):
        if k % segment == 0:
            run.checkpoints[k] = world.get_state()
        if k in slot:
            run.observed[slot[k]] = world.shells.get_state()["x"]
        if k == steps:
            run.checkpoints[k] = world.get_state()  # the last segment's end: never recomputed
            break
        stats = world.step()
        run.stats.append(stats)
        if on_step is not None:
            on_step(k, stats)
    return run


def _default_segment(state: dict, steps: int, budget_mb: float) -> int:
    return checkpoint_interval(steps, sum(a.nbytes for a in _arrays(state)), budget_mb)


def _backward(run: Rollout, grad_observed: np.ndarray):
    world, shells = run.world, run.world.shells
    spec = world.spec
    steps, settings = spec.settings.steps, spec.settings
    if grad_observed.shape != run.observed.shape:
        raise ValueError(f"grad_observed must have shape {run.observed.shape}, got {grad_observed.shape}")
    slot = {k: i for i, k in enumerate(run.observe)}
    pose_grads = np.zeros((steps + 1, world.colliders.count, 7))
    params: dict[str, np.ndarray] = {}
    zero = shells.get_state()
    adj = {key: np.zeros_like(val) for key, val in zero.items()}
    if steps in slot:
        adj["x"] = adj["x"] + grad_observed[slot[steps]]
    coupled = world.coupling is not None  # shells touching FEM bodies (sim.pad_shell)
    if coupled:
        vol = world.volumetric
        vol.clear_param_grads()
        vol_adj = {key: np.zeros_like(val) for key, val in vol.get_state().items()}
    starts = sorted(run.checkpoints, reverse=True)
    for start in starts:
        end = min(start + run.segment, steps)
        if start == steps:
            continue
        # recompute the segment forward, keeping each step's start state; its end is the
        # next checkpoint
        world.set_state(run.checkpoints[start])
        states = [world.get_state()]
        for _ in range(start, end - 1):
            world.step()
            states.append(world.get_state())
        states.append(run.checkpoints[end])
        for k in range(end - 1, start - 1, -1):
            before, after = states[k - start], states[k + 1 - start]
            world.colliders.set_poses(run.poses[k], run.poses[k + 1])
            obstacles = None
            if coupled:  # the volumetric part went last: its adjoint first
                vol.set_shell_points(before[shells.name]["x"], after[shells.name]["x"])
                vol_adj, g_pos = vol.backward_step(k, before[vol.name], vol_adj)
                pose_grads[k, :, :3] += g_pos[0]
                pose_grads[k + 1, :, :3] += g_pos[1]
                g_points0, g_points1 = vol.shell_point_grads()
                adj = {**adj, "x": adj["x"] + g_points1}
                obstacles = world.coupling.obstacles(before[vol.name])
            adj, step_params = shells.backward_step(
                k, before[shells.name], after[shells.name]["x"], adj, settings.adjoint_tol, settings.cg_max_iter, obstacles
            )
            if coupled:
                adj["x"] = adj["x"] + g_points0
                vol_adj = world.coupling.obstacle_adjoint(vol_adj, *shells.obstacle_grads)
            for key, value in step_params.items():
                params[key] = params.get(key, 0.0) + value
            g_start, g_end = world.colliders.pose_grads()
            pose_grads[k] += g_start
            pose_grads[k + 1] += g_end
            if k in slot:
                adj["x"] = adj["x"] + grad_observed[slot[k]]
    if coupled:
        params.update(vol.param_grads())
    init = shells.initial_state_adjoint(adj)
    return pose_grads, params, init["x"], init["v"]


class _Simulate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, world, observe, segment, actions, youngs, bend, friction, stiffness, x0, v0):
        params = {
            "youngs_modulus": youngs.detach().numpy(),
            "bending_stiffness": bend.detach().numpy(),
            "collider_friction": friction.detach().numpy(),
            "collider_stiffness": stiffness.detach().numpy(),
        }
        run = rollout(world, actions.detach().numpy(), params, observe,
                      {"x": x0.detach().numpy(), "v": v0.detach().numpy()}, segment)
        ctx.run = run
        return torch.as_tensor(run.observed.copy())

    @staticmethod
    def backward(ctx, grad_out):
        g = ctx.run.backward(grad_out.detach().numpy())
        t = torch.as_tensor
        return (None, None, None, t(g.actions), t(g.params["youngs_modulus"]), t(g.params["bending_stiffness"]),
                t(g.params["collider_friction"]), t(g.params["collider_stiffness"]), t(g.initial_x), t(g.initial_v))


def simulate(
    world: World,
    actions: torch.Tensor,
    params: dict[str, torch.Tensor] | None = None,
    observe: list[int] | None = None,
    initial_x: torch.Tensor | None = None,
    initial_v: torch.Tensor | None = None,
    segment: int | None = None,
) -> torch.Tensor:
    """Differentiable rollout: observed shell positions (len(observe), vertices, 3).

    Gradients flow to ``actions``, every tensor in ``params`` (keys as ``PARAM_KEYS``;
    missing ones are taken from the world and get no gradient), ``initial_x`` and
    ``initial_v`` (default: the spec's initial state)."""
    defaults = world.params()
    params = dict(params or {})
    full = [params.get(k, torch.as_tensor(defaults[k])) for k in PARAM_KEYS]
    shells = world.shells
    x0 = initial_x if initial_x is not None else torch.as_tensor(shells.x_init)
    v0 = initial_v if initial_v is not None else torch.as_tensor(shells.v_init)
    return _Simulate.apply(world, observe, segment, actions, *full, x0, v0)
