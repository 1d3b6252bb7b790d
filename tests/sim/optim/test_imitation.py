"""Imitation from one demonstration: a policy trained through the FEM rollout reproduces the
demonstrated contact on perturbed starts better than replaying the demonstration."""

from pathlib import Path

import numpy as np
import pytest

from app.scene.io import load_scene
from app.services.optimize_tasks import task_context
from sim.optim.parameterization import Channels, SpeedLimit, SplineKeyframes
from sim.tasks.imitation import Imitation, KeyframePolicy
from sim.tasks.pad_rig import build_pad_rig

SCENE = Path(__file__).resolve().parents[3] / "assets" / "scenes" / "tasks" / "tactile_press.yaml"


@pytest.mark.slow  # 25 gradient rollouts of the FEM pad: 30-50 s on the 2-core machine
def test_policy_beats_replaying_the_demonstration_on_perturbed_starts():
    ctx = task_context(load_scene(SCENE))
    start = ctx.tool_start[:3]
    rig = build_pad_rig(ctx.sensors[0], ctx.bodies, ctx.horizon, ctx.dt, start)
    box = Channels(("x", "y", "z"), tuple(start - [0.006, 0.006, 0.003]), tuple(start + [0.006, 0.006, 0.001]), (SpeedLimit((0, 1, 2), 0.05),))
    param = SplineKeyframes(box, ctx.horizon, ctx.dt, start, keyframes=3)
    imitation = Imitation(rig, param)
    demo_params = param.project(np.concatenate([start + [0, 0, -0.0005], start + [0, 0, -0.0011]]))  # press straight down
    demo = imitation.demonstrate(demo_params)
    policy = KeyframePolicy(demo_params)
    unseen = np.array([[0.0015, 0.001], [-0.0012, 0.0015], [0.001, -0.0015], [-0.0015, -0.001]])
    before = imitation.evaluate(demo, policy, unseen)
    assert before["policy_mean"] == pytest.approx(before["replay_mean"])  # the untrained policy is the replay
    assert imitation.evaluate(demo, policy, np.zeros((1, 2)))["policy_mean"] < 1e-12  # the demo reproduces itself
    for _ in imitation.train(demo, policy, iterations=25, spread=0.002, lr=0.03):
        pass
    after = imitation.evaluate(demo, policy, unseen)
    assert after["policy_mean"] < 0.5 * after["replay_mean"], after
