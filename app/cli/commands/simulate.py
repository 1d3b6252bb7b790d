"""``deft simulate SCENE``: run the scene's trajectory headless; frames, summary, picture/video."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import typer


def register(cli: typer.Typer) -> None:
    @cli.command()
    def simulate(
        scene: Path = typer.Argument(..., help="Scene file (.yaml)", show_default=False),
        steps: int = typer.Option(0, min=0, help="Steps to simulate (0: the scene's horizon)"),
        out: Path = typer.Option(None, help="Output folder (default out/simulate/<scene file name>)"),
        render: Path = typer.Option(None, help="Also render the run to FILE.png (last frame) or FILE.mp4"),
        every: int = typer.Option(0, min=0, help="Write every Nth step as a frame (0: about 100 frames)"),
    ) -> None:
        """Simulate the scene's trajectory: writes frames (.vtp + .pvd for ParaView/pyvista) and
        summary.json (steps, wall time, task loss, contact counts)."""
        raise typer.Exit(_simulate(scene, steps, out, render, every))


def _simulate(scene_path: Path, steps: int, out: Path | None, render: Path | None, every: int) -> int:
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from app.compile import compile_scene
    from app.compile import volumetric
    from app.compile.frames import write_pvd, write_vtp
    from app.compile.loss import final_position_loss
    from app.scene.io import SceneError, load_scene
    from app.services.simulation import world_frame
    from sim.errors import SimulationError

    if render is not None and render.suffix.lower() not in (".png", ".mp4"):
        typer.echo(f"deft simulate: --render must name a .png or .mp4 file, got {render}", err=True)
        return 2
    try:
        doc = load_scene(scene_path)
        compiled = compile_scene(doc, scene_path, steps or None)
    except SceneError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        return 2
    except ValueError as exc:
        typer.echo(f"deft simulate: {scene_path}: {exc}", err=True)
        return 2
    for note in compiled.skipped:
        typer.echo(f"not simulated: {note}", err=True)
    spec = compiled.spec
    n_steps = spec.settings.steps
    every = every or max(1, n_steps // 100)
    out = out or Path("out") / "simulate" / scene_path.stem
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    from sim.world import World

    world = World(spec)
    typer.echo(world.runtime.message)
    build_s = time.perf_counter() - t0
    tris = [s.triangles for s in spec.shells]
    ranges = world.shells.shell_ranges if world.shells is not None else [0]
    tactile: list[dict] = []  # volumetric hook: sensor pads' readings per written frame
    frames: list[tuple[float, str]] = []
    contacts: list[int] = []
    video = render is not None and render.suffix.lower() == ".mp4"
    pictured: list = []  # the written frames as the viewport draws them, for a video

    def save_frame(k: int) -> None:
        # the pads' readings, once a frame: rendering their images is the costly part
        readings = world.volumetric.tactile(k) if world.volumetric is not None else None
        if video:
            pictured.append(world_frame(world, len(pictured), k, readings))
        if world.volumetric is not None:  # volumetric hook
            frames.extend(volumetric.write_frame(out, world, k, readings))
            tactile.append({"step": k, **volumetric.tactile_summary(readings)})
        if world.shells is None:
            return
        state = world.get_state()["shells"]
        for i, shell in enumerate(spec.shells):
            name = f"{shell.name}_{k:06d}.vtp"
            sl = slice(ranges[i], ranges[i + 1])
            write_vtp(out / name, state["x"][sl], tris[i], {"velocity": state["v"][sl]})
            frames.append((k * spec.settings.dt, name))

    error = None
    t1 = time.perf_counter()
    newton = cg = 0
    save_frame(0)
    with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task("steps", total=n_steps)
        try:
            for k in range(1, n_steps + 1):
                stats = world.step().get("shells", {"newton": 0, "cg": 0})
                newton, cg = newton + stats["newton"], cg + stats["cg"]
                if k % every == 0 or k == n_steps:
                    contacts.append(world.contact_count())
                    save_frame(k)
                bar.advance(task)
        except SimulationError as exc:
            error = str(exc)
    wall = time.perf_counter() - t1
    write_pvd(out / "frames.pvd", frames)
    shells = [s.name for s in spec.shells]
    loss_fn, unevaluated = final_position_loss(doc, list(shells), ranges)
    loss = loss_fn(world.get_state()["shells"]["x"][None])[0] if loss_fn and world.shells is not None else None
    summary = {
        "scene": str(scene_path),
        "steps": world.step_index,
        "dt": spec.settings.dt,
        "build_s": build_s,
        "wall_s": wall,
        "wall_per_simulated_s": wall / max(world.step_index * spec.settings.dt, 1e-12),
        "newton_iterations": newton,
        "cg_iterations": cg,
        "task_loss": loss,
        "task_terms_not_evaluated": unevaluated,
        "contact_counts": contacts,
        "max_contacts": max(contacts, default=0),
        "frames": "frames.pvd",
        "not_simulated": list(compiled.skipped),
        "runtime": world.runtime.message,
        "error": error,
        "tactile": tactile,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    typer.echo(f"{world.step_index} steps in {wall:.2f} s; task loss {loss}; frames in {out / 'frames.pvd'}")
    if render is not None:
        # Only ui/ may import pyvista (layer rule), and app must not import ui statically:
        # load the off-screen renderer by name, only when a picture is asked for.
        offscreen = importlib.import_module("ui.offscreen")
        # a picture needs the last frame only (a frame reads the pads' tactile output again)
        shown = pictured if video else [world_frame(world, 0, world.step_index)]
        for problem in offscreen.render_run(doc, scene_path, shown, render):
            typer.echo(f"not drawn: {problem}", err=True)
        typer.echo(f"rendered {render}")
    if error:
        typer.echo(f"deft simulate: {error}", err=True)
        return 1
    return 0
