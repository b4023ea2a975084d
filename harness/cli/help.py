"""``--help`` for every command: defaults shown, an example each, the exit codes; shell completion."""

from __future__ import annotations

import argparse

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug of ours: Python's traceback, please report it
EXIT_USER_ERROR = 2  # a mistake the message names (study file, flag, path); argparse's usage errors too
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); a rerun of the same command resumes

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    success (also when the reader of stdout went away, as in `| head`)
  {EXIT_INTERNAL}    internal error (a traceback: please report it)
  {EXIT_USER_ERROR}    user error: the message names the file, line or flag and the fix
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); rerun the same command to resume"""

# one example per command (and per nested command, as "prepare patches")
EXAMPLES = {
    "run": "harness run quickstart --set training.epochs=2 --workers 2",
    "tune": "harness tune studies/se_reduction.yaml --trials 20 --workers 2 --then-run",
    "validate": "harness validate studies/quickstart.yaml --no-data",
    "plugins": "harness plugins --json",
    "list": "harness list backbones 'resnet*'",
    "model": "harness model resnet20 --attention '{name: se, reduction: 8}' --classes 10 --image-size 32",
    "compare": "harness compare runs/quickstart --metric f1_macro --json",
    "plan": "harness plan runs/quickstart --effect 0.01",
    "prepare": "harness prepare patches slides/ patches/ --size 150",
    "prepare patches": "harness prepare patches slides/ patches/ --size 150 --test-fraction 0.2",
    "bench": "harness bench --backbone resnet20 --image-size 32 --steps 20  (or: harness bench data STUDY)",
    "report": "harness report runs/quickstart  (two run directories: side by side)",
    "studies": "harness studies --copy my-studies/",
    "schema": "harness schema > study.schema.json",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's line breaks and appends each option's default when it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("%(default)" not in text and action.option_strings and _shown(default)
                and not isinstance(action, argparse._VersionAction)):
            text = f"{text} (default: %(default)s)".strip()
        return text


def _shown(default: object) -> bool:
    """A default worth printing: not unset, not a plain off switch, not empty (0 is shown: it is a value)."""
    return not (default is None or default is False or default is argparse.SUPPRESS or default == [] or default == "")


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:  # type: ignore[type-arg]
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """An option without help text still shows its default (the formatter skips options without help)."""
    for action in parser._actions:
        if action.help is None and action.option_strings and _shown(action.default):
            action.help = "(default: %(default)s)"


def finish_help(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Give every (sub)command the formatter, its example and shown defaults; the top level lists exit codes."""
    parser.formatter_class = HelpFormatter
    _show_defaults(parser)
    if not prefix:
        parser.epilog = f"{EXIT_CODES}\n\nshell completion: harness --print-completion bash|zsh|tcsh (see docs/getting-started.md)"
    for sub in _subparsers(parser):
        for name, child in sub.choices.items():
            key = f"{prefix} {name}".strip()
            example = EXAMPLES.get(key)
            if example is not None:
                child.epilog = f"example:\n  {example}"
            finish_help(child, key)


def add_completion(parser: argparse.ArgumentParser) -> None:
    """``harness --print-completion bash|zsh|tcsh`` (shtab): a script to source from the shell's rc file."""
    try:
        import shtab
    except ImportError:  # pragma: no cover - shtab is a dependency; an odd install still gets the rest
        return
    shtab.add_argument_to(parser, ["--print-completion"], help="print a shell completion script and exit")
