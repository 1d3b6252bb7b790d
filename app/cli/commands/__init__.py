"""One module per ``deft`` subcommand, each defining ``register(cli: typer.Typer) -> None``.

``app.cli.root`` imports every module here and calls its ``register``; nothing else has to
be wired up. Keep module-level imports light (typer, stdlib): import taichi, torch, VTK or
rclpy inside the command function so ``deft --help`` stays fast.
"""
