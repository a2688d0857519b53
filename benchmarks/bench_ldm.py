"""Benchmark the latent diffusion model on this machine's CPU cores (run by hand).

    .venv/bin/python benchmarks/bench_ldm.py [--threads 2] [--out benchmarks/results/ldm-cpu.json]

Measures the fp32 matmul peak (2048² torch.mm), then for the cpu-128 architecture at 128² and 256²:
UNet training images/s (diffusion stage: frozen encoder + UNet forward/backward + AdamW) with the FLOPs of
one step counted by torch.utils.flop_counter, so achieved FLOP/s can be set against the matmul peak;
autoencoder training images/s; sampling images/s with DDIM-50 and classifier-free guidance (two UNet
passes per step); fp32 against bf16 autocast; peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from mammosynth.models.conditioning import encode_conditions
from mammosynth.models.ldm import LatentDiffusion
from mammosynth.models.sampling import denoise
from mammosynth.training import load_config


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def time_step(step, steps: int, batch: int) -> dict:
    """Warm up, count one step's FLOPs, then time ``steps`` steps."""
    step()
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {
        "images_per_second": round(batch / seconds, 2),
        "flops_per_step": flops,
        "achieved_gflops": round(flops / seconds / 1e9, 1),
    }


def conditions(batch: int) -> dict:
    rows = [{"view": "MLO", "density": "C", "lesion": "malignant-mass", "lesion_x": 0.4, "lesion_y": 0.5}] * batch
    encoded = encode_conditions(rows)
    encoded["spatial"] = torch.zeros(batch, 3, 8, 8)
    return encoded


def bench_unet_training(model: LatentDiffusion, size: int, batch: int, steps: int, dtype) -> dict:
    images = torch.rand(batch, 1, size, size)
    params = [*model.unet.parameters(), *model.conditions.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scheduler = model.scheduler("ddpm")
    cond = conditions(batch)
    cond["spatial"] = torch.rand(batch, 3, size, size).round()

    def step() -> None:
        with torch.no_grad():
            z0 = model.encode(images)
        noise = torch.randn_like(z0)
        t = torch.randint(0, 1000, (batch,))
        with torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext():
            out = model.predict(scheduler.add_noise(z0, noise, t), t, cond)
        loss = torch.nn.functional.mse_loss(out.float(), noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_step(step, steps, batch)


def bench_autoencoder_training(model: LatentDiffusion, size: int, batch: int, steps: int) -> dict:
    images = torch.rand(batch, 1, size, size)
    optimizer = torch.optim.AdamW(model.autoencoder.parameters(), lr=1e-4)

    def step() -> None:
        recon = model.autoencoder(images * 2 - 1)[0]
        loss = (recon - (images * 2 - 1)).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_step(step, steps, batch)


def bench_sampling(model: LatentDiffusion, batch: int, steps: int = 50, guidance: float = 3.0) -> dict:
    size = model.config.latent_size
    noise = torch.randn(batch, model.config.latent_channels, size, size)
    cond = conditions(batch)
    cond["spatial"] = torch.zeros(batch, 3, model.config.image_size, model.config.image_size)
    start = time.perf_counter()
    latents = denoise(model, noise, cond, "ddim", steps, guidance)
    with torch.no_grad():
        model.decode(latents)
    seconds = time.perf_counter() - start
    return {"images_per_second": round(batch / seconds, 3), "seconds_per_batch": round(seconds, 2), "batch": batch}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config", default="cpu-128")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    peak = matmul_peak()
    results = {
        "threads": args.threads,
        "torch": torch.__version__,
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "config": args.config,
        "sizes": {},
    }
    print(f"matmul fp32 peak: {peak / 1e9:.1f} GFLOP/s on {args.threads} threads", flush=True)
    base = load_config("ldm", args.config)["model"]
    for size in (128, 256):
        config = type(base).from_dict({**base.to_dict(), "image_size": size})
        model = LatentDiffusion(config)
        entry: dict = {}
        for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            model.train()
            result = bench_unet_training(model, size, batch=16 if size == 128 else 8, steps=4, dtype=dtype)
            result["fraction_of_matmul_peak"] = round(result["achieved_gflops"] * 1e9 / peak, 3)
            entry[f"unet_training_{label}"] = result
            print(size, label, "unet training", result, flush=True)
        entry["autoencoder_training_fp32"] = bench_autoencoder_training(model, size, batch=8, steps=3)
        print(size, "autoencoder training", entry["autoencoder_training_fp32"], flush=True)
        model.eval()
        entry["sampling_ddim50_cfg3"] = bench_sampling(model, batch=8)
        print(size, "sampling DDIM-50 + guidance", entry["sampling_ddim50_cfg3"], flush=True)
        results["sizes"][str(size)] = entry
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
