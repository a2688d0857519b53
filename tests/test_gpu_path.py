"""The GPU path, checked by configuration on the CPU: channels-last weights and inputs (same losses as the
default layout), torch.compile of the generators only (discriminators take R1's double backward), fused
AdamW on CUDA only, and benchmarks/bench_gpu.py end to end at a tiny size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from factories import prepared_phantoms
from mammosynth import api
from mammosynth.training import Trainer, load_config, task_class
from mammosynth.training.data import PreparedImages
from mammosynth.training.loop import adamw_options

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepared_phantoms(tmp_path_factory.mktemp("gpu"), ("none", "malignant-mass"), n=4, size=64, seed=3)


def trainer(family: str, data, tmp_path, settings: list[str]) -> Trainer:
    cfg = load_config(family, "tiny", settings)
    task = task_class(family)(cfg["model"], cfg["train"], torch.device("cpu"))
    return Trainer(task, PreparedImages(data, cfg["model"].image_size), tmp_path / "run", cfg)


def test_compile_wraps_the_generators_and_channels_last_the_weights(data, tmp_path):
    t = trainer("ldm", data, tmp_path, ["train.channels_last=true", "train.compile=true"])
    model = t.task.modules["ldm"]
    assert model.unet._compiled_call_impl is not None and model.conditions._compiled_call_impl is not None
    assert model.autoencoder._compiled_call_impl is None  # frozen in the diffusion stage, trained eagerly before
    assert t.task.modules["discriminator"]._compiled_call_impl is None
    convs = [p for p in model.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    plain = trainer("ldm", data, tmp_path, [])
    assert plain.task.modules["ldm"].unet._compiled_call_impl is None
    assert not all(
        p.is_contiguous(memory_format=torch.channels_last)
        for p in plain.task.modules["ldm"].parameters()
        if p.dim() == 4 and p.shape[-1] > 1
    )


def test_fused_adamw_is_asked_for_on_cuda_only():
    cfg = load_config("gan", "tiny")["train"]
    assert adamw_options(cfg, torch.device("cuda")) == {"fused": True}
    assert adamw_options(cfg, torch.device("cpu")) == {}
    cfg.fused_adamw = False
    assert adamw_options(cfg, torch.device("cuda")) == {}


@pytest.mark.parametrize("family", ["ldm", "upscale"])
def test_channels_last_trains_what_the_default_layout_trains(data, tmp_path, family):
    common = ["train.steps=3", "train.log_every=1", "train.precision=fp32", "train.batch_size=4"]
    if family == "ldm":
        common.append("train.ae_steps=1")
    api.train(data, tmp_path / "a", model=family, config="tiny", set=common)
    api.train(data, tmp_path / "b", model=family, config="tiny", set=[*common, "train.channels_last=true"])
    a, b = ([json.loads(line) for line in (tmp_path / r / "losses.jsonl").read_text().splitlines()] for r in "ab")
    assert len(a) == len(b) == 3
    for x, y in zip(a, b, strict=True):
        assert all(abs(x[k] - y[k]) <= 1e-4 * max(1.0, abs(x[k])) for k in x), (x, y)


def test_bench_gpu_runs_on_the_cpu_at_a_tiny_size(tmp_path):
    out = tmp_path / "gpu.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), str(tmp_path / "work"), "--sizes", "32"]
    command += ["--families", "gan", "upscale", "--config", "tiny", "--steps", "2", "--samples", "2", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert {(r["family"], r["size"]) for r in rows} == {("gan", 32), ("upscale", 32)}
    for row in rows:
        assert row["train_images_per_s"] > 0 and row["sample_images_per_s"] > 0 and row["train_flops_per_image"] > 0
        assert 0 < row["sample_flops_per_image"] < row["train_flops_per_image"]  # one forward, no backward
        assert row["share_of_bf16_peak"] is None  # no published peak for a CPU
