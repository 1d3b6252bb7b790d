"""``deft gradcheck SCENE``: adjoint gradients of the task loss vs float64 central differences."""

from __future__ import annotations

from pathlib import Path

import typer


def register(cli: typer.Typer) -> None:
    @cli.command()
    def gradcheck(
        scene: Path = typer.Argument(..., help="Scene file (.yaml)", show_default=False),
        params: list[str] = typer.Option(None, "--params", help="Parameter kinds to check (default: all)"),
        steps: int = typer.Option(20, min=1, help="Steps of the scene's trajectory to differentiate through"),
        tolerance: float = typer.Option(1e-3, help="Largest relative error that passes"),
        seed: int = typer.Option(0, help="Seed of the random directions"),
    ) -> None:
        """Compare the gradient of the task loss with float64 central finite differences along
        random directions, one row per parameter kind; exit 1 if any exceeds the tolerance."""
        raise typer.Exit(_gradcheck(scene, params or [], steps, tolerance, seed))


def _gradcheck(scene_path: Path, kinds: list[str], steps: int, tolerance: float, seed: int) -> int:
    import dataclasses

    from app.compile import compile_scene
    from app.compile.loss import final_position_loss
    from app.scene.io import SceneError, load_scene
    from sim.errors import SimulationError
    from sim.gradcheck import KINDS, check_gradients
    from sim.volumetric import VOLUMETRIC_KINDS, check_volumetric_gradients  # volumetric hook

    bad = sorted(set(kinds) - set(KINDS) - set(VOLUMETRIC_KINDS))
    if bad:
        typer.echo(f"deft gradcheck: unknown parameter kinds {bad} (choose from {', '.join(KINDS + VOLUMETRIC_KINDS)})",
                   err=True)
        return 2
    try:
        doc = load_scene(scene_path)
        compiled = compile_scene(doc, scene_path, min(steps, doc.simulation.horizon))
    except SceneError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        return 2
    except ValueError as exc:
        typer.echo(f"deft gradcheck: {scene_path}: {exc}", err=True)
        return 2
    # tight solves, so the finite differences see the map the adjoint differentiates
    settings = dataclasses.replace(compiled.spec.settings, precision="f64", newton_tol=1e-11, newton_rtol=0.0,
                                   newton_ftol=0.0, newton_accept=0.0, cg_tol=1e-8, adjoint_tol=1e-12,
                                   newton_max_iter=60)
    spec = dataclasses.replace(compiled.spec, settings=settings)
    from sim.world import World

    world = World(spec)
    if world.shells is None:  # volumetric hook: FEM/MPM scenes, loss = random linear form of final positions
        try:
            results = check_volumetric_gradients(world, tuple(kinds or VOLUMETRIC_KINDS), seed=seed)
        except SimulationError as exc:
            typer.echo(f"deft gradcheck: the simulation failed: {exc}", err=True)
            return 1
        return _report(results, scene_path, spec.settings.steps, tolerance)
    loss, skipped = final_position_loss(doc, [s.name for s in spec.shells], world.shells.shell_ranges)
    if loss is None:
        typer.echo("the task has no final-position term; checking a fixed random linear form of the final positions")
    elif skipped:
        typer.echo(f"loss terms not differentiated here: {', '.join(skipped)}")
    slot = next((i for i, t in enumerate(spec.tools) if doc.trajectory and t.name == doc.trajectory.tool), None)
    keyframes = (compiled.keyframe_weights, compiled.keyframes, slot) if compiled.keyframes is not None else None
    try:
        results = check_gradients(world, tuple(kinds or KINDS), loss, seed, keyframes=keyframes)
    except SimulationError as exc:
        typer.echo(f"deft gradcheck: the simulation failed: {exc}", err=True)
        return 1
    return _report(results, scene_path, spec.settings.steps, tolerance)


def _report(results, scene_path: Path, steps: int, tolerance: float) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gradient check: {scene_path.name}, {steps} steps")
    for col in ("parameter", "adjoint", "finite difference", "relative error", "verdict"):
        table.add_column(col)
    failed = False
    for r in results:
        if r.inactive:
            verdict = "inactive"
        else:
            verdict = "ok" if r.rel_error <= tolerance else "FAIL"
            failed |= verdict == "FAIL"
        table.add_row(r.kind, f"{r.analytic:+.6e}", f"{r.numeric:+.6e}", f"{r.rel_error:.2e}", verdict)
    Console().print(table)
    return 1 if failed else 0
