"""Generate the reference pages from the code: an mkdocs hook (``hooks:`` in mkdocs.yml) and a script.

The pages are built from the objects the harness itself uses, so they cannot drift from it:

- ``reference/cli.md``: the argparse parser of ``harness`` (every command, option and default);
- ``reference/study-schema.md``: the pydantic study model (``Study.model_json_schema()``);
- ``reference/components.md``: every component's option model (``harness list KIND --options``), for
  the built-in plugins only (those ``pyproject.toml`` declares as entry points), whatever else is installed;
- ``reference/run-directory.md``: the file names of the run-directory names module (``harness/rundir/names.py``)
  with :data:`RUN_DIR_FILES` (a description per name, kept here; the build fails when a name has none;
  descriptions of names that are gone are simply not shown);
- ``reference/metrics.md``: the metric registry (``harness/stats/registry.py``).

``python docs/gen_reference.py OUT_DIR`` writes the same pages into OUT_DIR (to read them without mkdocs).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("backbones", "attention", "datasets", "optimizers", "schedulers", "loggers")

# What each name of the run-directory module is; a name without a line here fails the docs build.
RUN_DIR_FILES: dict[str, str] = {
    "STUDY": "the resolved study: every default written out (init, selection, augmentation values, seeds' `vary`)",
    "RUN_INFO": "versions, device, threads, fixed overhead, total seconds, per arm `compute` (`cpu/fp32`, `cuda/bf16`, ...) "
                "and `deterministic`, the data notes (`data_notes`)",
    "ARMS": "each arm's resolved settings and cost (parameters, FLOPs)",
    "SPLITS": "`sample_id, group, repeat, fold, role` (train / inner / val / test) of every sample in every fold",
    "LABELS": "the label table as read (path, label, group and the other columns)",
    "CLASSES": "the class names, in the order of the model's outputs",
    "SKIPPED": "images left out with `dataset.on_bad_image: skip`, with the reason",
    "DATA_SUMMARY": "class and group counts, each fold's class balance",
    "RESULTS": "one row per arm x repeat x fold: every metric, epochs, `scored_epoch`, `best_epoch`, `selection`, "
               "`n_train`/`n_inner`/`n_val`, seconds, params, FLOPs, status, `majority_rate`, `chance_rate`, "
               "`training_flag`, `note`",
    "PREDICTIONS": "out-of-fold class probabilities per sample (and per test sample for each fold's model)",
    "STATS": "the comparison of `harness compare` with the study's settings (the report shows it)",
    "TUNING": "after `harness tune`: best values, trial counts per arm",
    "REPORT": "the HTML report (opens with the answer box)",
    "LOG": "the run's log (info and above, whatever `--quiet` hides)",
    "CELLS": "one folder per cell: `cells/<arm>/r<repeat>-f<fold>/`",
    "CACHE": "the decoded images (uint8, memory-mapped above 2 GiB), keyed by content; kept by `--fresh`",
    "LOCK": "the run directory's lock (`fcntl.flock`): exclusive for a run, shared by the workers of one storage",
    "LOCK_DB": "the lock where there is no `fcntl` (Windows): filelock's SQLite reader/writer lock",
    "CELL_QUEUE": "the local workers' shared queue of cells (`run --workers N`)",
    "DUPLICATES": "the duplicate images found before training (`dataset.duplicates`): `cluster, sample_id, path, label, phash`; "
                  "each cluster is kept on one side of every fold (`group: true`)",
    "STOPPING": "`cv.stop_when_settled`: the design, every look and the outcome (`status`: settled, exhausted, incomplete "
                "or running); copied into `run.json` and `stats.json`",
    "INSIGHT": "what the report shows of the trained models (SE gate statistics, excitation plots, Grad-CAM, mistakes, "
               "duplicate thumbnails; PNGs as base64), computed once at run end so `harness report` builds no model",
    "PLUGINS": "one folder per plugin that writes files: `plugins/<name>/` (loggers: `plugins/tensorboard/`, "
               "`plugins/mlflow/`; what a plugin keeps, such as the mlflow store, survives `--fresh`)",
    "MANIFEST": "marks the folder as a run directory and lists the names the harness owns in it: the harness writes and "
                "`--fresh` removes only those (keep it when you copy a run directory)",
    "TUNING_DB": "`harness tune`: the default Optuna storage",
    "TRIALS": "`harness tune`: one run directory per trial, `tuning/<arm>/<trial>/`",
    "NESTED": "nested-CV tuning: `nested/<arm>/<outer fold>/`",
    "SETTINGS": "a study with `settings:`: one complete run per training setting, `settings/<id>/`, sharing `cache/`",
    "DATASETS": "a multi-dataset study: one complete run per dataset, `datasets/<id>/`",
    "ACROSS": "a multi-dataset study: the across-dataset comparison",
    "RESULT": "(in a cell) the cell's metrics, status and timings",
    "HISTORY": "(in a cell) `train_*`, `inner_*`, `val_*` loss and accuracy per epoch, rewritten after each epoch",
    "CELL_PREDICTIONS": "(in a cell) the cell's out-of-fold probabilities, gathered into the top-level file",
    "FINGERPRINT": "(in a cell) hash of the settings and data the cell was trained with: a change retrains it",
    "LAST": "(in a cell) the resume checkpoint: model, optimizer, scheduler, EMA, RNG states, position in the epoch",
    "BEST": "(in a cell) the weights that were scored",
}


def _first_module(*names: str) -> ModuleType:
    """The first of ``names`` that imports (modules move between rounds; the pages must follow them)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise RuntimeError(f"docs/gen_reference.py: none of {names} imports; point it at the module's new place")


def _rundir() -> ModuleType:
    return _first_module("harness.rundir.names", "harness.rundir")


# ---------------------------------------------------------------- the CLI


def _parser() -> argparse.ArgumentParser:
    for module in (_first_module("harness.cli.main", "harness.cli"),):
        for name in ("build_parser", "_parser", "parser"):  # the CLI may name its builder either way
            builder = getattr(module, name, None)
            if callable(builder):
                return builder()  # type: ignore[no-any-return]
    raise RuntimeError("the harness CLI has no parser builder (build_parser or _parser)")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(action: argparse.Action) -> str:
    default = action.default
    if default is None or default is argparse.SUPPRESS or default == [] or default == "" or default is False:
        return ""
    if isinstance(action, argparse._StoreTrueAction | argparse._CountAction) and not default:
        return ""
    return f"`{default}`"


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest
        return f"`{str(name).upper() if name == action.dest else name}`"
    value = ""
    if action.nargs != 0:
        if action.choices:
            value = " {" + ",".join(map(str, action.choices)) + "}"
        else:
            value = " " + str(action.metavar or action.dest.upper())
    return ", ".join(f"`{flag}{value}`" for flag in action.option_strings)


GLOBAL_FLAGS = {"--strict-plugins", "--quiet", "--verbose"}  # shown once, under Global options


def _actions_table(parser: argparse.ArgumentParser, *, skip_global: bool = False) -> list[str]:
    rows = ["| argument | default | meaning |", "| --- | --- | --- |"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if skip_global and GLOBAL_FLAGS & set(action.option_strings):
            continue
        meaning = action.help if action.help is not argparse.SUPPRESS else ""
        if action.choices and not action.option_strings:
            meaning = f"{meaning or ''} (one of: {', '.join(map(str, action.choices))})".strip()
        rows.append(f"| {_flags(action)} | {_default(action)} | {_cell(meaning or '')} |")
    return rows if len(rows) > 2 else []


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                full = f"{prefix} {name}".strip()
                found.append((full, helps.get(name) or "", sub))
                found.extend(_commands(sub, full))
    return found


def cli_page() -> str:
    cli_help = _first_module("harness.cli.help", "harness.cli.help")
    EXAMPLES, EXIT_CODES = cli_help.EXAMPLES, cli_help.EXIT_CODES  # noqa: N806 - the module's constants
    parser = _parser()
    lines = ["# Command line", "",
             "Generated from the `harness` argparse parser. `harness COMMAND --help` prints the same, with an example.",
             "The global options (`-q/--quiet`, `-v/--verbose`, `--strict-plugins`) go before or after the command.",
             "", "```text", parser.format_usage().strip(), "```", "", "## Global options", ""]
    lines += _actions_table(parser)
    lines += ["", "## Exit codes", "", "```text", EXIT_CODES.strip(), "```", ""]
    for name, summary, sub in _commands(parser, ""):
        lines += [f"## harness {name}", "", summary, "", "```text", sub.format_usage().strip(), "```", ""]
        table = _actions_table(sub, skip_global=True)
        if table:
            lines += table + [""]
        if name in EXAMPLES:
            lines += [f"Example: `{EXAMPLES[name]}`", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the study schema


def _type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        target = node["$ref"].rsplit("/", 1)[-1]
        return f"[{target}](#{target.lower()})"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])  # already escaped for a table cell
    if "const" in node:
        return f"`{node['const']}`"
    if "anyOf" in node:
        return " or ".join(_type(branch) for branch in node["anyOf"])
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"mapping of {_type(node['additionalProperties'])}"
    bounds = [f"{sign} {node[key]}" for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                       ("maximum", "<="), ("exclusiveMaximum", "<")) if key in node]
    return " ".join([{"null": "unset"}.get(kind, kind), *bounds])


def _model_table(name: str, node: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if node.get("description"):
        lines += [_cell(node["description"]), ""]
    required = set(node.get("required", []))
    properties = node.get("properties", {})
    if not properties:
        return [*lines, "(no fixed keys)", ""]
    lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, prop in properties.items():
        default = "required" if key in required else (f"`{prop['default']}`" if "default" in prop else "")
        lines.append(f"| `{key}` | {_type(prop)} | {_cell(default)} | {_cell(prop.get('description', ''))} |")
    return [*lines, ""]


def schema_page() -> str:
    from harness.study.schema import Study

    schema = Study.model_json_schema(ref_template="#/$defs/{model}")
    lines = ["# Study file", "",
             "Generated from the pydantic study model (`harness/study/schema.py`). Each table is one mapping of the "
             "study file; `harness validate` checks a file against it (with line numbers), and `harness schema` "
             "writes it as a JSON Schema for an editor, with the installed components' names and options wired in "
             "(see [Studies](../guide/studies.md#editor-completion-json-schema)). Component options "
             "(`attention: {name: se, ...}`, optimizers, schedulers, `dataset.options`) are in "
             "[Component options](components.md).", "", "## The study", ""]
    lines += _model_table("Study", schema)
    lines += ["## Nested mappings", ""]
    for name, node in sorted(schema.get("$defs", {}).items()):
        lines += _model_table(name, node)
    return "\n".join(lines)


# ---------------------------------------------------------------- component options


def builtin_registry():  # type: ignore[no-untyped-def]
    """The registry of the built-in plugins only (pyproject's entry points), on a plugin manager of its own."""
    from harness.registry import build_registry, make_plugin_manager

    with open(ROOT / "pyproject.toml", "rb") as handle:
        modules = list(tomllib.load(handle)["project"]["entry-points"]["harness"].values())
    pm, records = make_plugin_manager(modules, strict=True, entry_points=False)
    return build_registry(pm, records)


def options_tables() -> dict[str, str]:
    """``harness list KIND --options`` for every kind, on the built-in plugins."""
    from harness.options import options_markdown, options_model

    registry = builtin_registry()
    return {kind: options_markdown(kind, [(n, options_model(registry.get(kind, n))) for n in registry.names(kind)])
            for kind in KINDS}


def components_page() -> str:
    registry = builtin_registry()
    lines = ["# Component options", "",
             "Generated from each built-in component's option model: the same tables as "
             "`harness list KIND --options`, which also lists the components of the plugins you installed. "
             "How the option models work: [Writing plugins](../plugins.md#component-options).", ""]
    for kind, table in options_tables().items():
        lines += [f"## {kind.capitalize()}", ""]
        lines += [f"- `{name}`: {_cell(registry.components[kind][name].summary)}"
                  for name in registry.names(kind) if name in registry.components[kind]]
        lines += ["", table, ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- the run directory


def run_dir_names() -> dict[str, str]:
    """Every file-name constant of the run directory's module (upper-case ``str`` names)."""
    return {name: value for name, value in vars(_rundir()).items()
            if name.isupper() and isinstance(value, str) and name != "TEMP_SUFFIX"}


def run_directory_page() -> str:
    names = run_dir_names()
    missing = sorted(set(names) - set(RUN_DIR_FILES))
    if missing:
        raise RuntimeError(f"docs/gen_reference.py RUN_DIR_FILES is out of date: describe {missing}")
    rundir = _rundir()
    in_cell = getattr(rundir, "CELL_FILES", None) or {v for n, v in names.items() if RUN_DIR_FILES[n].startswith("(in a cell)")}
    kept = [name for name in names if names[name] not in rundir.OUTPUTS and names[name] not in in_cell]
    source = rundir.__name__.replace(".", "/") + ".py"
    lines = ["# Run directory", "",
             f"Generated from the names in `{source}`, the one owner of the run directory's file names. "
             "Every file is written atomically (a temporary file beside it, fsync, rename). "
             "`--fresh` removes everything except " + ", ".join(f"`{names[n]}`" for n in kept)
             + " (and only names `.harness-run.json` lists: files you add are never touched).", "",
             "| name | in the code | what it holds |", "| --- | --- | --- |"]
    for name, value in names.items():
        lines.append(f"| `{value}` | `{name}` | {_cell(RUN_DIR_FILES[name])} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- metrics


def metrics_page() -> str:
    from harness.stats.registry import METRICS, TEST_PREFIX

    lines = ["# Metrics", "",
             "Generated from the metric registry (`harness/stats/registry.py`), which `compare`, `tune`, the report "
             f"and study validation all use. `{TEST_PREFIX}` in front of a name is the same metric on the held-out "
             "test set (`test_accuracy`); `tune.metric` may not be a test metric. How each is tested: "
             "[Statistics](../guide/statistics.md).", "",
             "| metric | aliases | better | range | unit | meaning |", "| --- | --- | --- | --- | --- | --- |"]
    for metric in METRICS:
        aliases = ", ".join(f"`{a}`" for a in metric.aliases)
        better = "higher" if metric.higher_is_better else "lower"
        lines.append(f"| `{metric.name}` | {aliases} | {better} | {metric.low:g} .. {metric.high:g} | "
                     f"{metric.kind} | {_cell(metric.summary)} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- mkdocs hook and script

PAGES = {
    "reference/cli.md": cli_page,
    "reference/study-schema.md": schema_page,
    "reference/components.md": components_page,
    "reference/run-directory.md": run_directory_page,
    "reference/metrics.md": metrics_page,
}


def pages() -> dict[str, str]:
    """Every generated page: path under docs/ -> Markdown."""
    return {path: make() for path, make in PAGES.items()}


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated pages to the build (nothing is written into docs/)."""
    from mkdocs.structure.files import File

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "generated-docs")
    for path, text in pages().items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(target)
