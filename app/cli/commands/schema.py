"""``deft schema``: print the JSON Schema of scene files."""

from __future__ import annotations

import typer


def register(cli: typer.Typer) -> None:
    @cli.command()
    def schema() -> None:
        """Print the JSON Schema of scene files (units in each field's "unit")."""
        import json

        from app.scene.schema import scene_json_schema

        typer.echo(json.dumps(scene_json_schema(), indent=2))
