"""``harness bench``: real (tiny) timed steps; checks what is reported, never how fast it was."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.cli.main import main

TINY = ["--backbone", "resnet20", "--image-size", "16", "--batch-size", "4", "--steps", "5", "--device", "cpu"]


def _bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict, str]:
    assert main(["bench", *TINY, *args, "--json"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_bench_reports_harness_bare_and_plain_backbone(capsys: pytest.CaptureFixture[str]) -> None:
    result, _ = _bench(capsys, "--attention", "{name: se, reduction: 4}")
    for key in ("train_img_s", "bare_train_img_s", "plain_train_img_s", "infer_img_s", "peak_mem_mb"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert math.isfinite(result["overhead_ratio"]) and math.isfinite(result["attention_ratio"])
    assert 0 < result["data_share"] < 1
    assert (result["device"], result["amp"], result["steps"]) == ("cpu", "off", 5)
    assert result["attention_options"] == {"reduction": 4}


def test_bench_without_attention_has_no_plain_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    result, _ = _bench(capsys)
    assert "attention_ratio" not in result and result["attention"] == "none"
    assert result["cuda_graph"] is False and result["compile"] is False
    assert 0 < result["steady_step_seconds"] and 0 < result["first_steps_seconds"]  # warm-up timed apart


def test_bench_cuda_graph_is_refused_off_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *TINY, "--cuda-graph", "--json"]) == 2
    assert "training.cuda_graph: true needs a CUDA device" in capsys.readouterr().err


def test_bench_profile_names_the_fused_se_operators(capsys: pytest.CaptureFixture[str]) -> None:
    _, profile = _bench(capsys, "--attention", "{name: se, reduction: 4}", "--profile", "1")
    assert "aten::convolution_backward" in profile
    assert "_ScaleBackward" in profile and "_SqueezeBackward" in profile


def test_bench_data_reports_the_pipeline_share(write_study, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study: Path = write_study({"training": {"epochs": 3}}, arms={"plain": {"backbone": "resnet20", "attention": "none"}})
    assert main(["bench", "data", str(study), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["arm"] for row in rows] == ["plain"]
    assert rows[0]["epochs_measured"] == 2 * 2  # epochs after the first, in each of 2 folds
    assert 0 < rows[0]["data_share"] < 1


def test_bench_data_on_a_one_epoch_study_says_nothing_was_measured(write_study, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """Old code printed "data preparation = nan % of training time" and, with --json, NaN (not JSON)."""
    study: Path = write_study({"training": {"epochs": 1}}, arms={"plain": {"backbone": "resnet20", "attention": "none"}})
    assert main(["bench", "data", str(study), "--json"]) == 0

    def no_nan(constant: str) -> None:
        raise AssertionError(f"{constant} in bench data's JSON")

    row = json.loads(capsys.readouterr().out, parse_constant=no_nan)
    assert (row["epochs_measured"], row["data_share"]) == (0, None)
    assert main(["bench", "data", str(study)]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out and "not measured" in out and "training.epochs=2" in out


def test_bench_fuse_times_k_cells_fused_and_one_after_another(capsys: pytest.CaptureFixture[str]) -> None:
    result, _ = _bench(capsys, "--attention", "{name: se, reduction: 4}", "--fuse", "2")
    assert (result["cells"], result["steps_per_cell"], result["attention"]) == (2, 5, "se")
    for key in ("sequential_img_s", "fused_img_s", "fusion_speedup", "peak_mem_mb"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert main(["bench", *TINY, "--fuse", "2"]) == 0
    assert "2 cells" in capsys.readouterr().out


def test_bench_fuse_refuses_what_it_does_not_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *TINY, "--fuse", "2", "--augment"]) == 2
    assert "drop --augment" in capsys.readouterr().err
