"""The ``deft`` typer app: discovers its subcommands and picks what a bare ``deft`` does.

Subcommands are the modules of ``app.cli.commands``; each one's ``register(cli)`` adds its
command(s). With no subcommand, ``deft`` opens the studio (``deft gui SCENE``) when a
display is available, and otherwise runs the default scene headless
(``deft simulate SCENE --render out/default.png --out out/``).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Callable

import typer

from app.cli import commands


class CommandModuleError(RuntimeError):
    """A module of app.cli.commands that cannot be imported or has no working register()."""


def register_all(cli: typer.Typer) -> list[str]:
    """Import every command module and let it register; return the module names."""
    names = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if not callable(register):
            raise CommandModuleError(f"app/cli/commands/{info.name}.py defines no register(cli) function")
        register(cli)
        names.append(info.name)
    return names


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def default_args() -> list[str]:
    """The subcommand line a bare ``deft`` runs here."""
    from app.scene.paths import default_scene_path

    scene = str(default_scene_path())
    if has_display():
        return ["gui", scene]
    return ["simulate", scene, "--render", "out/default.png", "--out", "out/"]


def build_cli(register: Callable[[typer.Typer], object] = register_all) -> typer.Typer:
    """The deft app with the commands ``register`` adds (by default: every command module)."""
    cli = typer.Typer(
        name="deft",
        help="Deft: a studio for differentiable robotic manipulation of deformables.",
        no_args_is_help=False,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @cli.callback(invoke_without_command=True)
    def root(ctx: typer.Context) -> None:
        """Without a command: open the studio on the default scene, or run it headless."""
        if ctx.invoked_subcommand is not None:
            return
        args = default_args()
        command = ctx.command.get_command(ctx, args[0])  # type: ignore[attr-defined]
        if command is None:
            typer.echo(
                f"deft: the '{args[0]}' command is not available (app/cli/commands/{args[0]}.py is missing); "
                "run 'deft --help' for the commands there are",
                err=True,
            )
            raise typer.Exit(1)
        if args[0] == "simulate":
            typer.echo("no display: running the default scene headless")
        ctx.exit(command.main(args=args[1:], prog_name=f"deft {args[0]}", standalone_mode=False) or 0)

    register(cli)
    return cli


def main(argv: list[str] | None = None) -> None:
    cli = build_cli()
    cli(args=argv if argv is not None else sys.argv[1:], prog_name="deft")
