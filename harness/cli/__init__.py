"""The command line: one module per group of commands; ``main`` is the entry point."""

from harness.cli.main import main

__all__ = ["main"]
