"""The documentation: generated reference pages that follow the code, a site whose nav has every page, a short README."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"


def test_run_directory_page_describes_every_name_and_fails_on_a_new_one(docs_generator, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rundir = docs_generator._rundir()
    page = docs_generator.run_directory_page()
    for name, value in docs_generator.run_dir_names().items():
        assert f"| `{value}` | `{name}` |" in page
    assert "`cache`" in page.split("--fresh` removes everything except")[1].split("\n")[0]
    monkeypatch.setattr(rundir, "NOTES", "notes.txt", raising=False)  # a new file name without a description
    with pytest.raises(RuntimeError, match=r"describe \['NOTES'\]"):
        docs_generator.run_directory_page()


def test_cli_page_has_every_command_and_option_with_its_default(docs_generator) -> None:  # type: ignore[no-untyped-def]
    parser = docs_generator._parser()
    page = docs_generator.cli_page()
    commands = docs_generator._commands(parser, "")
    assert {"run", "tune", "validate", "compare", "plan", "prepare patches", "bench", "schema"} <= {c[0] for c in commands}
    for name, _summary, sub in commands:
        section = page.split(f"\n## harness {name}\n")[1].split("\n## harness ")[0]
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction) or not action.option_strings:
                continue
            if set(action.option_strings) & docs_generator.GLOBAL_FLAGS:
                continue
            row = next((line for line in section.splitlines() if f"`{action.option_strings[0]}" in line), None)
            assert row is not None, f"harness {name} {action.option_strings[0]} missing from the CLI page"
            if isinstance(action.default, int | float | str) and not isinstance(action.default, bool):
                assert f"`{action.default}`" in row, row
    assert "| `--workers N`, `--parallel N` | `1` |" in page.split("\n## harness run\n")[1]


def test_schema_page_has_every_key_of_every_mapping(docs_generator) -> None:  # type: ignore[no-untyped-def]
    from harness.study.schema import Study

    schema = Study.model_json_schema()
    page = docs_generator.schema_page()
    for name, node in [("Study", schema), *schema["$defs"].items()]:
        section = page.split(f"\n### {name}\n")[1].split("\n### ")[0]
        for key in node.get("properties", {}):
            assert f"| `{key}` |" in section, f"{name}.{key} missing from the study-file page"
    training = page.split("\n### TrainingSpec\n")[1].split("\n### ")[0]
    assert re.search(r"\| `epochs` \| integer >= 1 \| `\d+` \|", training)


def test_metrics_page_has_every_metric_and_alias(docs_generator) -> None:  # type: ignore[no-untyped-def]
    from harness.stats.registry import METRICS

    page = docs_generator.metrics_page()
    for metric in METRICS:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{metric.name}` |"))
        assert all(f"`{alias}`" in row for alias in metric.aliases)
        assert ("| higher |" if metric.higher_is_better else "| lower |") in row


def _nav_pages(nav: list[object]) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            pages += _nav_pages(value) if isinstance(value, list) else [str(value)]
    return pages


def test_nav_names_every_page_and_every_page_exists(docs_generator) -> None:  # type: ignore[no-untyped-def]
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_pages(config["nav"])
    written = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if "incoming" not in p.parts}
    generated = set(docs_generator.PAGES)
    assert not written & generated, "a generated page is also a file in docs/"
    assert sorted(set(nav)) == sorted(written | generated)
    assert len(nav) == len(set(nav))


def test_readme_is_short_and_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert readme.startswith("# ablation-harness\n\n```bash\npip install -e . && harness run studies/quickstart.yaml\n"
                             "pip install nox && nox -s tests\n```\n")
    for link in re.findall(r"\]\(((?:docs/|CHANGELOG|LICENSE)[^)#]*)", readme):
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_readme_quickstart_study_is_the_shipped_one() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("`studies/quickstart.yaml`:\n\n```yaml\n")[1].split("```")[0]
    assert yaml.safe_load(block) == yaml.safe_load((ROOT / "studies" / "quickstart.yaml").read_text())
    assert '--8<-- "studies/quickstart.yaml"' in (DOCS / "getting-started.md").read_text()  # the site includes the file
