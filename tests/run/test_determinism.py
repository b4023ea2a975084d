"""training.deterministic, the cell's compute (device/precision) in the fingerprint, and what the report says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.errors import HarnessError
from harness.run import determinism
from harness.run.trainer import FoldInputs, FoldTrainer
from harness.study.loader import load_study
from harness.study.schema import AugmentSpec, TrainingSpec


@pytest.fixture
def torch_flags():  # type: ignore[no-untyped-def]
    """Restore torch's global determinism flags after a test changes them."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
             torch.backends.cudnn.deterministic)
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[1], saved[2]


def test_compute_names_the_trainers_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    assert determinism.compute_of(torch.device("cpu"), None) == "cpu/fp32"
    assert determinism.compute_of(torch.device("cpu"), True) == "cpu/fp32"  # amp is a GPU option here
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert determinism.compute_of(cuda, None) == "cuda/bf16" and determinism.amp_dtype(cuda, None) == torch.bfloat16
    assert determinism.compute_of(cuda, False) == "cuda/fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert determinism.compute_of(cuda, True) == "cuda/fp16"


def test_cpu_is_left_alone_and_cuda_gets_deterministic_kernels(torch_flags, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    torch.backends.cudnn.benchmark = True
    determinism.configure(True, torch.device("cpu"))
    assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
    monkeypatch.delenv(determinism.CUBLAS_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    determinism.configure(True, torch.device("cuda"))  # only flags: no GPU is touched
    assert os.environ[determinism.CUBLAS_ENV] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark
    determinism.configure(False, torch.device("cuda"))
    assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()


def test_prepare_environment_keeps_the_users_setting() -> None:
    env = {determinism.CUBLAS_ENV: ":16:8"}
    determinism.prepare_environment(env)
    assert env == {determinism.CUBLAS_ENV: ":16:8"}
    empty: dict[str, str] = {}
    determinism.prepare_environment(empty)
    assert empty == {determinism.CUBLAS_ENV: ":4096:8"}


def test_an_operation_without_a_deterministic_kernel_is_explained() -> None:
    with pytest.raises(HarnessError, match=r"arms\.se\.training\.deterministic: false"):
        with determinism.explained("se"):
            raise RuntimeError("adaptive_max_pool2d_backward_cuda does not have a deterministic implementation")
    with pytest.raises(RuntimeError, match="shape"), determinism.explained("se"):
        raise RuntimeError("shape mismatch")


def test_the_report_says_when_gpu_numbers_vary() -> None:
    det = {"compute": "cuda/bf16", "deterministic": True}
    assert determinism.describe({"device": "cpu", "compute": {"a": {"compute": "cpu/fp32", "deterministic": True}}}) == ""
    assert determinism.describe({"device": "cpu"}) == ""
    assert "deterministic kernels" in determinism.describe({"compute": {"a": det, "b": det}})
    mixed = determinism.describe({"compute": {"a": det, "b": {**det, "deterministic": False}}})
    assert determinism.VARIES in mixed and mixed.endswith("for b")
    assert "may vary" in determinism.describe({"device": "cuda"})  # an older GPU run: cuDNN autotuner was on


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_two_deterministic_trainings_on_the_gpu_give_identical_weights(torch_flags, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    from harness.models.build import build_model

    device = torch.device("cuda")
    determinism.configure(True, device)

    def train() -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = build_model(builtin_registry, "resnet20", "se", {"reduction": 4}, num_classes=3, in_chans=3,
                            image_size=32).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        generator = torch.Generator(device=device).manual_seed(1)
        for _ in range(5):
            x = torch.randn(32, 3, 32, 32, device=device, generator=generator)
            y = torch.randint(0, 3, (32,), device=device, generator=generator)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return [p.detach().clone() for p in model.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(train(), train(), strict=True))


def _dropout_trainer(cell: Path, device: torch.device) -> FoldTrainer:
    """A tiny fold trainer whose model draws random numbers on its device (dropout)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2)).to(device)
    x = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8, device=device)
    y = torch.arange(16, device=device) % 2
    stats = torch.tensor([0.5], device=device), torch.tensor([0.25], device=device)
    inputs = FoldInputs(x, y, x[:6], y[:6], x[:6], y[:6], *stats, in_chans=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return FoldTrainer(model, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1), TrainingSpec(batch_size=8),
                       AugmentSpec(), inputs, cell, seed=0, device=device, identity="t")


def test_a_checkpoint_without_the_gpu_random_state_still_resumes(tmp_path: Path) -> None:
    """Checkpoints written before the CUDA random state was saved (and every CPU one) resume as before."""
    trainer = _dropout_trainer(tmp_path, torch.device("cpu"))
    trainer._save(None)
    ckpt = torch.load(trainer.last_path, weights_only=True)
    assert ckpt["cuda_rng"].numel() == 0  # nothing to save on CPU
    del ckpt["cuda_rng"]
    torch.save(ckpt, trainer.last_path)
    assert _dropout_trainer(tmp_path, torch.device("cpu")).resume().startswith("resumed at epoch 1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_restores_the_gpu_random_state(tmp_path: Path) -> None:
    device = torch.device("cuda")
    trainer = _dropout_trainer(tmp_path, device)
    torch.rand(3, device=device)  # move the GPU stream on from the seed
    trainer._save(None)
    expected = torch.rand(5, device=device)
    torch.cuda.manual_seed(123)  # another process, another state
    _dropout_trainer(tmp_path, device).resume()
    assert torch.equal(torch.rand(5, device=device), expected)


def test_local_workers_get_a_gpu_each_round_robin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``run --workers 5`` on a faked 3-GPU machine: the 4 started workers take GPUs 1, 2, 0, 1 (this process
    keeps 0); every worker gets CUBLAS_WORKSPACE_CONFIG; one GPU or none leaves CUDA_VISIBLE_DEVICES alone."""
    import subprocess
    from types import SimpleNamespace

    from harness.cli.workers import spawn_workers

    started: list[dict[str, str]] = []

    class Started:
        def __init__(self, line: list[str], stdout: object, env: dict[str, str], **popen: object) -> None:
            started.append(env)

    monkeypatch.setattr(subprocess, "Popen", Started)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    plan = SimpleNamespace(source=tmp_path / "s.yaml", overrides=(), strict_plugins=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    workers = spawn_workers("run", plan, tmp_path, "sqlite:///x.db", 4)  # type: ignore[arg-type]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in started] == ["1", "2", "0", "1"]
    assert all(env[determinism.CUBLAS_ENV] for env in started) and len(workers) == 4
    assert determinism.worker_env(2, {"CUDA_VISIBLE_DEVICES": "4,6,7"})["CUDA_VISIBLE_DEVICES"] == "7"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert "CUDA_VISIBLE_DEVICES" not in determinism.worker_env(1, {})


def test_the_report_of_a_nondeterministic_gpu_run_says_its_numbers_vary(write_study, tmp_path: Path, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    """A real tiny CPU run whose run.json is then rewritten as a GPU run's: protocol line and answer box."""
    import json

    from harness.report.render import build_report_data
    from harness.run.runner import RunOptions, run_study

    run = tmp_path / "run"
    study = load_study(write_study({"training": {"epochs": 1}}, arms={"plain": {"backbone": "resnet20"}}))
    run_study(study, builtin_registry, RunOptions(run, quiet=True, report=None, stats=False))
    info = json.loads((run / "run.json").read_text())
    assert info["compute"] == {"plain": {"compute": "cpu/fp32", "deterministic": True}}
    cpu = build_report_data(run, insight=False)
    assert "GPU" not in cpu.protocol and not any("GPU" in s for s in cpu.answer.sentences)  # type: ignore[union-attr]
    info.update(device="cuda", compute={"plain": {"compute": "cuda/bf16", "deterministic": False}})
    (run / "run.json").write_text(json.dumps(info))
    gpu = build_report_data(run, insight=False)
    assert gpu.protocol.endswith(f"cuda/bf16; {determinism.VARIES}")
    assert determinism.VARIES in gpu.answer.question  # type: ignore[union-attr]
    assert any(s.startswith("Caution: GPU numbers vary") for s in gpu.answer.sentences)  # type: ignore[union-attr]
