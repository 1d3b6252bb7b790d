"""The ``deft`` command line (entry point ``app.cli:main``); see ``app.cli.root``."""

from app.cli.root import build_cli, main

__all__ = ["build_cli", "main"]
