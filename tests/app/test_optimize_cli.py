"""`deft optimize` end to end on the kinematic reach scene: outputs, Ctrl-C and --resume."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from app.cli import build_cli
from app.scene.io import load_scene
from app.services.optimize import OptimizationRun
from app.services.optimize_tasks import bind_scene_task

REPO = Path(__file__).resolve().parents[2]
REACH = REPO / "assets" / "scenes" / "tasks" / "reach.yaml"


def _scene_with_threshold(tmp_path, threshold):
    data = yaml.safe_load(REACH.read_text())
    data["task"]["success_threshold"] = threshold
    path = tmp_path / "reach.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_optimize_writes_results_and_a_loadable_optimized_scene(tmp_path):
    result = CliRunner().invoke(build_cli(), ["optimize", str(REACH), "--out", str(tmp_path / "run"), "--no-preview"])
    assert result.exit_code == 0, result.output
    assert "reach: solved" in result.output
    for name in ("best.json", "curve.csv", "curve.json", "run.json", "state.pt", "optimized.yaml"):
        assert (tmp_path / "run" / name).is_file()
    optimized = load_scene(tmp_path / "run" / "optimized.yaml")
    frames = optimized.trajectory.keyframes
    assert optimized.trajectory.interpolation == "bspline" and frames[0].time == 0.0
    assert np.allclose(frames[-1].position, [0.08, -0.06, 0.21], atol=5e-3)  # the clamped curve ends on its last keyframe
    # running again into the same folder is refused rather than overwriting the run
    again = CliRunner().invoke(build_cli(), ["optimize", str(REACH), "--out", str(tmp_path / "run")])
    assert again.exit_code == 2 and "--resume" in again.output


def test_bad_requests_are_named(tmp_path):
    cli = build_cli()
    bad = CliRunner().invoke(cli, ["optimize", str(REACH), "--optimizer", "sgd"])
    assert bad.exit_code == 2 and "unknown optimizer 'sgd'" in bad.output
    missing = CliRunner().invoke(cli, ["optimize", str(REACH), "--resume", str(tmp_path)])
    assert missing.exit_code == 2 and "state.pt is missing" in missing.output
    data = yaml.safe_load(REACH.read_text())
    data["task"]["kind"] = "juggle"
    (tmp_path / "juggle.yaml").write_text(yaml.safe_dump(data))
    unknown = CliRunner().invoke(cli, ["optimize", str(tmp_path / "juggle.yaml")])
    assert unknown.exit_code == 2 and "no task of kind 'juggle'" in unknown.output


def test_ctrl_c_saves_and_resume_continues_exactly(tmp_path):
    scene = _scene_with_threshold(tmp_path, 0.0)  # never "solved": runs every iteration
    out = tmp_path / "run"
    deft = Path(sys.executable).with_name("deft")
    # far more iterations than run before the interrupt, however fast this machine is
    proc = subprocess.Popen([str(deft), "optimize", str(scene), "--iters", "100000", "--out", str(out), "--no-preview"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # test workers (pytest-xdist) ignore SIGINT, and a child inherits that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    def finished() -> int:
        try:
            return len(json.loads((out / "curve.json").read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return 0

    # a few iterations first: the interrupt should land in the loop, not in a kernel compile
    # (Python only sees Ctrl-C when the compile returns, minutes on a loaded cold machine)
    deadline = time.time() + 300
    while finished() < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert finished() >= 3, "three iterations did not finish in 300 s"
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "--resume" in output
    done = len(json.loads((out / "curve.json").read_text()))
    assert 0 < done < 100000

    result = CliRunner().invoke(build_cli(), ["optimize", str(scene), "--iters", str(done + 5), "--resume", str(out), "--no-preview"])
    assert result.exit_code == 0, result.output
    resumed = json.loads((out / "curve.json").read_text())
    straight = OptimizationRun(bind_scene_task(load_scene(scene)), tmp_path / "straight")
    expected = [r.row() for r in straight.reports(done + 5)]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in expected]
    assert [r["iteration"] for r in resumed] == list(range(1, done + 6))
