"""benchmarks/gpu_check.py's CPU path: every step runs, and identical runs are found identical."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"

pytestmark = pytest.mark.slow  # five tiny harness runs and four benches in subprocesses: minutes on 2 cores


def test_the_gpu_check_runs_tiny_on_cpu_and_finds_identical_outputs(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--workers", "2", "--no-pytest",
                           "--out", str(tmp_path)], capture_output=True, text=True, check=False)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert done.returncode == 0, (done.stderr[-2000:], report)
    identical = report["determinism"]["identical"]
    assert set(identical) == {"second", "workers2", "killed_and_resumed"}
    assert all(all(files.values()) for files in identical.values()) and report["determinism"]["kill_happened_mid_study"]
    bench = report["bench"]
    assert bench["resnet20_se_32/deterministic"]["deterministic"] is True
    assert bench["resnet20_se_32/no-deterministic"]["deterministic"] is False
    assert bench["resnet20_se_32/cost"]["train_slowdown"] > 0 and bench["protocol_training_hours/deterministic"] > 0
    fused = report["fusion"]["se_resnet20/K2"]
    assert fused["cells"] == 2 and fused["fused_img_s"] > 0 and fused["fusion_speedup"] > 0
    assert report["device"] == "cpu" and report["torch"]
    eager = report["acceleration"]["resnet20_se_32/eager"]  # CPU: eager only (compile and CUDA graphs: on the GPU)
    assert eager["train_img_s"] > 0 and eager["first_steps_seconds"] > 0 and set(report["acceleration"]) == {
        "resnet20_se_32/eager"}
