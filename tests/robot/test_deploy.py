"""Deploying a scene: planning on the lab arm, `deft deploy` dry runs and an armed run
against `deft lab-sim` in another process."""

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli.root import build_cli
from app.scene.io import load_scene
from app.scene.paths import default_scene_path
from app.services.deploy import DeployError, arm_base_pose, load_solution, plan, preflight, report_rows
from robot.kinematics import forward, pose_matrix
from tests.robot.ros_fixtures import lab_sim_process

SCENE = default_scene_path()


@pytest.fixture(scope="module")
def scene():
    return load_scene(SCENE)


def test_plan_follows_the_scene_keyframes(scene):
    p = plan(scene, SCENE, speed=0.25)
    assert p.mapping.ok and p.approach == 0.0
    base = arm_base_pose(scene)
    frames = scene.trajectory.keyframes
    offset = np.linalg.inv(pose_matrix(scene.lab.tool_offset.position, scene.lab.tool_offset.rotation))
    for k in frames[1:]:
        i = int(np.argmin(np.abs(p.trajectory.times - k.time / 0.25)))
        assert p.trajectory.times[i] == pytest.approx(k.time / 0.25)
        world = base @ forward(p.model, p.trajectory.positions[i]) @ offset
        np.testing.assert_allclose(world[:3, 3], k.position, atol=1e-3)
        np.testing.assert_allclose(world[:3, 2], [0, 0, 1], atol=1e-2)  # the tool upright, as the keyframes say
    # Each new opening is commanded when the keyframe before it is reached.
    assert p.gripper_events == [(pytest.approx(t / 0.25), w)
                                for t, w in ((0.22, 0.02), (0.3, 0.005), (0.38, 0.002), (0.44, 0.0016))]
    assert preflight(p, None).passed


def test_full_speed_is_refused_by_joint_and_time(scene):
    report = preflight(plan(scene, SCENE, speed=1.0), None)
    assert not report.passed and "velocity" in report.kinds()
    assert all(v.joint and v.time is not None for v in report.violations)
    rows = report_rows(report)
    assert len(rows) == len(report.violations)
    joint, t, limit, what = rows[0]
    assert joint == "joint2" and t >= 0 and float(limit) > 0 and joint in what


def test_unreachable_keyframe_is_reported(scene):
    far = scene.model_copy(deep=True)
    frames = list(far.trajectory.keyframes)
    frames[-1] = frames[-1].model_copy(update={"position": (1.5, 0.15, 0.2)})
    far.trajectory = far.trajectory.model_copy(update={"keyframes": frames})
    report = preflight(plan(far, SCENE, speed=0.25), None)
    unreachable = [v for v in report.violations if v.kind == "unreachable"]
    assert unreachable and "t=0.800 s: tool pose unreachable" in unreachable[-1].message


def test_bad_solution_file_is_named(scene, tmp_path):
    (tmp_path / "best.json").write_text('{"loss": 1}')
    with pytest.raises(DeployError, match="has no 'trajectory'"):
        load_solution(scene, tmp_path / "best.json")
    with pytest.raises(DeployError, match="cannot read trajectory file"):
        load_solution(scene, tmp_path / "none.json")


def deploy(*args):
    return CliRunner().invoke(build_cli(), ["deploy", str(SCENE), "--connect-timeout", "0.3", *args])


def test_cli_dry_run_without_robot():
    refused = deploy("--dry-run")
    assert refused.exit_code == 1 and "REFUSED" in refused.output and "joint2: velocity" in refused.output
    ok = deploy("--speed", "0.25")
    assert ok.exit_code == 0, ok.output
    assert "PASSED" in ok.output and "nothing moved (pass --arm to move the robot)" in ok.output
    bad = deploy("--speed", "2")
    assert bad.exit_code == 2 and "outside (0, 1]" in bad.output


def test_lab_sim_refuses_a_bad_feedback_rate_or_start_before_serving():
    runner = CliRunner()
    rate = runner.invoke(build_cli(), ["lab-sim", str(SCENE), "--feedback-rate", "0"])
    assert rate.exit_code == 2 and "--feedback-rate must be positive, not 0.0" in rate.output
    start = runner.invoke(build_cli(), ["lab-sim", str(SCENE), "--initial", "0.1,0.2"])
    assert start.exit_code == 2 and "--initial needs 7 comma-separated numbers" in start.output


@pytest.fixture(scope="module")
def lab_sim():
    """`deft lab-sim` on the default scene, in another process."""
    deft = Path(sys.executable).with_name("deft")
    with lab_sim_process(command=[str(deft), "lab-sim", str(SCENE), "--object-width", "0.02"]) as proc:
        yield proc


@pytest.mark.ros
def test_armed_deploy_moves_records_and_succeeds(lab_sim, tmp_path):
    pytest.importorskip("control_msgs.action")
    from robot.recording import read_bag

    unarmed = deploy("--speed", "0.25", "--connect-timeout", "10")
    assert unarmed.exit_code == 0 and "approach:" in unarmed.output and "nothing moved" in unarmed.output
    bag = tmp_path / "run"
    t0 = time.monotonic()
    armed = deploy("--speed", "0.25", "--arm", "--record", str(bag), "--connect-timeout", "10")
    assert armed.exit_code == 0, armed.output
    assert "execution succeeded" in armed.output and "recorded to" in armed.output
    assert time.monotonic() - t0 > 3.2  # the 3.2 s trajectory really ran
    data = read_bag(bag)
    js = data["/joint_states"]
    arm = js.arrays["position"][:, [js.names.index(f"joint{i}") for i in range(1, 8)]]
    final = arm[~np.isnan(arm[:, 0])][-1]
    # The arm ended where the last keyframe asks; the gripper closed on the 2 cm object.
    scene = load_scene(SCENE)
    p = plan(scene, SCENE, speed=0.25, measured=final)
    end = arm_base_pose(scene) @ forward(p.model, final)
    world_tool = end @ np.linalg.inv(pose_matrix(scene.lab.tool_offset.position, scene.lab.tool_offset.rotation))
    np.testing.assert_allclose(world_tool[:3, 3], scene.trajectory.keyframes[-1].position, atol=2e-3)
    grip = js.arrays["position"][:, js.names.index("gripper_opening")]
    assert np.nanmin(grip) == pytest.approx(0.02, abs=1e-6)
    assert data["/gripper/command"].arrays["position"].tolist() == [0.02, 0.005, 0.002, 0.0016]
    assert data["/tactile/left/image"].arrays["images"].max() > 200  # pressed while holding


@pytest.mark.ros
def test_serial_gripper_and_force_stop_during_deploy(lab_sim, tmp_path):
    """The lab's serial gripper and force sensor (emulated): the gripper closes on schedule,
    the sensor then feels 40 N, and --max-force 30 cancels the motion."""
    pytest.importorskip("control_msgs.action")
    from app.scene.io import save_scene
    from app.scene.model import SerialLink
    from app.services.deploy import FORCE_TOPIC
    from robot.recording import read_bag
    from robot.serial.emulators.force_sensor import ForceSensorEmulator
    from robot.serial.emulators.robotiq import RobotiqEmulator

    with RobotiqEmulator(tmp_path / "ttyGripper") as grip_dev, \
            ForceSensorEmulator(tmp_path / "ttyForce", rate=100) as ft_dev:
        ft_dev.wrench = lambda t: np.array([0, 0, 40.0 if grip_dev.output[3] > 150 else 0.0, 0, 0, 0])
        scene = load_scene(SCENE)
        scene.lab = scene.lab.model_copy(update={"gripper_serial": SerialLink(port=grip_dev.path),
                                                 "sensor_serial": SerialLink(port=ft_dev.path)})
        path = tmp_path / "lab.yaml"
        save_scene(scene, path)
        result = CliRunner().invoke(build_cli(), ["deploy", str(path), "--speed", "0.25", "--arm", "--gripper", "serial",
                                                  "--max-force", "30", "--record", str(tmp_path / "bag"),
                                                  "--connect-timeout", "10"])
        closed = grip_dev.output[3]
    assert result.exit_code == 3, result.output
    assert "stopped by force limit" in result.output and "execution canceled" in result.output, result.output
    # The schedule sent the first closing opening (20 mm) to the serial gripper; the 40 N it
    # then felt stopped the motion before the next opening was due.
    assert closed == round((1 - 0.02 / 0.085) * 255)
    forces = read_bag(tmp_path / "bag")[FORCE_TOPIC].arrays["force"][:, 2]
    assert forces.max() == 40.0 and forces.min() == 0.0
