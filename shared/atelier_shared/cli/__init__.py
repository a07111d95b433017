"""The `atelier` command line."""

from atelier_shared.cli.main import main

__all__ = ["main"]
