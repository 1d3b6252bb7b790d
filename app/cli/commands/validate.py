"""``deft validate FILE...``: check scene files, one line per valid file, every problem otherwise."""

from __future__ import annotations

from pathlib import Path

import typer


def summary(path: Path, scene) -> str:
    sensors = len(scene.sensors())
    bodies, grippers = len(scene.bodies()), len(scene.grippers())
    keyframes = len(scene.trajectory.keyframes) if scene.trajectory else 0
    sim = scene.simulation
    return (
        f"{path}: ok: scene {scene.name!r}, {bodies} bodies, {grippers} grippers, {sensors} tactile sensors, "
        f"{keyframes} keyframes, task {scene.task.kind}, {sim.horizon} steps of {sim.dt:g} s"
    )


def register(cli: typer.Typer) -> None:
    @cli.command()
    def validate(
        files: list[Path] = typer.Argument(..., help="Scene files (.yaml) to check", show_default=False),
    ) -> None:
        """Check scene files: exit 0 if all are valid, 2 if any is not (each problem as FILE:LINE: field: what)."""
        from app.scene.io import SceneError, load_scene

        bad = False
        for path in files:
            try:
                scene = load_scene(path)
            except SceneError as exc:
                bad = True
                for problem in exc.problems:
                    typer.echo(str(problem))
                continue
            except Exception as exc:  # a checker bug must still not drown the user in a traceback
                bad = True
                typer.echo(f"{path}:1: could not be checked: {type(exc).__name__}: {exc} "
                           "(expected a clean verdict; please report this as a Deft bug)")
                continue
            typer.echo(summary(path, scene))
        if bad:
            raise typer.Exit(2)
