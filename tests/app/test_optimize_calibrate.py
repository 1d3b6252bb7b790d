"""Calibration: record a synthetic run with known pad parameters, start from perturbed ones,
recover each within 5% (with gradients through the FEM rollout); CLI errors are named."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from app.calibrate import calibrate, record_simulated
from app.cli import build_cli
from app.scene.io import load_scene

SCENE = """
schema_version: 2
name: press_and_slide
entities:
  - type: body
    name: bump
    shape: {kind: sphere, radius: 0.02}
    material: {kind: kinematic}
  - type: gripper
    name: gripper
    transform: {position: [-0.005, 0.0, 0.0245]}
    sensors:
      - name: pad
        finger: left
        size: [0.012, 0.012]
        thickness: 0.004
        material: {kind: fem_elastic, youngs_modulus: 5.0e+4, poisson_ratio: 0.45, density: 1100.0}
trajectory:
  tool: gripper
  interpolation: linear
  keyframes:
    - {time: 0.0, position: [-0.005, 0.0, 0.0245], opening: 0.04}
    - {time: 0.08, position: [-0.005, 0.0, 0.0236], opening: 0.04}
    - {time: 0.2, position: [0.003, 0.0, 0.0236], opening: 0.04}
simulation: {dt: 0.01, horizon: 20}
"""
TRUTH = {"youngs_modulus": 5.0e4, "friction": 0.3}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calib")
    scene_path = folder / "scene.yaml"
    scene_path.write_text(SCENE)
    forces = record_simulated(load_scene(scene_path), folder / "bag")
    assert forces[:, 2].max() > 0.3 and np.abs(forces[-1, 0]) > 0.05  # it pressed, and it slid
    return scene_path, folder / "bag"


def test_recovers_known_parameters_within_five_percent(recorded):
    scene_path, bag = recorded
    fit = calibrate(load_scene(scene_path), bag, ["youngs_modulus", "friction"], noise=0.01,
                    initial={"youngs_modulus": 6.5e4, "friction": 0.22})
    for row in fit.table():
        truth = TRUTH[row["name"]]
        assert abs(row["initial"] / truth - 1) > 0.2  # started well away
        assert abs(row["value"] / truth - 1) < 0.05, fit.table()
        assert np.isfinite(row["std"]) and row["std"] > 0
    assert fit.rms < 0.05 * fit.initial_rms


def test_cli_reports_values_and_names_problems(recorded, tmp_path):
    scene_path, bag = recorded
    result = CliRunner().invoke(build_cli(), ["calibrate", str(scene_path), "--recording", str(bag), "--param", "friction",
                                              "--out", str(tmp_path / "fit.json")])
    assert result.exit_code == 0, result.output
    fitted = json.loads((tmp_path / "fit.json").read_text())["parameters"][0]
    assert fitted["name"] == "friction" and fitted["value"] == pytest.approx(0.3, rel=0.05)
    assert "+-" in result.output and "fit error" in result.output
    bad = CliRunner().invoke(build_cli(), ["calibrate", str(scene_path), "--recording", str(bag), "--param", "colour"])
    assert bad.exit_code == 2 and "unknown parameters ['colour']" in bad.output
    missing = CliRunner().invoke(build_cli(), ["calibrate", str(scene_path), "--recording", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "cannot read the recording" in missing.output
