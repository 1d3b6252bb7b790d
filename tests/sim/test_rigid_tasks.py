"""The tactile tasks on dynamic rigid bodies (sim.tasks.tactile_rigid): the shipped scenes
bind, bad hinge and target terms are named before anything is simulated, and the naive
scripted push or lift (the optimizers' start) simulates without doing the task."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from app.scene.io import load_scene
from app.services.optimize_tasks import bind_scene_task, task_context
from sim.rigid.spec import RigidBodySpec
from sim.tasks.registry import TermSpec, task_definition

TASK_SCENES = Path(__file__).resolve().parents[2] / "assets" / "scenes" / "tasks"
KINDS = ("open_lid", "push_block")


def _context(kind: str, **terms):
    """The shipped scene's task context with some loss terms replaced."""
    ctx = task_context(load_scene(TASK_SCENES / f"{kind}.yaml"))
    kept = [t for t in ctx.terms if t.kind not in terms]
    return dataclasses.replace(ctx, terms=kept + [TermSpec(k, target=tuple(v)) for k, v in terms.items()])


@pytest.mark.parametrize("kind", KINDS)
def test_scene_holds_a_dynamic_rigid_body_and_a_pad(kind):
    definition = task_definition(kind)
    assert definition.family == "tactile" and definition.scene == f"{kind}.yaml"
    ctx = _context(kind)
    rigid = [RigidBodySpec.from_scene(b) for b in ctx.bodies if b["material"]["kind"] == "rigid"]
    assert len(rigid) == 1 and rigid[0].mass > 0
    assert ctx.sensors and ctx.sensors[0]["pad"] == "flat"


def test_bad_terms_are_named_before_simulating():
    bind = task_definition("open_lid").bind
    defaults = task_definition("open_lid").defaults
    with pytest.raises(ValueError, match="outside the hinge's limits"):
        bind(_context("open_lid", angle=[2.0]), defaults)
    with pytest.raises(ValueError, match="'hinge' needs a target of 9 values"):
        bind(_context("open_lid", hinge=[0.0, 0.0, 0.0, 0.0, 1.0, 0.0]), defaults)
    with pytest.raises(ValueError, match="axis must be a non-zero vector"):
        bind(_context("open_lid", hinge=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5, 0.0]), defaults)
    with pytest.raises(ValueError, match="target yaw must turn the block"):
        task_definition("push_block").bind(_context("push_block", yaw=[0.0]), task_definition("push_block").defaults)
    with pytest.raises(ValueError, match="not a dynamic rigid one"):
        RigidBodySpec.from_scene({"name": "table", "shape": {"kind": "box", "size": [1, 1, 1]}, "material": {"kind": "kinematic"}})


@pytest.mark.parametrize("kind", KINDS)
def test_the_scripted_start_simulates_but_is_no_success(kind):
    task = bind_scene_task(load_scene(TASK_SCENES / f"{kind}.yaml"))
    loss = task.problem.value(task.problem.x0)
    assert np.isfinite(loss) and not task.success(loss)
    motion = task.motion(task.problem.x0)
    assert motion.shape == (task.parameterization.steps + 1, 4)
    assert np.ptp(motion[:, :3], axis=0).max() > 0.01  # the naive motion pushes or lifts by a centimetre or more


def _slow_push(steps: int):
    """The push_block scene's pusher rig and an eased 1 cm push along x from its start."""
    import torch

    from sim.tasks.tactile_rigid import PusherRig

    ctx = _context("push_block")
    rig = PusherRig(ctx, "x", [RigidBodySpec.from_scene(ctx.body("block"))], steps)
    s = np.linspace(0.0, 1.0, steps + 1)[:, None]
    ease = s - np.sin(2 * np.pi * s) / (2 * np.pi)
    return rig, torch.from_numpy(ctx.tool_start[:3] + 0.01 * ease * np.array([1.0, 0.0, 0.0]))


def test_rollout_gradients_of_every_steps_state_match_central_differences():
    """A loss on the state after every step (object poses, pad nodes), as calibration uses:
    each step's gradient enters the checkpointed adjoint on its way back."""
    import torch

    steps = 10
    rig, path = _slow_push(steps)
    rng = np.random.default_rng(3)
    weights = {k: torch.from_numpy(rng.normal(size=(steps, *rig.world.volumetric.state[k].shape)))
               for k in ("rigid_x", "rigid_q", "fem_x")}
    # at a pad friction of 0.4 the pad's stick-slip puts a kink within 1e-6 of these values
    # (one-sided differences disagree; the adjoint matches their limit at h = 1e-8)
    base = {"object_friction": 0.3, "friction": 0.5, "youngs_modulus": 1e5, "contact_stiffness": 1e8, "contact_damping": 10.0}

    def loss(values, p=path):
        states = rig.rollout(p, values)
        return sum((w * states[k]).sum() for k, w in weights.items())

    values = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in base.items()}
    moved = path.clone().requires_grad_(True)
    loss(values, moved).backward()
    with torch.no_grad():
        for name, v in base.items():
            h = 1e-6 * v
            fd = (float(loss({**base, name: v + h})) - float(loss({**base, name: v - h}))) / (2 * h)
            assert float(values[name].grad) == pytest.approx(fd, rel=1e-3), name
        d = torch.from_numpy(rng.normal(size=path.shape))
        d[0] = 0.0  # the start is fixed
        fd = (float(loss(base, path + 1e-8 * d)) - float(loss(base, path - 1e-8 * d))) / 2e-8
        assert float((moved.grad * d).sum()) == pytest.approx(fd, rel=1e-2)
    states = rig.rollout(path)
    assert torch.equal(rig.final(path)[0], states["rigid_x"][-1])
    assert states["rigid_x"][-1, 0, 0] > 0.002  # the block was pushed


def test_per_step_gradients_are_checked():
    from sim.volumetric import VolumetricRun

    rig, path = _slow_push(2)
    rig.world.set_actions(rig.actions(path.numpy()))
    with pytest.raises(ValueError, match=r"cannot record \['colour'\]"):
        VolumetricRun(rig.world, record=("colour",))
    run = VolumetricRun(rig.world, record=("rigid_x",))
    assert run.states["rigid_x"].shape == (2, 1, 3)
    with pytest.raises(ValueError, match="no state 'colour'"):
        run.backward({}, {"colour": np.zeros((2, 1, 3))})
    with pytest.raises(ValueError, match=r"has shape \(1, 1, 3\), not \(2, 1, 3\)"):
        run.backward({}, {"rigid_x": np.zeros((1, 1, 3))})
    with pytest.raises(ValueError, match=r"unknown rig parameters \['mass'\]"):
        rig.params({"mass": 1.0})
