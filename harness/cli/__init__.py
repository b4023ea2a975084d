"""The command line: one module per group of commands. ``harness.cli.main:main`` is the entry point;
``python -m harness.cli`` runs it too (worker processes start that way)."""
