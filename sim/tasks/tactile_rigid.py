"""Tactile tasks on dynamic rigid bodies (sim.rigid): a tactile pad on a pusher opens a
hinged lid to a target angle (open_lid) or turns a block on the table to a target heading
by pushing it (push_block).

The pad is the tool's tactile sensor glued to a pusher: its back follows the tool's
position, its gel faces the push. The scene's kinematic boxes are the table (and the lid's
base); its ``rigid`` bodies move. Everything steps in the volumetric world (sim.volumetric):
pad, bodies and their contacts share substeps and its checkpointed adjoint gives the loss
gradient. As in sim.tasks.pad_rig the pad presses quasi-statically, so it is damped and
mass-scaled until its explicit substep is no shorter than the rigid bodies' own. The
optimizer shapes the pusher's path in two channels through a B-spline; the third stays put.
A fixed tail follows the optimized motion (the pad backs off, or holds), so what is scored
is where the body stays, not where it is while still pushed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from sim.optim.parameterization import Channels, SpeedLimit, SplineKeyframes
from sim.optim.problem import Problem
from sim.rigid.spec import Hinge, RigidBodySpec
from sim.spec import ColliderSpec
from sim.tasks.base import BoundTask, TaskDefaults, optimizer_settings
from sim.tasks.pad_rig import RIGID_SHAPES, shape_of
from sim.tasks.registry import TaskContext, TaskDefinition, register
from sim.tasks.volumetric import with_tail

PAD_DAMPING = 100.0  # 1/s, as the pad rig's: presses settle within a step
PAD_ELEMENT = 3.5e-3  # m, the pad's element edge (a 1 cm pad: 3 x 3 x 2 cells)
TAIL = 5  # steps after the optimized motion
FACING = {"x": (math.sqrt(0.5), 0.0, math.sqrt(0.5), 0.0), "-x": (math.sqrt(0.5), 0.0, -math.sqrt(0.5), 0.0),
          "z": (1.0, 0.0, 0.0, 0.0)}  # pad +z -> world axis


def _sensor(ctx: TaskContext) -> dict:
    if not ctx.sensors:
        raise ValueError(f"tool {ctx.tool!r} carries no tactile sensor; tactile tasks need one")
    sensor = ctx.sensors[0]
    if sensor.get("pad", "flat") != "flat":
        raise ValueError(f"tactile sensor {sensor['name']!r}: only flat pads push rigid bodies in these tasks")
    return sensor


def _static_colliders(ctx: TaskContext):
    """Every kinematic box, sphere, cylinder or capsule of the scene as a static collider."""
    out = []
    for b in ctx.bodies:
        if b["material"]["kind"] == "kinematic" and b["shape"]["kind"] in RIGID_SHAPES:
            shape = shape_of(b)
            pose = b["transform"]
            out.append(ColliderSpec(b["name"], shape.shape, shape.size, tuple(pose["position"]), tuple(pose["rotation"]),
                                    friction=b["material"]["friction"]))
    return out


class PusherRig:
    """The pad on a pusher and the scene's rigid bodies in one volumetric world."""

    def __init__(self, ctx: TaskContext, facing: str, bodies: list[RigidBodySpec], steps: int):
        from sim.fem.mesh import flat_pad
        from sim.fem.solver import stable_dt
        from sim.fem.spec import FemBodySpec, FemMaterial
        from sim.rigid.system import RigidSystem
        from sim.spec import Settings, ToolSpec, WorldSpec
        from sim.fem.spec import DEFAULT_CONTACT
        from sim.world import World

        sensor = _sensor(ctx)
        (w, h), thick, m = sensor["size"], sensor["thickness"], sensor["material"]
        cells = (max(2, round(w / PAD_ELEMENT)), max(2, round(h / PAD_ELEMENT)), 2)
        pad = FemBodySpec(sensor["name"], flat_pad((w, h, thick), cells),
                          FemMaterial(m["youngs_modulus"], m["poisson_ratio"], m["density"], PAD_DAMPING),
                          rotation=FACING[facing], mount="pusher")
        substep = RigidSystem.stable_dt(bodies, DEFAULT_CONTACT.stiffness)
        scale = max(1.0, math.ceil((substep / stable_dt([pad], DEFAULT_CONTACT)) ** 2))
        pad = dataclasses.replace(pad, mass_scale=float(scale))
        self.start = np.asarray(ctx.tool_start[:3], np.float64)
        pusher = ColliderSpec("pusher", "box", (0.5 * w, 0.5 * h, 0.5 * thick))
        tool = ToolSpec("pusher", "rigid", ("pusher",), position=tuple(self.start))
        spec = WorldSpec(Settings(dt=ctx.dt, steps=steps, gravity=(0.0, 0.0, -9.81)),
                         colliders=(*_static_colliders(ctx), pusher), tools=(tool,), fem_bodies=(pad,),
                         rigid_bodies=tuple(bodies))
        self.world = World(spec)
        self.steps = steps
        self.defaults = self.world.params()
        self.pad = pad

    def actions(self, path: np.ndarray) -> np.ndarray:
        """(steps, 1, 8) tool actions for a (steps + 1, 3) path from the start."""
        if path.shape != (self.steps + 1, 3):
            raise ValueError(f"the pusher's path must have shape ({self.steps + 1}, 3), got {path.shape}")
        acts = np.zeros((self.steps, 1, 8))
        acts[:, 0, :3] = path[1:]
        acts[:, 0, 3] = 1.0
        return acts

    def params(self, values: dict[str, float]) -> dict[str, np.ndarray]:
        """The world's parameters with ``values`` (keys of RIG_PARAMETERS) put in."""
        unknown = sorted(set(values) - set(RIG_PARAMETERS))
        if unknown:
            raise ValueError(f"unknown rig parameters {unknown} (expected some of {list(RIG_PARAMETERS)})")
        params = {k: v.copy() for k, v in self.defaults.items()}
        for name, value in values.items():
            key, slot = RIG_PARAMETERS[name]
            if slot is None:
                params[key][:] = value
            else:
                params[key][slot] = value
        return params

    def rollout(self, path: torch.Tensor, values: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The state after every step (key -> (steps, ...): "rigid_x" centres, "rigid_q"
        quaternions w, x, y, z, "rigid_angle" hinge angle and rate, "fem_x" pad nodes) when
        the pusher follows ``path``, with ``values`` (RIG_PARAMETERS) in place of the
        scene's; differentiable w.r.t. the path and the values."""
        names = tuple(values or {})
        out = _Rollout.apply(self, path, names, *(torch.as_tensor(values[n], dtype=torch.float64) for n in names))
        return dict(zip(RECORDED, out))

    def final(self, path: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The rigid bodies' final centres (B, 3), quaternions (B, 4) and hinge (angle, rate)
        (B, 2) after the pusher follows ``path``; differentiable w.r.t. the path."""
        states = self.rollout(path)
        return states["rigid_x"][-1], states["rigid_q"][-1], states["rigid_angle"][-1]


# calibration's parameter names -> (world parameter, slot of it; None: every entry)
RIG_PARAMETERS = {
    "youngs_modulus": ("fem_youngs_modulus", None),  # Pa, the pad
    "contact_stiffness": ("volumetric_contact", 0),
    "contact_damping": ("volumetric_contact", 1),
    "friction": ("volumetric_contact", 2),  # the pad against the bodies
    "object_friction": ("rigid_friction", None),  # every moving body against the fixed surfaces
}
RECORDED = ("rigid_x", "rigid_q", "rigid_angle", "fem_x")


class _Rollout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rig: PusherRig, path: torch.Tensor, names: tuple[str, ...], *values: torch.Tensor):
        from sim.volumetric import VolumetricRun

        actions = rig.actions(path.detach().numpy().astype(np.float64))
        params = rig.params({n: float(v) for n, v in zip(names, values)})
        rig.world.set_actions(actions)
        rig.world.set_params(params)
        run = VolumetricRun(rig.world, record=RECORDED)
        ctx.rig, ctx.run, ctx.actions, ctx.params, ctx.names, ctx.shape = rig, run, actions, params, names, tuple(path.shape)
        return tuple(torch.from_numpy(run.states[k]) for k in RECORDED)

    @staticmethod
    def backward(ctx, *grads):
        # another evaluation may have changed the tool's motion or the parameters since
        ctx.rig.world.set_actions(ctx.actions)
        ctx.rig.world.set_params(ctx.params)
        per_step = {k: g.detach().numpy().astype(np.float64) for k, g in zip(RECORDED, grads) if g is not None}
        result = ctx.run.backward({}, per_step)
        out = np.zeros(ctx.shape)
        out[1:] = result.actions[:, 0, :3]
        values = []
        for name in ctx.names:
            key, slot = RIG_PARAMETERS[name]
            g = result.params[key]
            values.append(torch.tensor(float(g.sum() if slot is None else g[slot]), dtype=torch.float64))
        return None, torch.from_numpy(out), None, *values


def _yaw(q: torch.Tensor) -> torch.Tensor:
    """Heading of the body's local x axis about world z (rad)."""
    w, x, y, z = (q / q.norm()).unbind(-1)
    return torch.atan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z))


def _bind(kind: str, ctx: TaskContext, defaults: TaskDefaults, facing: str, moved: tuple[int, int], bodies, reach,
          speed: float, score, scripted, retreat: float) -> BoundTask:
    """The shared binding: the pad pushes along ``facing``; channels ``moved`` (indices into
    x, y, z) follow a B-spline boxed by ``reach`` ((lower, upper) offsets from the start);
    score(final state, hold time) -> loss; scripted(keyframe fractions) -> (k, 2) offsets of
    the naive motion the optimizers start from; the tail backs the pad off by ``retreat``."""
    start = np.asarray(ctx.tool_start, np.float64)
    rig = PusherRig(ctx, facing, bodies, ctx.horizon + TAIL)
    names = tuple("xyz"[i] for i in moved)
    channels = Channels(names, tuple(start[i] + reach[0][j] for j, i in enumerate(moved)),
                        tuple(start[i] + reach[1][j] for j, i in enumerate(moved)), (SpeedLimit((0, 1), speed),))
    param = SplineKeyframes(channels, ctx.horizon, ctx.dt, start[list(moved)], keyframes=5)
    back = [0.0, 0.0, 0.0]
    back["xyz".index(facing)] = -retreat

    def motion(decoded: torch.Tensor) -> torch.Tensor:
        full = torch.as_tensor(start, dtype=decoded.dtype).repeat(len(decoded), 1)
        return torch.cat([full[:, :moved[0]], decoded[:, :1], full[:, moved[0] + 1:moved[1]], decoded[:, 1:],
                          full[:, moved[1] + 1:]], dim=1)

    def loss(x: torch.Tensor) -> torch.Tensor:
        path = with_tail(motion(param.decode(x)), TAIL, back)
        return score(rig.final(path[:, :3]), TAIL * ctx.dt)

    frac = np.linspace(0.0, 1.0, param.keyframes)[1:]
    x0 = param.project((start[list(moved)] + np.asarray(scripted(frac))).reshape(-1))
    problem = Problem.from_parameterization(param, loss, x0=x0)

    def tool_motion(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return motion(param.decode(torch.as_tensor(x, dtype=torch.float64))).numpy()

    return BoundTask(kind, param, problem, defaults, ctx.tool, tool_motion)


# ---------------------------------------------------------------- open a hinged lid


def _bind_open_lid(ctx: TaskContext, defaults: TaskDefaults) -> BoundTask:
    """Lift a hinged lid from below its overhanging edge with the pad (gel up) until it
    stands at the target angle (term "angle", rad), and hold it there. The hinge is term
    "hinge" on the lid: [pivot x, y, z, axis x, y, z, lower, upper (rad), damping (N m s/rad)].
    Loss: squared relative angle error after a 5-step hold, plus the lid's rate times the
    hold's duration over the target (it must be held still, not swinging through)."""
    term = ctx.term("hinge")
    name = term.entity if term and term.entity else "lid"
    h = ctx.target("hinge", [-0.03, 0.0, 0.0235, 0.0, -1.0, 0.0, 0.0, 1.5, 1e-4], 9)
    hinge = Hinge(tuple(h[:3]), tuple(h[3:6]), lower=float(h[6]), upper=float(h[7]), damping=float(h[8]))
    target = float(ctx.target("angle", [0.35], 1)[0])
    if not hinge.lower < target < hinge.upper:
        raise ValueError(f"open_lid: target angle {target} rad lies outside the hinge's limits [{hinge.lower}, {hinge.upper}]")
    lid = RigidBodySpec.from_scene(ctx.body(name), hinge)

    def score(final, hold):
        theta, rate = final[2][0, 0], final[2][0, 1]
        return ((theta - target) / target) ** 2 + (rate * hold / target) ** 2

    # the naive lift: straight up by the rise of the lid's free edge at the target angle
    rise = 2 * lid.size[0] * math.sin(target)
    return _bind("open_lid", ctx, defaults, "z", (0, 2), [lid], ((-0.02, -0.005), (0.01, 0.06)), 0.3, score,
                 lambda f: f[:, None] * np.array([0.0, rise]), retreat=0.0)


# ---------------------------------------------------------------- reorient a block by pushing


def _bind_push_block(ctx: TaskContext, defaults: TaskDefaults) -> BoundTask:
    """Push a block across the table with the pad (gel facing +x) until it has turned to the
    target heading (term "yaw", rad about z, from its start) and stays there once the pad
    has backed off 5 mm. Loss: squared relative heading error."""
    term = ctx.term("yaw")
    name = term.entity if term and term.entity else "block"
    target = float(ctx.target("yaw", [-0.7854], 1)[0])
    if target == 0:
        raise ValueError("push_block: the target yaw must turn the block (non-zero, rad)")
    block = RigidBodySpec.from_scene(ctx.body(name))
    yaw0 = float(_yaw(torch.tensor(block.rotation, dtype=torch.float64)))

    def score(final, hold):
        return ((_yaw(final[1][0]) - yaw0 - target) / target) ** 2

    # the naive push: straight along +x by the block's size
    return _bind("push_block", ctx, defaults, "x", (0, 1), [block], ((-0.005, -0.02), (0.05, 0.02)), 0.2, score,
                 lambda f: f[:, None] * np.array([2 * block.size[0], 0.0]), retreat=0.005)


# Both start from the naive script; a few generations of samples around it find the basin.
_SETTINGS = optimizer_settings(20, explore=3, cmaes={"popsize": 6, "sigma0": 0.15},
                               adam={"lr": 0.05, "final_lr_ratio": 0.05, "clip_norm": 1.0})

register(
    TaskDefinition(
        kind="open_lid",
        family="tactile",
        description="Lift a hinged lid with a tactile pad to a target angle (rad) and hold it there",
        scene="open_lid.yaml",
        defaults=TaskDefaults(success_threshold=0.01, iterations=20, time_budget_s=900.0, optimizer_settings=_SETTINGS),
        bind=_bind_open_lid,
    )
)

register(
    TaskDefinition(
        kind="push_block",
        family="tactile",
        description="Turn a block on the table to a target heading (rad) by pushing it with a tactile pad",
        scene="push_block.yaml",
        defaults=TaskDefaults(success_threshold=0.01, iterations=20, time_budget_s=900.0, optimizer_settings=_SETTINGS),
        bind=_bind_push_block,
    )
)
