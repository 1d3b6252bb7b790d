"""The scene's optimizer names are the runner's, and old files' names still load."""

import typing

import pytest
from pydantic import ValidationError

from app.scene import model as m
from app.scene.io import scene_from_text
from sim.optim.optimizers import DEFAULT_OPTIMIZER, OPTIMIZERS


def test_scene_methods_are_the_runners_optimizers():
    offered = typing.get_args(m.OptimizerSettings.model_fields["method"].annotation)
    assert set(offered) == set(OPTIMIZERS) == set(m.OPTIMIZER_METHODS)
    assert m.OptimizerSettings().method == DEFAULT_OPTIMIZER == "hybrid"


def test_old_cma_name_loads_as_cmaes_and_never_run_names_are_refused():
    text = "schema_version: 2\nname: s\ntask:\n  kind: reach\n  optimizer: {method: %s}\n"
    assert scene_from_text(text % "cma", "old").task.optimizer.method == "cmaes"
    assert scene_from_text(text % "adam", "old").task.optimizer.method == "adam"
    with pytest.raises(ValidationError, match="'lbfgs' is no longer offered.*hybrid, adam, cmaes"):
        m.OptimizerSettings(method="lbfgs")
