"""The ``deft`` command line (entry point ``app.cli:main``); see ``app.cli.main``."""

from app.cli.main import build_cli, main

__all__ = ["build_cli", "main"]
