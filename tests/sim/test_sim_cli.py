"""deft simulate and deft gradcheck, driven through the real CLI."""

import json
from pathlib import Path

from typer.testing import CliRunner

from app.cli import build_cli

SCENE = Path(__file__).parent / "data" / "pinch_lift.yaml"


def test_gradcheck_passes_on_the_pinch_lift_scene():
    # every kind is checked against finite differences in test_gradients; here the CLI path
    # (scene compile, keyframe chain, task loss) with the kinds that need the scene file
    args = ["gradcheck", str(SCENE), "--steps", "14", "--params", "keyframes", "--params", "friction"]
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    assert "keyframes" in result.output and "friction" in result.output
    assert "FAIL" not in result.output and "inactive" not in result.output


def test_gradcheck_fails_when_the_tolerance_cannot_be_met():
    result = CliRunner().invoke(build_cli(), ["gradcheck", str(SCENE), "--steps", "3", "--params", "initial_pose",
                                              "--tolerance", "1e-15"])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output


def test_gradcheck_names_an_unknown_parameter_kind():
    result = CliRunner().invoke(build_cli(), ["gradcheck", str(SCENE), "--params", "mass"])
    assert result.exit_code == 2
    assert "mass" in result.output


def test_simulate_writes_frames_and_a_summary(tmp_path):
    result = CliRunner().invoke(build_cli(), ["simulate", str(SCENE), "--steps", "12", "--out", str(tmp_path), "--every", "4"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 12 and summary["error"] is None
    assert summary["max_contacts"] > 0  # the fingers and the table touch the sheet
    assert summary["task_loss"] > 0
    pvd = (tmp_path / "frames.pvd").read_text()
    assert pvd.count("<DataSet") == 4  # steps 0, 4, 8, 12
    frame = (tmp_path / "sheet_000012.vtp").read_text()
    assert 'NumberOfPoints="25"' in frame and 'NumberOfPolys="32"' in frame


def test_simulate_reports_what_the_tactile_pads_feel(tmp_path):
    """Two flat pads close on a hanging cloth (the shipped pinch_cloth scene): each written
    frame has both pads' readings, untouched at the start and pressed once they close."""
    scene = Path(__file__).parents[2] / "assets" / "scenes" / "pinch_cloth.yaml"
    result = CliRunner().invoke(build_cli(), ["simulate", str(scene), "--steps", "6", "--out", str(tmp_path), "--every", "2"])
    assert result.exit_code == 0, result.output
    tactile = json.loads((tmp_path / "summary.json").read_text())["tactile"]
    assert [t["step"] for t in tactile] == [0, 2, 4, 6]
    for pad in ("pad_left", "pad_right"):
        assert tactile[0][pad]["force_n"] == [0.0, 0.0, 0.0] and tactile[0][pad]["max_depth_m"] == 0.0
        pressed = tactile[-1][pad]
        assert -pressed["force_n"][2] > 0.3  # N, into the gel (pad frame: the gel faces +z)
        assert pressed["max_depth_m"] > 1e-5 and pressed["max_marker_displacement_m"] > 1e-5
        assert (tmp_path / f"{pad}_000006.vtp").exists()
