"""``deft deploy SCENE``: dry-run the scene's (or an optimization result's) trajectory on the
lab's arm, and execute it only when the safety gate passes and --arm is given."""

from __future__ import annotations

from pathlib import Path

import typer

EXIT_REFUSED, EXIT_INPUT, EXIT_FAILED = 1, 2, 3


def register(cli: typer.Typer) -> None:
    @cli.command()
    def deploy(
        scene: Path = typer.Argument(..., help="Scene file (.yaml) with a trajectory and a lab section",
                                     show_default=False),
        trajectory: Path = typer.Option(None, help="Optimization result (deft optimize's best.json) to deploy instead"),
        controller: str = typer.Option(None, help="Controller name (default: the scene's lab.controller)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="Check only; never move"),
        speed: float = typer.Option(1.0, help="Speed scale in (0, 1]: 0.5 takes twice as long"),
        record: Path = typer.Option(None, help="Record the execution to this rosbag2 folder (must not exist)"),
        arm: bool = typer.Option(False, "--arm", help="Move the robot if the safety gate passes"),
        connect_timeout: float = typer.Option(3.0, help="Seconds to wait for the robot's joint states"),
    ) -> None:
        """Plan the trajectory on the lab's arm and check every limit (the report names joint
        and time of each violation; exit 1 when refused). Moves only with --arm; otherwise it
        stops after the dry run and says so."""
        raise typer.Exit(_deploy(scene, trajectory, controller, dry_run, speed, record, arm, connect_timeout))


def _deploy(scene_path, trajectory, controller, dry_run, speed, record, arm, connect_timeout) -> int:
    from app.scene.io import SceneError, load_scene
    from app.services.deploy import DeployError, lab_topics, load_solution, plan, preflight
    from robot.urdf import UrdfError

    if not 0 < speed <= 1:
        typer.echo(f"deft deploy: --speed {speed} is outside (0, 1]", err=True)
        return EXIT_INPUT
    if record is not None and record.exists():
        typer.echo(f"deft deploy: recording {record} already exists (choose a new name)", err=True)
        return EXIT_INPUT
    try:
        doc = load_scene(scene_path)
        if trajectory is not None:
            doc = load_solution(doc, trajectory)
        topics = lab_topics(doc, controller)
    except SceneError as e:
        for problem in e.problems:
            typer.echo(str(problem), err=True)
        return EXIT_INPUT
    except (DeployError, UrdfError) as e:
        typer.echo(f"deft deploy: {e}", err=True)
        return EXIT_INPUT

    link, recorder = _connect(topics, record if arm and not dry_run else None)
    try:
        measured = None
        if link is not None:
            try:
                measured = link.joint_state(connect_timeout)
            except TimeoutError as e:
                typer.echo(f"robot: {e}")
        try:
            p = plan(doc, scene_path, speed, measured)
        except (DeployError, UrdfError) as e:
            typer.echo(f"deft deploy: {e}", err=True)
            return EXIT_INPUT
        report = preflight(p, measured)
        typer.echo(f"trajectory: {p.trajectory.duration:.2f} s at speed {speed:g}, {len(p.trajectory.times)} points, "
                   f"controller {topics.controller!r}")
        typer.echo(report.text())
        if not report.passed:
            return EXIT_REFUSED
        if dry_run or not arm:
            typer.echo("dry run only: nothing moved" + ("" if dry_run else " (pass --arm to move the robot)"))
            return 0
        if measured is None:
            typer.echo(f"deft deploy: cannot move: no joint states from the robot on {topics.joint_states_topic}",
                       err=True)
            return EXIT_FAILED
        return _execute(link, p, measured)
    finally:
        if link is not None:
            link.close()
        if recorder is not None:
            recorder.close()
            typer.echo(f"recorded to {record}: {sum(recorder.counts.values())} messages")


def _connect(topics, record: Path | None):
    try:
        from robot.ros2.link import RosLink
    except ImportError as e:  # ROS 2 or control_msgs missing: the dry run still works
        typer.echo(f"robot: ROS 2 not available ({e}); planning without the robot's state")
        return None, None
    recorder = None
    if record is not None:
        from robot.recording import BagRecorder

        recorder = BagRecorder(record)
    return RosLink(topics, recorder=recorder, node_name="deft_deploy"), recorder


def _execute(link, p, measured) -> int:
    from app.services.deploy import execute_plan
    from robot.execution import Arming, GateRefused

    arming = Arming()
    arming.arm()  # the explicit --arm of this command
    if not link.wait_for_controller(5.0):
        typer.echo(f"deft deploy: no controller action server at {link.topics.action}", err=True)
        return EXIT_FAILED
    try:
        outcome, gripper_errors = execute_plan(link, p, arming, measured)
    except GateRefused as e:
        typer.echo(str(e))
        return EXIT_REFUSED
    except KeyboardInterrupt:
        if link.active is not None:
            link.active.cancel()
        typer.echo("stopped: motion canceled (Ctrl-C)")
        return EXIT_FAILED
    for err in gripper_errors:
        typer.echo(f"gripper: {err}")
    typer.echo(f"execution {outcome}")
    return 0 if outcome.ok and not gripper_errors else EXIT_FAILED
