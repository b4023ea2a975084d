"""One prepared run of every GPU check, for a session that has a GPU (issue 24); writes one JSON of figures.

    python benchmarks/gpu_check.py --out gpu_check            # on the GPU machine (about 10 min on an H200)
    python benchmarks/gpu_check.py --device cpu --tiny --out x  # the same steps, tiny, on CPU (tested)

1. Determinism: a small study (ResNet-20 vs SE-ResNet-20 on the phantom) run twice, then with
   ``--workers 4``, then SIGKILLed mid-study and rerun: each run's results.csv (less its timing column)
   and predictions.csv are compared with the first run's, byte for byte.
2. The cost of ``training.deterministic``: ``harness bench`` on ResNet-20 + SE @150 (batch 64) and
   SE-ResNet-50 @224 (batch 256), deterministic on and off; from the ResNet-20 pair, the training-only
   projection of the 4-class protocol (2 arms x 4 folds x 150 epochs x 700 batches of 64).
3. The faster paths (``training.compile``, ``training.cuda_graph``): ``harness bench`` eager, ``--compile``,
   ``--cuda-graph`` and both on SE-ResNet-20 @150 (batch 64) and SE-ResNet-50 @224 (batch 256); the warm-up
   steps (compilation, capture) are timed apart from the steady steps. ``--tiny`` (CPU): eager only.
4. Horizontal fusion (``harness bench --fuse K``): K cells of one arm one after another against the same K
   fused into one (``harness/run/fusion.py``), ResNet-20 and SE-ResNet-20 @150 (batch 64), K in 1, 2, 4, 8.
5. The CUDA-marked tests (``tests/e2e/test_gpu.py``, ``tests/run/test_determinism.py``,
   ``tests/run/test_acceleration.py``; ``tests/run/test_fusion.py`` whole), unless ``--no-pytest``.

Every figure lands in ``OUT/gpu_check.json`` with the device, torch version and date; a failed step is
recorded there with its error, never left out.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_IMAGES_PER_ARM = 4 * 150 * 700 * 64  # the seed project's protocol: folds x epochs x batches x batch size


def study(tiny: bool, device: str) -> dict[str, Any]:
    """The determinism study: the issue's case (96 px, 4 folds x 4 epochs), or a tiny one."""
    size, per_class, folds, epochs, batch = (32, 12, 2, 2, 8) if tiny else (96, 160, 4, 4, 32)
    return {"name": "gpu_check", "seed": 0,
            "dataset": {"name": "phantom", "image_size": size, "augment": "standard",
                        "options": {"classes": 4 if not tiny else 2, "per_class": per_class, "size": size}},
            "cv": {"folds": folds, "repeats": 1},
            "training": {"epochs": epochs, "batch_size": batch, "device": device,
                         "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}, **({"threads": 1} if tiny else {})},
            "arms": {"resnet20": {"backbone": "resnet20"},
                     "se_resnet20": {"backbone": "resnet20", "attention": {"name": "se", "reduction": 4}}},
            "compare": {"baseline": "resnet20"}}


def harness(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, check=check)


def outputs(run: Path) -> dict[str, bytes]:
    """What must not change between identical runs: results.csv less its timing column, predictions.csv."""
    import pandas as pd

    results = pd.read_csv(run / "results.csv").drop(columns=["seconds"], errors="ignore")
    buffer = io.StringIO()
    results.sort_values(["arm", "repeat", "fold"]).to_csv(buffer, index=False)
    return {"results.csv": buffer.getvalue().encode(), "predictions.csv": (run / "predictions.csv").read_bytes()}


def determinism_checks(out: Path, study_file: Path, workers: int) -> dict[str, Any]:
    runs = {}
    started = time.perf_counter()
    for name, extra in (("first", []), ("second", []), (f"workers{workers}", ["--workers", str(workers)])):
        harness("run", str(study_file), "--out", str(out / name), "--no-report", "--quiet", *extra)
        runs[name] = outputs(out / name)
    killed = out / "killed"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(study_file), "--out", str(killed),
                                "--no-report", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = killed / "cells" / "resnet20" / "r0-f1" / "last.pt"  # the second cell is under way
    while not target.exists() and process.poll() is None:
        time.sleep(0.01)
    was_killed = process.poll() is None
    if was_killed:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    harness("run", str(study_file), "--out", str(killed), "--no-report", "--quiet")
    runs["killed_and_resumed"] = outputs(killed)
    reference = runs["first"]
    return {"identical": {name: {file: data == reference[file] for file, data in files.items()}
                          for name, files in runs.items() if name != "first"},
            "kill_happened_mid_study": was_killed, "seconds": time.perf_counter() - started}


def bench_configs(tiny: bool, steps: tuple[int, int] = (200, 50)) -> dict[str, list[str]]:
    """``harness bench`` arguments: SE-ResNet-20 @150 (batch 64) and SE-ResNet-50 @224 (batch 256), or tiny."""
    if tiny:
        return {"resnet20_se_32": ["--backbone", "resnet20", "--attention", "{name: se, reduction: 4}",
                                   "--image-size", "32", "--batch-size", "8", "--steps", "3"]}
    return {"resnet20_se_150": ["--backbone", "resnet20", "--attention", "{name: se, reduction: 4}",
                                "--image-size", "150", "--batch-size", "64", "--steps", str(steps[0])],
            "seresnet50_224": ["--backbone", "resnet50", "--attention", "se", "--image-size", "224",
                               "--batch-size", "256", "--steps", str(steps[1])]}


def bench(device: str, tiny: bool) -> dict[str, Any]:
    configs = bench_configs(tiny)
    figures: dict[str, Any] = {}
    for name, config in configs.items():
        for mode in ("deterministic", "no-deterministic"):
            done = harness("bench", *config, "--device", device, f"--{mode}", "--json")
            figures[f"{name}/{mode}"] = json.loads(done.stdout.strip().splitlines()[-1])
        on, off = figures[f"{name}/deterministic"], figures[f"{name}/no-deterministic"]
        figures[f"{name}/cost"] = {"train_slowdown": off["train_img_s"] / on["train_img_s"],
                                   "attention_ratio_on": on.get("attention_ratio"),
                                   "attention_ratio_off": off.get("attention_ratio")}
    first = next(iter(configs))
    for mode in ("deterministic", "no-deterministic"):
        r = figures[f"{first}/{mode}"]
        if "plain_train_img_s" in r:  # both arms of the protocol, training only
            hours = (PROTOCOL_IMAGES_PER_ARM / r["plain_train_img_s"] + PROTOCOL_IMAGES_PER_ARM / r["train_img_s"]) / 3600
            figures[f"protocol_training_hours/{mode}"] = hours
    return figures


ACCELERATION_MODES = {"eager": [], "compile": ["--compile"], "cuda_graph": ["--cuda-graph"],
                      "compile+cuda_graph": ["--compile", "--cuda-graph"]}


def acceleration(device: str, tiny: bool) -> dict[str, Any]:
    """Train throughput of the harness step per mode; the warm-up (compile, capture) in its own figure."""
    configs = bench_configs(tiny, steps=(100, 30))
    modes = {"eager": []} if tiny or device != "cuda" else ACCELERATION_MODES
    figures: dict[str, Any] = {}
    for name, config in configs.items():
        for mode, flags in modes.items():
            done = harness("bench", *config, *flags, "--device", device, "--json", check=False)
            if done.returncode:  # one failed mode is recorded, the others still measured
                figures[f"{name}/{mode}"] = {"error": done.stderr[-2000:]}
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            figures[f"{name}/{mode}"] = {key: r[key] for key in (
                "train_img_s", "bare_train_img_s", "plain_train_img_s", "attention_ratio", "first_steps_seconds",
                "steady_step_seconds", "infer_img_s", "peak_mem_mb", "amp", "channels_last") if key in r}
            if name.startswith("resnet20") and "plain_train_img_s" in r:
                # both protocol arms at the SE arm's harness speed: an upper bound (the plain arm is faster)
                figures[f"{name}/{mode}"]["protocol_training_hours_upper"] = 2 * PROTOCOL_IMAGES_PER_ARM / r[
                    "train_img_s"] / 3600
    return figures


def fusion(device: str, tiny: bool) -> dict[str, Any]:
    """Fused / one-after-another train throughput per architecture and K (``harness bench --fuse K``)."""
    size, batch, steps, ks = (32, 8, 2, (2,)) if tiny else (150, 64, 30, (1, 2, 4, 8))
    arms = {"se_resnet20": "{name: se, reduction: 4}"} | ({} if tiny else {"resnet20": "none"})
    figures: dict[str, Any] = {}
    for arm, attention in arms.items():
        for k in ks:
            # deterministic kernels first (the default); should a fused kernel have none, the same without them
            for name, mode in ((f"{arm}/K{k}", "--deterministic"), (f"{arm}/K{k}/no-deterministic", "--no-deterministic")):
                try:
                    done = harness("bench", "--backbone", "resnet20", "--attention", attention, "--image-size",
                                   str(size), "--batch-size", str(batch), "--steps", str(steps), "--device", device,
                                   "--fuse", str(k), mode, "--json", *(["--threads", "1"] if tiny else []))
                    figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
                    break
                except subprocess.CalledProcessError as exc:  # e.g. out of memory at a large K: recorded, the rest run
                    figures[name] = {"error": str(exc), "stderr_tail": (exc.stderr or "")[-2000:]}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check"))
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: checks the script itself (CPU, tests)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pytest", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the CUDA-marked tests")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    study_file = args.out / "study.yaml"
    study_file.write_text(yaml.safe_dump(study(args.tiny, args.device), sort_keys=False))
    import torch

    report: dict[str, Any] = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "torch": torch.__version__, "device": args.device, "tiny": args.tiny,
                              "device_name": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    steps = {"determinism": lambda: determinism_checks(args.out, study_file, args.workers),
             "bench": lambda: bench(args.device, args.tiny),
             "acceleration": lambda: acceleration(args.device, args.tiny),
             "fusion": lambda: fusion(args.device, args.tiny)}
    if args.pytest:
        steps["pytest"] = lambda: _pytest()
    failed = False
    for name, step in steps.items():
        try:
            report[name] = step()
        except Exception as exc:  # recorded, and the other steps still run
            failed = True
            detail = getattr(exc, "stderr", "") or ""
            report[name] = {"error": f"{type(exc).__name__}: {exc}", "stderr_tail": str(detail)[-4000:]}
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))  # after every step
    identical = report.get("determinism", {}).get("identical", {})
    failed |= not all(all(files.values()) for files in identical.values())
    failed |= any("error" in figures for figures in report.get("acceleration", {}).values())
    print(json.dumps(report, indent=1, default=str))
    return 1 if failed else 0


def _pytest() -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           "tests/e2e/test_gpu.py", "tests/run/test_determinism.py", "tests/run/test_acceleration.py",
                           "tests/run/test_fusion.py"], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    return {"returncode": done.returncode, "tail": done.stdout[-3000:]}


if __name__ == "__main__":
    sys.exit(main())
