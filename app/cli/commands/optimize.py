"""``deft optimize SCENE``: optimize the scene's trajectory for its task, with resume."""

from __future__ import annotations

from pathlib import Path

import typer


def register(cli: typer.Typer) -> None:
    @cli.command()
    def optimize(
        scene: Path = typer.Argument(..., help="Scene file (.yaml) with a task", show_default=False),
        optimizer: str = typer.Option("hybrid", help="hybrid (CMA-ES then Adam), adam or cmaes"),
        iters: int = typer.Option(0, min=0, help="Iterations of the whole run (0: the task's default)"),
        seed: int = typer.Option(0, help="Random seed; a seed gives the same run every time"),
        out: Path = typer.Option(None, help="Run folder (default out/optimize/<scene file name>)"),
        resume: Path = typer.Option(None, help="Continue the run saved in this folder"),
        preview: bool = typer.Option(True, help="Render a preview picture of the best motion"),
    ) -> None:
        """Optimize the trajectory, showing loss and ETA. Writes the best trajectory, the loss
        curve (CSV/JSON), the scene with the optimized trajectory and a preview; Ctrl-C saves
        the state and --resume continues exactly where it stopped."""
        raise typer.Exit(_optimize(scene, optimizer, iters, seed, out, resume, preview))


def _optimize(scene_path: Path, optimizer: str, iters: int, seed: int, out: Path | None, resume: Path | None, preview: bool) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from app.scene.io import SceneError, load_scene, save_scene
    from app.services.optimize import OptimizationRun, RunFolderError
    from app.services.optimize_tasks import TaskSetupError, bind_scene_task, scene_with_solution
    from sim.optim.optimizers import OPTIMIZERS
    from sim.optim.problem import OptimizationError

    if optimizer not in OPTIMIZERS:
        typer.echo(f"deft optimize: unknown optimizer {optimizer!r} (choose one of {', '.join(OPTIMIZERS)})", err=True)
        return 2
    try:
        scene = load_scene(scene_path)
        task = bind_scene_task(scene)
        if resume is not None:
            run = OptimizationRun.resume(task, resume)
        else:
            out = out or Path("out") / "optimize" / scene_path.stem
            if (out / "state.pt").exists():
                raise RunFolderError(f"{out} already holds a run: continue it with --resume {out}, or pick another --out")
            run = OptimizationRun(task, out, optimizer, seed)
    except SceneError as e:
        for problem in e.problems:
            typer.echo(str(problem), err=True)
        return 2
    except (TaskSetupError, RunFolderError, ValueError) as e:
        typer.echo(f"deft optimize: {e}", err=True)
        return 2

    total = iters or task.defaults.iterations
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}  best {task.fields[best]}"), TimeRemainingColumn())
    try:
        with Progress(*columns, transient=False) as bar:
            shown = bar.add_task(f"{task.kind} ({run.optimizer_name})", total=total, completed=run.iterations_done, loss="-", best="-")
            for report in run.reports(max(0, total - run.iterations_done)):
                bar.update(shown, advance=1, loss=f"{report.loss:.4g}", best=f"{report.best_loss:.4g}")
    except KeyboardInterrupt:
        typer.echo(f"\nstopped after {run.iterations_done} iterations; state saved. Continue with: deft optimize {scene_path} --resume {run.out_dir}")
        return 130
    except OptimizationError as e:
        run.record_error(str(e))
        typer.echo(f"deft optimize: {e} (state of the last good iteration is in {run.out_dir})", err=True)
        return 1

    summary = run.summary()
    if not run.curve:
        typer.echo(f"nothing to do: the run in {run.out_dir} already has {run.iterations_done} iterations (raise --iters)")
        return 0
    if summary["best_loss"] is None:
        typer.echo(f"deft optimize: no evaluation succeeded in {summary['iterations']} iterations (the failure column of {run.out_dir / 'curve.csv'} says why)", err=True)
        return 1
    optimized = run.out_dir / "optimized.yaml"
    save_scene(scene_with_solution(scene, run.best_solution()), optimized)
    verdict = "solved" if summary["solved"] else "not solved"
    typer.echo(
        f"{task.kind}: {verdict}, best loss {summary['best_loss']:.4g} (success at <= {summary['success_threshold']:g}) "
        f"after {summary['iterations']} iterations, {summary['wall_time']:.1f} s"
        + (f" ({summary['failed_iterations']} failed: the simulator rejected their parameters)" if summary["failed_iterations"] else "")
        + f"; results in {run.out_dir} "
        f"(best.json, curve.csv, curve.json, optimized.yaml)"
    )
    if preview:
        from sim.tasks.registry import task_definition

        _preview(optimized, run.out_dir, task_definition(task.kind).family)
    return 0


def _preview(scene_file: Path, out_dir: Path, family: str) -> None:
    """Render the optimized scene as ``deft simulate --render`` does (it loads ui/offscreen.py
    at run time); the tactile pad rigs have no renderer yet, so only shell scenes get one."""
    if family != "shell":
        typer.echo(f"preview skipped: only shell scenes are rendered ({family} tasks have no renderer yet)")
        return
    from app.cli.commands.simulate import _simulate

    _simulate(scene_file, 0, out_dir / "preview", out_dir / "preview.png", 0)
