"""Expanding a repository, measured (run by hand).

    .venv/bin/python benchmarks/bench_expand.py [--add 10000] [--size 256] [--config gan/gpu-256]
        [--work /tmp/expand-bench] [--device auto] [--ray-workers N] [--out benchmarks/results/expand.json]

A 200-image phantom dataset at ``--size`` (prepared, 60 % normal), a generator of ``--config`` trained for
a few steps (speed does not depend on how well it is trained), then ``expand`` adding ``--add`` images
(a YAML spec of equal additions per lesion class), copy filter on. Reported: images/s of the expansion as
a whole (generation + copy filter + PNG writing + manifests), wall time, and peak RSS measured at a
tenth of the run and at the end (memory flat in N means the two are close). ``--ray-workers N`` runs the
expansion on a local Ray cluster of N CPUs (RSS is then the driver's only).
"""

from __future__ import annotations

import argparse
import json
import resource
import threading
import time
from pathlib import Path

from mammosynth import api
from mammosynth.phantom import make_phantom_dataset


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--add", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--config", default="gan/gpu-256")
    parser.add_argument("--work", type=Path, default=Path("/tmp/expand-bench"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/expand.json"))
    parser.add_argument("--ray-workers", type=int, default=0, help="a local Ray cluster of N CPUs (0: one process)")
    args = parser.parse_args()
    family, config = args.config.split("/")
    work = args.work
    if not (work / "prepared" / "manifest.jsonl").is_file():
        parts = []
        for k, (lesion, n) in enumerate(
            (("none", 120), ("benign-mass", 30), ("malignant-mass", 30), ("calcification", 20))
        ):
            make_phantom_dataset(
                work / lesion, n=n, size=args.size * 2, seed=0, lesion=lesion, start=1000 * k, overwrite=True
            )
            parts.append(work / lesion)
        api._merge(parts, work / "all")
        api.prepare(work / "all", work / "prepared", size=args.size, overwrite=True)
    if not (work / "run" / "checkpoints").is_dir():
        api.train(
            work / "prepared",
            work / "run",
            model=family,
            config=config,
            set=["train.steps=2", "train.checkpoint_every=2", "train.sample_every=1000"],
            overwrite=True,
            device=args.device,
        )
    spec = work / "spec.yaml"
    per = args.add // 4
    spec.write_text(
        "by: [lesion]\ncells:\n"
        + "".join(
            f"  - {{lesion: {kind}, add: {per + (args.add - 4 * per if k == 0 else 0)}}}\n"
            for k, kind in enumerate(("none", "benign-mass", "malignant-mass", "calcification"))
        )
    )
    samples: dict[str, float] = {}

    def progress(done: int, total: int) -> None:
        if done >= total // 10 and "rss_mb_at_10pct" not in samples:
            samples["rss_mb_at_10pct"] = round(rss_mb())
            samples["seconds_at_10pct"] = round(time.perf_counter() - started, 1)

    stop = threading.Event()
    peak = {"mb": 0.0}

    def watch() -> None:
        while not stop.wait(0.5):
            peak["mb"] = max(peak["mb"], rss_mb())

    threading.Thread(target=watch, daemon=True).start()
    started = time.perf_counter()
    result = api.expand(
        work / "prepared",
        work / (f"expanded-ray{args.ray_workers}" if args.ray_workers else "expanded"),
        work / "run",
        target=str(spec),
        overwrite=True,
        batch_size=32,
        device=args.device,
        ray="local" if args.ray_workers else None,
        ray_workers=args.ray_workers or None,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    stop.set()
    summary = {
        "added": result["synthetic_images"],
        "size": args.size,
        "config": args.config,
        "ray_workers": args.ray_workers,
        "seconds": round(seconds, 1),
        "images_per_second_overall": round(result["synthetic_images"] / seconds, 2),
        "images_per_second_generation_loop": result["images_per_second"],
        **samples,
        "rss_mb_end": round(rss_mb()),
        "rss_mb_peak": round(peak["mb"]),
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rejected": result["rejected"],
    }
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
