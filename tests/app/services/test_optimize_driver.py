"""Optimizer names a scene may use, and what makes a scene not optimizable."""

import pytest

from app.scene import model as m
from app.services.optimize_driver import optimizer_for, why_not_optimizable


def test_scene_optimizer_names_and_availability():
    assert [optimizer_for(m) for m in ("hybrid", "adam", "cmaes")] == ["hybrid", "adam", "cmaes"]
    with pytest.raises(ValueError, match="'sgd' is not implemented"):
        optimizer_for("sgd")
    scene = m.Scene(task=m.Task(kind="reach"))
    assert why_not_optimizable(scene) == ""
    scene.task.kind = "juggle"
    assert "juggle" in why_not_optimizable(scene)
