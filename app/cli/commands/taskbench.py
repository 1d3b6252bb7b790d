"""``deft taskbench``: the task benchmark, every shipped task x every optimizer x 3 seeds."""

from __future__ import annotations

from pathlib import Path

import typer


def register(cli: typer.Typer) -> None:
    @cli.command()
    def taskbench(
        task: list[str] = typer.Option([], help="Only these task kinds (repeat the option; default: all)"),
        family: list[str] = typer.Option([], help="Only these families: kinematic, shell, tactile, volumetric"),
        seeds: int = typer.Option(3, min=1, help="Seeds per task and optimizer"),
        out: Path = typer.Option(Path("artifacts/taskbench"), help="Folder for the runs, benchmark.json and benchmark.png"),
        address: str = typer.Option(None, help="Ray cluster address (default: a local Ray on this machine)"),
        serial: bool = typer.Option(False, help="Run in this process without Ray"),
        report_only: bool = typer.Option(False, help="Summarise the runs already in --out without running any"),
    ) -> None:
        """Success rate over seeds, final loss, iterations and wall time to success per task and
        optimizer (hybrid, adam, cmaes), as benchmark.json and a loss-vs-time chart."""
        from app.cli.commands.sweep import run_sweep
        from app.scene.paths import assets_root
        from sim.tasks.registry import all_tasks

        chosen = [d for d in all_tasks() if (not task or d.kind in task) and (not family or d.family in family)]
        if not chosen:
            typer.echo(f"deft taskbench: no task matches {task or family}", err=True)
            raise typer.Exit(2)
        scenes = [assets_root() / "scenes" / "tasks" / d.scene for d in chosen]
        raise typer.Exit(run_sweep(scenes, ["hybrid", "adam", "cmaes"], seeds, 0, out, address, serial, report_only))
