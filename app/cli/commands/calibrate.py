"""``deft calibrate SCENE --recording BAG``: fit pad material and contact parameters, and the
friction of the objects it pushed, to a recording of its forces, marker displacements and the
objects' poses."""

from __future__ import annotations

from pathlib import Path

import typer


def register(cli: typer.Typer) -> None:
    @cli.command()
    def calibrate(
        scene: Path = typer.Argument(..., help="Scene file (.yaml): the pad, the surfaces and the executed trajectory", show_default=False),
        recording: Path = typer.Option(..., help="rosbag2 recording with any of /tactile/<sensor>/wrench forces, /tactile/<sensor>/markers displacements and /objects/<body>/pose poses", show_default=False),
        param: list[str] = typer.Option(["youngs_modulus", "friction"], help="Parameters to fit (repeat the option; an unknown name lists the choices)"),
        noise: float = typer.Option(0.01, min=1e-9, help="Force noise scale of the recording (N)"),
        marker_noise: float = typer.Option(1e-5, min=1e-12, help="Marker displacement noise scale of the recording (m)"),
        pose_noise: float = typer.Option(1e-4, min=1e-12, help="Object position noise scale of the recording (m)"),
        angle_noise: float = typer.Option(1e-3, min=1e-12, help="Object orientation noise scale of the recording (rad)"),
        out: Path = typer.Option(None, help="Write the fitted values as JSON here"),
    ) -> None:
        """Fit the tactile pad's parameters (and object_friction, the pushed objects' against
        the fixed surfaces) with gradients through the simulator; prints each fitted value
        with its uncertainty (Gauss-Newton) and the fit error."""
        import json

        from app.calibrate import CalibrationError, calibrate as fit
        from app.scene.io import SceneError, load_scene

        try:
            result = fit(load_scene(scene), recording, list(param), noise, marker_noise, pose_noise=pose_noise,
                         angle_noise=angle_noise, report=typer.echo)
        except SceneError as e:
            for problem in e.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(2)
        except CalibrationError as e:
            typer.echo(f"deft calibrate: {e}", err=True)
            raise typer.Exit(2)
        for row in result.table():
            typer.echo(f"{row['name']:18s} {row['value']:.6g} +- {row['std']:.2g} ({100 * row['relative_std']:.2f}%)  from {row['initial']:.6g}")
        typer.echo(f"fit error (RMS, in noise units): {result.initial_rms:.4g} -> {result.rms:.4g}; "
                   f"{result.iterations} iterations, {result.evaluations} gradient evaluations; {result.message}")
        if out is not None:
            out.write_text(json.dumps({"parameters": result.table(), "rms": result.rms, "initial_rms": result.initial_rms,
                                       "converged": result.converged}, indent=2))
