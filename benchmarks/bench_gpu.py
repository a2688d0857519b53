"""Training and sampling speed per family on the device at hand, and the share of its bf16 peak (run by hand).

    .venv/bin/python benchmarks/bench_gpu.py WORK [--sizes 256 512] [--families gan ldm translation upscale]
        [--config gpu] [--steps 20] [--samples 16] [--device auto] [--peak-tflops N] [--out results/gpu.json]

For each size and family: the ``gpu-<size>`` preset (``--config gpu``; or a preset name used at every size)
with its precision, channels-last and fused AdamW settings, trained on a few phantom images prepared at that
size. ``train_images_per_s`` times ``--steps`` optimiser steps after 3 warm-up steps, data already in memory
(the DataLoader's speed is benchmarks/bench_data.py's); the LDM is timed in its diffusion stage (the long
one). ``train_flops_per_image`` is counted by ``torch.utils.flop_counter`` over one step (forward and
backward); ``share_of_bf16_peak`` = achieved FLOP/s ÷ the device's dense bf16 peak (``--peak-tflops``, or
the published figure for H100/H200 989, A100 312, L40S 362; none for a CPU). ``sample_images_per_s`` draws
``--samples`` images (30 DDIM steps for the LDM; an upscale stage refines ``--samples`` images of its input
size); ``sample_flops_per_image`` is counted on the first (warm-up) image. On 2 CPU cores it runs at
``--sizes 32 --config tiny`` (the test suite does) to keep the script working.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mammosynth import api
from mammosynth.generate.pipeline import load_pipeline, load_stage
from mammosynth.models.conditioning import validate_conditions
from mammosynth.training import Trainer, load_config, task_class
from mammosynth.training.data import PreparedImages
from mammosynth.training.device import pick_device

PEAKS_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}
QUIET = ["train.checkpoint_every=1000000000", "train.sample_every=1000000000", "train.log_every=1000000000"]


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAKS_TFLOPS.items() if k in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dataset(work: Path, size: int) -> Path:
    prepared = work / f"prepared-{size}"
    if not (prepared / "manifest.jsonl").exists():
        api.phantom(work / f"raw-{size}", n=12, size=size, lesion="malignant-mass", overwrite=True)
        api.prepare(work / f"raw-{size}", prepared, size=size, overwrite=True)
    return prepared


def measure(family: str, preset: str, prepared: Path, run: Path, args, device: torch.device) -> dict:
    cfg = load_config(family, preset, [*QUIET, *args.set])
    task = task_class(family)(cfg["model"], cfg["train"], device)
    data = PreparedImages(prepared, cfg["model"].image_size, split=None, labels=task.uses_labels)
    trainer = Trainer(task, data, run, cfg)
    first = cfg["train"].ae_steps if family == "ldm" else 0  # the diffusion stage
    batches = [trainer._batches(first + k) for k in range(2)]
    for k in range(3):
        trainer.train_step(first + k, batches[k % 2])
    sync(device)
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(first + 3, batches[0])
    images_per_step = cfg["train"].batch_size * cfg["train"].accumulate
    sync(device)
    started = time.perf_counter()
    for k in range(args.steps):
        trainer.train_step(first + 4 + k, batches[k % 2])
    sync(device)
    train_s = time.perf_counter() - started
    trainer.step = first + 4 + args.steps
    run.mkdir(parents=True, exist_ok=True)
    trainer.save()
    flops_per_image = counter.get_total_flops() / images_per_step
    train_rate = args.steps * images_per_step / train_s
    n = args.samples
    if family == "upscale":
        stage = load_stage(run, str(device))
        low = np.random.default_rng(0).random((n, stage.input_size, stage.input_size), dtype=np.float32)
        with FlopCounterMode(display=False) as sample_counter:
            stage.refine(low[:1], [0])
        sync(device)
        started = time.perf_counter()
        stage.refine(low, list(range(n)))
    else:
        pipeline = load_pipeline(str(run), str(device))
        conditions = [validate_conditions({}) for _ in range(n)]
        labels = np.stack([data.example(i % len(data)).labels for i in range(n)]) if task.uses_labels else None
        options = {"sampler": "ddim", "steps": 30, "labels": labels}
        with FlopCounterMode(display=False) as sample_counter:
            pipeline.sample(conditions[:1], [0], **{**options, "labels": None if labels is None else labels[:1]})
        sync(device)
        started = time.perf_counter()
        pipeline.sample(conditions, list(range(n)), **options)
    sync(device)
    sample_rate = n / (time.perf_counter() - started)
    peak = peak_tflops(device, args.peak_tflops)
    return {
        "family": family,
        "size": cfg["model"].image_size,
        "config": preset,
        "precision": cfg["train"].precision,
        "channels_last": cfg["train"].channels_last,
        "batch": images_per_step,
        "train_images_per_s": round(train_rate, 2),
        "train_flops_per_image": flops_per_image,
        "achieved_tflops": round(flops_per_image * train_rate / 1e12, 3),
        "share_of_bf16_peak": round(flops_per_image * train_rate / (peak * 1e12), 4) if peak else None,
        "sample_images_per_s": round(sample_rate, 2),
        "sample_flops_per_image": sample_counter.get_total_flops(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--families", nargs="+", default=["gan", "ldm", "translation", "upscale"])
    parser.add_argument("--config", default="gpu", help="gpu (gpu-<size>) or a preset name")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. train.batch_size=2")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gpu.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    rows = []
    for size in args.sizes:
        preset = f"gpu-{size}" if args.config == "gpu" else args.config
        for family in args.families:
            cfg_size = load_config(family, preset, args.set)["model"].image_size
            prepared = dataset(args.work, max(64, cfg_size))  # prepare's smallest size; resized on reading
            row = measure(family, preset, prepared, args.work / f"run-{family}-{size}", args, device)
            print(json.dumps(row), flush=True)
            rows.append(row)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    result = {"device": name, "torch": torch.__version__, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
