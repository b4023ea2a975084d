"""Contract suites: every hookspec is documented and exercised; every built-in optimizer, scheduler and
dataset behaves as the core expects, each loaded on its own isolated plugin manager."""

from __future__ import annotations

import inspect
import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from harness import hookspecs
from harness.contracts import DatasetRequest
from harness.errors import HarnessError
from harness.registry import KINDS, Registry, build_registry, make_plugin_manager

TESTS = Path(__file__).parent
SCHEDULER_OPTIONS = {"multistep": {"milestones": [2, 4]}, "exponential": {"gamma": 0.9}}


def _isolated(module: str) -> Registry:
    pm, records = make_plugin_manager([module], entry_points=False)
    return build_registry(pm, records)


SPECS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(fn, "harness_spec")]


def test_hookspecs_are_found() -> None:
    assert {"register_backbones", "fold_finished", "report_sections"} <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_every_hookspec_is_documented_called_and_exercised(name: str, builtin_plugins) -> None:  # type: ignore[no-untyped-def]
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert doc.strip(), f"hookspec {name} has no docstring"
    registration = {hook for hook, _info in KINDS.values()}
    assert name in registration or callable(getattr(Registry, name, None)), (
        f"hook {name}: the core never calls it (no component kind registers through it, no typed Registry method)")
    pm, _ = builtin_plugins  # the built-ins only, not whatever else is installed
    built_in = [impl.plugin_name for impl in getattr(pm.hook, name).get_hookimpls()]
    implemented = re.compile(rf"@hookimpl\s*\n\s*def {name}\(")
    tests = [p for p in TESTS.rglob("*.py") if p.name != Path(__file__).name and implemented.search(p.read_text())]
    assert built_in or tests, f"hook {name}: no built-in plugin implements it and no test does"


OPTIMIZERS = _isolated("harness_plugins.optim.plugin")


@pytest.mark.parametrize("name", OPTIMIZERS.names("optimizers"))
def test_optimizer_contract(name: str) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    before = model.weight.detach().clone()
    optimizer = OPTIMIZERS.optimizer(name).build(model.parameters(), {"lr": 0.01})
    assert isinstance(optimizer, torch.optim.Optimizer)
    model(torch.randn(8, 4)).pow(2).mean().backward()
    optimizer.step()
    assert not torch.equal(before, model.weight), "one step must move the weights"
    with pytest.raises(HarnessError, match=rf"optimizer {name!r}.*no_such_option"):
        OPTIMIZERS.optimizer(name).build(model.parameters(), {"lr": 0.01, "no_such_option": 1})


@pytest.mark.parametrize("name", OPTIMIZERS.names("schedulers"))
def test_scheduler_contract(name: str) -> None:
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = OPTIMIZERS.scheduler(name).build(optimizer, SCHEDULER_OPTIONS.get(name, {}), 6)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    rates = []
    for _ in range(6):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert all(math.isfinite(r) and 0 <= r <= 0.1 + 1e-12 for r in rates)
    with pytest.raises(HarnessError, match=rf"scheduler {name!r}.*no_such_option"):
        OPTIMIZERS.scheduler(name).build(optimizer, {"no_such_option": 1}, 6)


DATASETS = _isolated("harness_plugins.datasets.plugin")


@pytest.fixture(scope="module")
def phantom_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness_plugins.datasets.phantom import generate

    return Path(generate(tmp_path_factory.mktemp("phantom"), classes=2, per_class=4, patients=4,
                         difficulty=0.3, size=16, seed=0))


def _options(name: str, csv: Path, tmp: Path) -> dict[str, object]:
    """Minimal options for each built-in dataset, laid out from the phantom images."""
    import pandas as pd

    table = pd.read_csv(csv)
    image_col, label_col = table.columns[0], table.columns[1]
    if name == "phantom":
        return {"classes": 2, "per_class": 3, "size": 16}
    if name == "csv":
        return {"path": str(csv)}
    for i, row in table.iterrows():
        source = csv.parent / str(row[image_col])
        if name == "folder":
            target = tmp / str(row[label_col]) / f"{i}{source.suffix}"
        else:  # filename: "<label>_<n>.png"
            target = tmp / f"{row[label_col]}_{i}{source.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    return {"path": str(tmp)}


@pytest.mark.parametrize("name", DATASETS.names("datasets"))
def test_dataset_contract(name: str, phantom_csv: Path, tmp_path: Path) -> None:
    options = _options(name, phantom_csv, tmp_path / "data")
    table = DATASETS.dataset(name).load(DatasetRequest(options, tmp_path, tmp_path / "cache", 0))
    n = len(table.paths)
    assert n >= 4 and len(table.labels) == n and len(set(table.sample_ids)) == n
    assert sorted(set(table.labels.tolist())) == list(range(len(table.class_names))) and len(table.class_names) == 2
    assert all(Path(p).is_file() for p in table.paths)
    with pytest.raises(HarnessError, match="no_such_option"):
        DATASETS.dataset(name).load(DatasetRequest({**options, "no_such_option": 1}, tmp_path, tmp_path / "cache", 0))
