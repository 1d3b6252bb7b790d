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
        gripper: str = typer.Option("ros", help="Gripper: ros (lab.gripper_topic), serial (lab.gripper_serial) or none"),
        max_force: float = typer.Option(None, help="Stop the motion when the serial force sensor feels more [N]"),
        connect_timeout: float = typer.Option(3.0, help="Seconds to wait for the robot's joint states"),
    ) -> None:
        """Plan the trajectory on the lab's arm and check every limit (the report names joint
        and time of each violation; exit 1 when refused). Moves only with --arm; otherwise it
        stops after the dry run and says so."""
        raise typer.Exit(_deploy(scene, trajectory, controller, dry_run, speed, record, arm, gripper, max_force,
                                 connect_timeout))


def _deploy(scene_path, trajectory, controller, dry_run, speed, record, arm, gripper, max_force,
            connect_timeout) -> int:
    from app.scene.io import SceneError, load_scene
    from app.services.deploy import DeployError, lab_topics, load_solution, plan, preflight
    from robot.urdf import UrdfError

    if not 0 < speed <= 1:
        typer.echo(f"deft deploy: --speed {speed} is outside (0, 1]", err=True)
        return EXIT_INPUT
    if gripper not in ("ros", "serial", "none"):
        typer.echo(f"deft deploy: --gripper {gripper!r} is not ros, serial or none", err=True)
        return EXIT_INPUT
    if max_force is not None and not max_force > 0:
        typer.echo(f"deft deploy: --max-force {max_force} must be positive", err=True)
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
        return _execute(link, p, measured, doc.lab, gripper, max_force, recorder)
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


def _serial_devices(lab, gripper: str, max_force: float | None, recorder, closers: list):
    """The serial gripper's grip function and the force sensor stream the run asks for
    (their close functions go to ``closers``); raises SerialLinkError (or ValueError for a
    missing lab entry) when a required one is absent."""
    from robot.serial.force_stream import SensorStream
    from robot.serial.gripper import SerialGripper
    from robot.serial.port import SerialLinkError

    grip, sensor = None, None
    if gripper == "serial":
        if lab.gripper_serial is None:
            raise ValueError("--gripper serial needs lab.gripper_serial in the scene")
        device = SerialGripper(lab.gripper_serial.port, baud=lab.gripper_serial.baud)
        closers.append(device.close)
        device.activate()

        def grip(opening: float) -> None:
            device.move(opening)
            device.wait_stopped()

    elif gripper == "none":
        grip = lambda opening: None  # noqa: E731
    if max_force is not None or recorder is not None and lab.sensor_serial is not None:
        if lab.sensor_serial is None:
            raise ValueError("--max-force needs lab.sensor_serial (the force sensor) in the scene")
        try:
            sensor = SensorStream(lab.sensor_serial.port, baud=lab.sensor_serial.baud, timeout=1.0)
            closers.append(sensor.close)
        except SerialLinkError as e:
            if max_force is not None:
                raise
            typer.echo(f"force sensor not recorded: {e}")
    return grip, sensor


def _execute(link, p, measured, lab, gripper, max_force, recorder) -> int:
    from app.services.deploy import execute_plan
    from robot.execution import Arming, GateRefused
    from robot.monitors import ForceLimit
    from robot.serial.port import SerialLinkError

    arming = Arming()
    arming.arm()  # the explicit --arm of this command
    if not link.wait_for_controller(5.0):
        typer.echo(f"deft deploy: no controller action server at {link.topics.action}", err=True)
        return EXIT_FAILED
    closers = []
    try:
        try:
            grip, sensor = _serial_devices(lab, gripper, max_force, recorder, closers)
        except (SerialLinkError, ValueError) as e:
            typer.echo(f"deft deploy: {e}; nothing moved", err=True)
            return EXIT_FAILED
        monitors = [ForceLimit(max_force)] if max_force is not None else []
        outcome, notes = execute_plan(link, p, arming, measured, grip, sensor, monitors, recorder)
    except GateRefused as e:
        typer.echo(str(e))
        return EXIT_REFUSED
    except RuntimeError as e:  # a monitor's sensor failed before the start: nothing moved
        typer.echo(f"deft deploy: {e}", err=True)
        return EXIT_FAILED
    except KeyboardInterrupt:
        if link.active is not None:
            link.active.cancel()
        typer.echo("stopped: motion canceled (Ctrl-C)")
        return EXIT_FAILED
    finally:
        for close in closers:
            close()
    for note in notes:
        typer.echo(note)
    typer.echo(f"execution {outcome}")
    return 0 if outcome.ok and not notes else EXIT_FAILED
