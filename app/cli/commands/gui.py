"""``deft gui [SCENE]``: open the studio on a scene (the built-in default when none)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(cli: typer.Typer) -> None:
    @cli.command()
    def gui(
        scene: Path = typer.Argument(None, help="Scene file (.yaml); the built-in default scene when omitted"),
    ) -> None:
        """Open the studio: 3D viewport, editing with undo, timeline, optimization, tactile and deploy panels."""
        import gc
        import importlib

        if scene is not None and not scene.is_file():
            typer.echo(f"deft gui: {scene} is not a file (expected a scene .yaml)", err=True)
            raise typer.Exit(2)
        gc.disable()  # until the studio is warm: collections froze its window (ui.heap turns it back on)
        # app never imports ui at import time (layer rule); the studio is loaded by name here
        studio = importlib.import_module("ui.app")
        raise typer.Exit(studio.run_gui(scene))
