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
