"""Autoencoder reconstruction quality on held-out real mammograms (run by hand).

    .venv/bin/python benchmarks/bench_autoencoder.py [--size 256] [--steps 3000] [--config cpu-128]

Prepares mini-MIAS (derived PNGs) and the CC images of ../shared/data at ``--size``, trains the latent
diffusion model's autoencoder stage on the train split (random 128² crops on CPU, whole images after),
and reports PSNR and SSIM of reconstructions of the held-out test split with data range 1.0 (images in
[0, 1]); writes a grid of originals over reconstructions.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mammosynth import api
from mammosynth.datasets.schema import iter_manifest
from mammosynth.io.images import read_image, write_png
from mammosynth.models.ldm import LatentDiffusion, LDMConfig
from mammosynth.training import load_module, open_checkpoint
from mammosynth.training.loop import make_grid

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MAPPINGS = Path(__file__).resolve().parents[1] / "examples" / "mappings"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--config", default="cpu-128")
    parser.add_argument("--work", type=Path, default=Path(tempfile.mkdtemp()))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = args.work
    prepared = []
    for name, mapping in (("mini-mias", "mini-mias-derived.yaml"), ("cc-cesm", "cc-cesm.yaml")):
        target = work / f"prepared-{name}"
        if not (target / "manifest.jsonl").is_file():
            api.prepare(DATA / name, target, size=args.size, mapping=MAPPINGS / mapping, salt="bench", overwrite=True)
        prepared.append(target)
    merged = work / "prepared"
    if not (merged / "manifest.jsonl").is_file():
        api._merge(prepared, merged)
    started = time.perf_counter()
    run = work / "run"
    settings = [
        f"model.image_size={args.size}",
        f"train.steps={args.steps}",
        f"train.ae_steps={args.steps}",
        f"train.ae_crop={args.crop}",
        "train.checkpoint_every=250",
        "train.sample_every=100000",
        f"train.adv_start={args.steps // 2}",
    ]
    api.train(merged, run, config=args.config, set=settings, resume=(run / "checkpoints").is_dir())
    train_seconds = time.perf_counter() - started
    checkpoint = open_checkpoint(run)
    model = LatentDiffusion(LDMConfig.from_dict(checkpoint.state["model"]))
    load_module(checkpoint, "ldm", model, prefer_ema=False)
    model.eval()
    records = [r for r in iter_manifest(merged) if r.split == "test"]
    psnr, ssim, tiles = [], [], []
    for record in records:
        image = read_image(merged / record.path).pixels.astype(np.float32)
        with torch.no_grad():
            recon = model.reconstruct(torch.from_numpy(image)[None, None])[0, 0].numpy()
        psnr.append(peak_signal_noise_ratio(image, recon, data_range=1.0))
        ssim.append(structural_similarity(image, recon, data_range=1.0))
        if len(tiles) < 12:
            tiles.append((image, recon))
    grid = make_grid(np.stack([t[0] for t in tiles] + [t[1] for t in tiles]), columns=len(tiles))
    result = {
        "size": args.size,
        "train_images": checkpoint.state["data"]["images"],
        "held_out_images": len(records),
        "steps": checkpoint.step,
        "crop": args.crop,
        "train_seconds": round(train_seconds, 1),
        "psnr_db_mean": round(float(np.mean(psnr)), 2),
        "psnr_db_median": round(float(np.median(psnr)), 2),
        "ssim_mean": round(float(np.mean(ssim)), 4),
        "ssim_median": round(float(np.median(ssim)), 4),
        "data_range": 1.0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    # the grid shows real mammograms: it goes to the work folder, never into the repository
    write_png(work / "reconstructions.png", grid, bits=8)
    print(f"grid of originals over reconstructions: {work / 'reconstructions.png'}")


if __name__ == "__main__":
    main()
