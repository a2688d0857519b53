"""The thesis run, timed (run by hand): 128² images, batch 8, 5000 steps (1000 images × 40 epochs).

    .venv/bin/python benchmarks/bench_gan.py PREPARED_128 [--steps 5000] [--reference-steps 30]

Times, on the same machine in the same run, (1) a plain PyTorch DCGAN with 64 base channels (the
reference the thesis used; a few steps, projected to the full run) and (2) mammosynth's conditional GAN
(cpu-128 config) trained for the whole run through ``mammosynth train``; reports the ratio, GAN sampling
images/s and peak RSS. Then trains the plain DCGAN for the same wall time and compares quality: a grid
(real / ours / DCGAN, ``RUN/compare-real-ours-dcgan.png``) and the gap between the first five statistical
moments of real and generated images (Banterle et al.'s test; 0 = same medians).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mammosynth import api
from mammosynth.generate.pipeline import GANPipeline
from mammosynth.io.images import write_png
from mammosynth.training.data import PreparedImages
from mammosynth.training.loop import make_grid


def dcgan(ngf: int = 64, nz: int = 100) -> tuple[nn.Module, nn.Module]:
    """The textbook DCGAN (Radford et al.) at 128²: transposed convolutions, batch norm, BCE."""
    widths = [ngf * 16, ngf * 8, ngf * 4, ngf * 2, ngf]
    g: list[nn.Module] = [nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    for a, b in itertools.pairwise(widths):
        g += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
    g += [nn.ConvTranspose2d(widths[-1], 1, 4, 2, 1, bias=False), nn.Tanh()]
    d: list[nn.Module] = [nn.Conv2d(1, ngf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
    for a, b in itertools.pairwise(widths[::-1]):
        d += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
    d += [nn.Conv2d(widths[0], 1, 4, 1, 0, bias=False)]
    return nn.Sequential(*g), nn.Sequential(*d)


def time_dcgan(
    data: PreparedImages, steps: int, batch: int = 8, seconds: float | None = None, keep: list | None = None
) -> float:
    """Images/s of a plain DCGAN over ``steps`` steps (or as many as fit in ``seconds``); with ``keep`` the
    trained generator is appended to it."""
    torch.manual_seed(0)
    g, d = dcgan()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch), torch.zeros(batch)

    def step(i: int) -> None:
        real = data.batch([(i * batch + k) % len(data) for k in range(batch)])["image"] * 2 - 1
        fake = g(torch.randn(batch, 100, 1, 1))
        loss_d = bce(d(real).view(-1), ones) + bce(d(fake.detach()).view(-1), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(d(fake).view(-1), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    step(0)
    start = time.perf_counter()
    done = 0
    while (done < steps) if seconds is None else (time.perf_counter() - start < seconds):
        done += 1
        step(done)
    if keep is not None:
        keep.append(g.eval())
    return batch * done / (time.perf_counter() - start)


def moments(images: np.ndarray) -> np.ndarray:
    """Mean, std, skewness, kurtosis and 5th standardised moment of each image's pixels (Banterle et al.)."""
    x = images.reshape(len(images), -1).astype(np.float64)
    mean, std = x.mean(1), x.std(1) + 1e-12
    z = (x - mean[:, None]) / std[:, None]
    return np.stack([mean, std, (z**3).mean(1), (z**4).mean(1), (z**5).mean(1)], axis=1)


def moment_gap(real: np.ndarray, fake: np.ndarray) -> float:
    """Mean over the five moments of |median(fake) − median(real)| / IQR(real): 0 = same distribution."""
    r, f = moments(real), moments(fake)
    iqr = np.percentile(r, 75, axis=0) - np.percentile(r, 25, axis=0) + 1e-12
    return float(np.mean(np.abs(np.median(f, 0) - np.median(r, 0)) / iqr))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("prepared", type=Path)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--reference-steps", type=int, default=30)
    parser.add_argument("--run", type=Path, default=Path(tempfile.mkdtemp()) / "gan")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    data = PreparedImages(args.prepared, 128)
    reference = time_dcgan(data, args.reference_steps)
    print(f"plain DCGAN (64 base channels): {reference:.1f} img/s → {args.steps * 8 / reference / 60:.0f} min")
    started = time.perf_counter()
    result = api.train(
        args.prepared, args.run, model="gan", config="cpu-128", set=[f"train.steps={args.steps}"], overwrite=True
    )
    seconds = time.perf_counter() - started
    pipeline = GANPipeline(str(args.run))
    batch = data.batch(list(range(min(64, len(data)))))
    conditions = [data.example(i).conditions for i in range(len(batch["indices"]))]
    start = time.perf_counter()
    ours = pipeline.sample(conditions, list(range(len(conditions))))
    sampling = len(conditions) / (time.perf_counter() - start)
    kept: list = []
    dcgan_rate = time_dcgan(data, 0, seconds=seconds, keep=kept)  # the plain DCGAN for the same wall time
    with torch.no_grad():
        theirs = ((kept[0](torch.randn(len(conditions), 100, 1, 1)) + 1) / 2)[:, 0].numpy()
    real = batch["image"][:, 0].numpy()
    grid = make_grid(np.concatenate([real[:8], ours[:8], theirs[:8]]))
    write_png(args.run / "compare-real-ours-dcgan.png", grid, bits=8)
    summary = {
        "steps": args.steps,
        "batch": 8,
        "images_seen": args.steps * 8,
        "train_images": len(data),
        "mammosynth_gan_minutes": round(seconds / 60, 2),
        "mammosynth_gan_images_per_second": result["images_per_second"],
        "dcgan_images_per_second": round(reference, 2),
        "dcgan_projected_minutes": round(args.steps * 8 / reference / 60, 1),
        "speedup": round(result["images_per_second"] / reference, 2),
        "gan_sampling_images_per_second": round(sampling, 1),
        "dcgan_equal_time_steps": round(dcgan_rate * seconds / 8),
        "moment_gap_ours": round(moment_gap(real, ours), 3),
        "moment_gap_dcgan_equal_time": round(moment_gap(real, theirs), 3),
        "grid": str(args.run / "compare-real-ours-dcgan.png"),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "run": str(args.run),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
