"""Commands that inspect or measure without running a study: plugins, list, model, prepare, bench, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.checks import attention_option, refuse_several_entries, registry_for
from harness.cli.options import (
    BenchCommand,
    BenchDataCommand,
    ListCommand,
    ModelCommand,
    PlanStudyCommand,
    PluginsCommand,
    PrepareCommand,
    ReportCommand,
    SchemaCommand,
    StudiesCommand,
)
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.bench import BenchConfig
    from harness.registry import Registry


def cmd_plugins(args: PluginsCommand) -> int:
    from harness.registry import KINDS

    registry = registry_for(args)
    rows = []
    for record in registry.plugins:
        provides = {kind: sorted(n for n, owner in registry.owners[kind].items() if owner == record.name)
                    for kind in KINDS}
        rows.append({**vars(record), "registers": {k: v for k, v in provides.items() if v}})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        print(f"{row['name']} {row['version']}  ({row['source']})")
        for kind, names in row["registers"].items():
            print(f"    {kind}: {', '.join(names)}")
    return 0


def cmd_list(args: ListCommand) -> int:
    registry = registry_for(args)
    names = registry.matching(args.kind, args.pattern)
    if not names:
        from harness.errors import did_you_mean

        known = registry.names(args.kind)
        raise HarnessError(f"no {args.kind} match {args.pattern!r}{did_you_mean(args.pattern.rstrip('*'), known)}"
                           + (f"; known: {', '.join(known)}" if known else "; none are registered (harness plugins)"))
    if args.options:
        from harness.options import options_markdown, options_model

        print(options_markdown(args.kind, [(n, options_model(registry.get(args.kind, n))) for n in names]))
        return 0
    width = max((len(n) for n in names), default=0)
    table = registry.components[args.kind]
    identity = registry.defaults.identity_attention if args.kind == "attention" else None
    marked = [(registry.defaults.names.get(args.kind), "default"), (identity, "no attention")]  # the plugins' marks
    for name in names:  # a family member (timm/resnet26d) has no entry of its own
        summary = table[name].summary if name in table else f"(one of {name.split('/', 1)[0]}/*)"
        marks = [mark for marked_name, mark in marked if marked_name == name]
        print(f"{name:<{width}}  {summary}" + (f" [{'; '.join(marks)}]" if marks else ""))
    return 0


def cmd_model(args: ModelCommand) -> int:
    from harness.models.build import build_model, model_cost

    registry = registry_for(args)
    name, options = attention_option(args.attention, registry.identity_attention)
    model = build_model(registry, args.backbone, name, options, num_classes=args.classes,
                        in_chans=args.in_chans, image_size=args.image_size)
    cost = model_cost(model, args.in_chans, args.image_size)
    layers = [{"name": n, "type": type(m).__name__, "params": sum(p.numel() for p in m.parameters())}
              for n, m in model.named_children()]
    stages: dict[str, set[float]] = {}
    for row in cost.attention:
        if row["ratio"] is not None:  # variants without a bottleneck (eca, ...) have no ratio
            stages.setdefault(row["module"].split(".")[0], set()).add(row["ratio"])
    if args.json:
        print(json.dumps({"backbone": args.backbone, "params": cost.params, "flops": cost.flops, "layers": layers,
                          "attention": {"name": name, **options, "modules": cost.attention,
                                        "ratio_per_stage": {k: sorted(v) for k, v in stages.items()}}}, indent=1))
        return 0
    print(f"{args.backbone} + {name} {options or ''}")
    print(f"  params {cost.params:,}   FLOPs {cost.flops / 1e9:.3f} G at {args.image_size}x{args.image_size}")
    for layer in layers:
        print(f"  {layer['name']:<14} {layer['type']:<20} {layer['params']:>12,}")
    for stage, ratios in stages.items():
        print(f"  effective attention ratio in {stage}: {', '.join(f'{r:g}' for r in sorted(ratios))}")
    return 0


def cmd_prepare(args: PrepareCommand) -> int:
    from harness.data.patches import make_patches

    summary = make_patches(args.src, args.dst, size=args.size, max_white=args.max_white, white_level=args.white_level,
                           test_fraction=args.test_fraction, seed=args.seed, pattern=args.pattern)
    print(f"{summary.sources} source images ({summary.test_sources} held out for test): kept {summary.kept} "
          f"patches, discarded {summary.discarded_white} mostly-white ones")
    print(f"dataset: {summary.csv} (use dataset: {{name: csv, options: {{path: ...}}}} and cv.group: source)")
    return 0


def cmd_bench(args: BenchCommand) -> int:
    import torch

    from harness.run.threads import default_threads

    torch.set_num_threads(args.threads or default_threads())  # checked (>= 1) with the options
    if args.mode == "data":
        if args.study is None:
            raise HarnessError("harness bench data needs a study file: harness bench data STUDY [--set ...]")
        return _bench_data(BenchDataCommand(study=args.study, overrides=args.overrides, json=args.json,
                                            strict_plugins=args.strict_plugins, quiet=args.quiet))
    from harness.bench import BenchConfig, run_bench

    registry = registry_for(args)
    name, options = attention_option(args.attention, registry.identity_attention)
    config = BenchConfig(args.backbone, name, tuple(sorted(options.items())), args.image_size, args.batch_size,
                         args.steps, device=args.device, amp=args.amp, channels_last=args.channels_last,
                         compile=args.compile, augment=args.augment, deterministic=args.deterministic,
                         cuda_graph=args.cuda_graph)
    if args.fuse:
        return _bench_fusion(config, registry, args)
    result = run_bench(config, registry, profile_steps=args.profile)
    profile = result.pop("profile", None)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "config"}))
    else:
        print(f"{result['backbone']} + {result['attention']} at {result['image_size']}px, batch {result['batch_size']}, "
              f"{result['device_name']} (amp {result['amp']}, channels_last {result['channels_last']})")
        print(f"  train  harness {result['train_img_s']:.1f} img/s   bare loop {result['bare_train_img_s']:.1f} img/s   "
              f"ratio {result['overhead_ratio']:.3f}   batch preparation {100 * result['data_share']:.1f} % of step time")
        if "attention_ratio" in result:
            print(f"  plain {result['backbone']} (bare loop) {result['plain_train_img_s']:.1f} img/s   "
                  f"{result['attention']} / plain throughput {result['attention_ratio']:.3f}")
        print(f"  infer  {result['infer_img_s']:.1f} img/s   peak memory {result['peak_mem_mb']:.0f} MB")
    if profile:
        print(profile, file=sys.stderr if args.json else sys.stdout)
    return 0


def _bench_fusion(config: BenchConfig, registry: Registry, args: BenchCommand) -> int:
    from harness.bench import run_fusion_bench

    result = run_fusion_bench(config, registry, args.fuse)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['backbone']} + {result['attention']} at {result['image_size']}px, batch {result['batch_size']}, "
          f"{result['cells']} cells, {result['device_name']} (amp {result['amp']})")
    print(f"  one after another {result['sequential_img_s']:.1f} img/s   fused {result['fused_img_s']:.1f} img/s   "
          f"fused / one after another {result['fusion_speedup']:.3f}   peak memory {result['peak_mem_mb']:.0f} MB")
    return 0


def _bench_data(command: BenchDataCommand) -> int:
    import tempfile

    from harness.bench import data_share
    from harness.pipeline.plan import make_plan
    from harness.run.runner import RunOptions, run_study

    plan = make_plan(command.study, command.overrides, strict_plugins=command.strict_plugins)
    if plan.kind is not None:
        raise HarnessError(f"{command.study} declares several {plan.kind}; bench data measures one study: give a copy "
                           f"with one of them")
    with tempfile.TemporaryDirectory() as tmp:
        run_study(plan.first, plan.registry, RunOptions(Path(tmp), quiet=True, report=None))
        rows = data_share(Path(tmp))
    for row in rows:
        if command.json:
            print(json.dumps(row))
        elif row["data_share"] is None:  # a 1-epoch study (or early stopping after epoch 1): say so, no "nan %"
            print(f"{row['arm']}: data preparation not measured: no epoch after the first (bench data measures "
                  "epochs after the first, which pays for start-up); --set training.epochs=2 or more")
        else:
            print(f"{row['arm']}: data preparation = {100 * row['data_share']:.2f} % of training time after epoch 1 "
                  f"({row['epochs_measured']} epochs); images decoded once for the whole study in "
                  f"{row['decode_seconds_for_whole_study']:.2f} s")
    return 0


def cmd_report(args: ReportCommand) -> int:
    from harness.report.render import write_report
    from harness.report.side_by_side import write_comparison
    from harness.run.analysis import is_multi_run, is_settings_run

    if len(args.run_dirs) == 1 and is_multi_run(args.run_dirs[0]):  # several datasets: the across-dataset report
        from harness.report.across import rewrite_across_report

        print(rewrite_across_report(args.run_dirs[0], args.out))
    elif len(args.run_dirs) == 1 and is_settings_run(args.run_dirs[0]):  # several settings: the across-settings report
        from harness.report.settings import rewrite_settings_report

        print(rewrite_settings_report(args.run_dirs[0], args.out))
    elif len(args.run_dirs) == 1:
        print(write_report(args.run_dirs[0], None, args.out, trust_plugins=args.trust_plugins))
    elif len(args.run_dirs) == 2:
        for run_dir in args.run_dirs:
            _refuse_multi_entry_run(run_dir)
        print(write_comparison(args.run_dirs[0], args.run_dirs[1], args.out or Path("comparison.html")))
    else:
        raise HarnessError("harness report takes one run directory, or two to compare")
    return 0



def _refuse_multi_entry_run(run_dir: Path) -> None:
    """Two runs side by side are two single runs: a run of several datasets or settings is named with its sub-runs."""
    from harness.rundir import DATASETS, SETTINGS, RunDir

    for kind, label in ((SETTINGS, "settings"), (DATASETS, "datasets")):
        subs = RunDir(run_dir).sub_runs(kind)
        if subs:
            raise HarnessError(f"{run_dir} is a run of several {label} (one sub-run each: "
                               f"{', '.join(str(p) for p in subs.values())}); harness report RUN_A RUN_B puts two "
                               f"single runs side by side: name one of its sub-runs, e.g. {next(iter(subs.values()))}")


def cmd_studies(args: StudiesCommand) -> int:
    from harness.shipped import copy_studies, first_comment, shipped_studies

    if args.copy is not None:
        for path in copy_studies(args.copy):
            print(path)
        return 0
    studies = shipped_studies()
    width = max((len(n) for n in studies), default=0)
    for name, path in studies.items():
        print(f"{name:<{width}}  {first_comment(path)}")
    print(f"(in {next(iter(studies.values())).parent if studies else 'no folder'}; run one by name: harness run NAME)")
    return 0


def cmd_schema(args: SchemaCommand) -> int:
    """The study file's JSON Schema, for an editor's YAML language server (docs/guide/studies.md: Editor completion)."""

    from harness.atomic import atomic_write_text
    from harness.optional import installed
    from harness.study.json_schema import study_json_schema

    for module in args.plugin:  # named on purpose: a module that is not there is an error, not a warning
        if not installed(module):
            raise HarnessError(f"--plugin {module}: no such module on the Python path; install the plugin's package "
                               "or add its folder to PYTHONPATH")
    text = json.dumps(study_json_schema(registry_for(args, args.plugin)), indent=1) + "\n"
    if args.out is None:
        print(text, end="")
    else:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_plan_study(command: PlanStudyCommand) -> int:
    """``harness plan STUDY``: measure a short slice of every arm, print the study's projected wall time."""
    from harness.pipeline.plan import make_plan
    from harness.run.projection import format_projection, project_study

    plan = make_plan(command.study, command.overrides, strict_plugins=command.strict_plugins)
    refuse_several_entries(plan, command.study,
                           datasets="plan projects one: plan a copy of the study with one of them as dataset:, once "
                                    "per dataset",
                           settings="plan projects one training: plan a copy without the settings, once per setting")
    projection = project_study(plan.first, plan.registry, steps=command.steps)
    print(json.dumps(projection.to_dict(), indent=1) if command.json else "\n".join(format_projection(projection)))
    return 0
