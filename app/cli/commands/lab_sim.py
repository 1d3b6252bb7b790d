"""``deft lab-sim [SCENE]``: stand-in ROS 2 nodes of the lab (arm controller, gripper,
tactile sensors) named after the scene's lab section, for rehearsing and for tests."""

from __future__ import annotations

from pathlib import Path

import typer


def register(cli: typer.Typer) -> None:
    @cli.command("lab-sim")
    def lab_sim(
        scene: Path = typer.Argument(None, help="Scene whose lab section names the nodes (default: the built-in scene)"),
        controller: str = typer.Option(None, help="Controller name (default: the scene's lab.controller)"),
        initial: str = typer.Option(None, help="Comma-separated start joint positions [rad] (default: mid-range)"),
        object_width: float = typer.Option(None, help="Width of an object between the gripper fingers [m]"),
        goal_tolerance: float = typer.Option(0.02, help="Default goal position tolerance [rad]"),
        path_tolerance: float = typer.Option(0.0, help="Default path tolerance [rad] (0: unchecked)"),
        goal_time: float = typer.Option(0.5, help="Default goal time tolerance [s]"),
        feedback_rate: float = typer.Option(20.0, help="Action feedback rate [Hz] (joint_trajectory_controller's "
                                                       "action_monitor_rate)"),
    ) -> None:
        """Run the lab's stand-in nodes until Ctrl-C (ROS 2 over the environment's domain)."""
        from app.scene.io import SceneError, load_scene
        from app.scene.paths import default_scene_path
        from app.services.deploy import DeployError, robot_model
        from robot.ros2.lab_sim import LabSimConfig, run
        from robot.urdf import UrdfError

        if not feedback_rate > 0:
            typer.echo(f"deft lab-sim: --feedback-rate must be positive, not {feedback_rate}", err=True)
            raise typer.Exit(2)
        path = scene or default_scene_path()
        try:
            doc = load_scene(path)
            model = robot_model(doc, path)
        except SceneError as e:
            for problem in e.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(2) from None
        except (DeployError, UrdfError) as e:
            typer.echo(f"deft lab-sim: {e}", err=True)
            raise typer.Exit(2) from None
        start = tuple(model.mid_configuration())
        if initial is not None:
            try:
                start = tuple(float(x) for x in initial.split(","))
            except ValueError:
                start = ()
            if len(start) != model.dof:
                typer.echo(f"deft lab-sim: --initial needs {model.dof} comma-separated numbers {model.joint_names}",
                           err=True)
                raise typer.Exit(2)
        lab = doc.lab
        cfg = LabSimConfig(controller or lab.controller, model.joint_names, start, lab.joint_states_topic,
                           lab.gripper_topic, dict(lab.tactile_topics), goal_tolerance, path_tolerance, goal_time,
                           object_width=object_width, feedback_rate=feedback_rate)
        typer.echo(f"lab-sim: controller {cfg.controller!r} ({', '.join(cfg.joints)}), gripper {cfg.gripper_action}, "
                   f"tactile {sorted(cfg.tactile_topics) or 'none'}; Ctrl-C to stop")
        run(cfg)
