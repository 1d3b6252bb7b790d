"""The deft command line: discovery of command modules, schema, and what a bare `deft` does."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from app.cli import root as cli_main
from app.cli.root import CommandModuleError, build_cli, register_all
from app.scene.io import load_scene
from app.scene.paths import default_scene_path

DEFT = Path(sys.executable).with_name("deft")
COMMANDS = Path(cli_main.__file__).with_name("commands")


def test_every_command_module_registers_its_command():
    cli = typer.Typer()
    modules = register_all(cli)
    assert modules == sorted(p.stem for p in COMMANDS.glob("*.py") if p.stem != "__init__")
    names = {c.name or c.callback.__name__ for c in cli.registered_commands}
    assert {"validate", "schema"} <= names


def test_a_module_without_register_is_named(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_commands"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "broken.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fake_commands

    monkeypatch.setattr(cli_main, "commands", fake_commands)
    with pytest.raises(CommandModuleError, match="broken.py defines no register"):
        register_all(typer.Typer())


def test_help_is_fast_and_lists_the_commands():
    done = subprocess.run([str(DEFT), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "validate" in done.stdout and "schema" in done.stdout
    # heavy libraries stay out of the CLI's import
    code = "import sys; from app.cli import build_cli; build_cli(); " \
           "print(sorted(m for m in ('taichi', 'torch', 'vtk', 'rclpy', 'PySide6') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_schema_is_json_schema_that_accepts_the_shipped_scenes_and_rejects_damage():
    result = CliRunner().invoke(build_cli(), ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    data = load_scene(default_scene_path()).model_dump(mode="json")
    validator.validate(data)
    assert schema["$defs"]["ThinShell"]["properties"]["youngs_modulus"]["unit"] == "Pa"
    data["simulation"]["dt"] = 0
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(data)


def _fake_commands(calls):
    def register(cli):
        @cli.command()
        def gui(scene: Path = typer.Argument(None)):
            calls.append(("gui", scene))

        @cli.command()
        def simulate(scene: Path, render: Path = typer.Option(None), out: Path = typer.Option(None)):
            calls.append(("simulate", scene, render, out))

    return register


def test_bare_deft_with_a_display_opens_the_gui_on_the_default_scene(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":99")
    calls = []
    result = CliRunner().invoke(build_cli(_fake_commands(calls)), [])
    assert result.exit_code == 0, result.output
    assert calls == [("gui", default_scene_path())]


@pytest.mark.parametrize("display", [{}, {"WAYLAND_DISPLAY": "wayland-0"}])
def test_bare_deft_without_a_display_runs_the_default_scene_headless(monkeypatch, display):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for k, v in display.items():
        monkeypatch.setenv(k, v)
    calls = []
    result = CliRunner().invoke(build_cli(_fake_commands(calls)), [])
    assert result.exit_code == 0, result.output
    if display:
        assert calls == [("gui", default_scene_path())]
    else:
        assert result.output == "no display: running the default scene headless\n"
        assert calls == [("simulate", default_scene_path(), Path("out/default.png"), Path("out/"))]


def test_bare_deft_without_the_command_says_so_in_one_line(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = CliRunner().invoke(build_cli(lambda cli: None), [])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "'simulate' command is not available" in result.output
