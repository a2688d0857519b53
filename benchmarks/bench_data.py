"""Streaming training data, measured (run by hand; about 10 min on 2 cores).

    .venv/bin/python benchmarks/bench_data.py WORK [--images 2000] [--scale 10] [--out results/data.json]

Makes ``--images`` phantom mammograms at 256 px (``mammosynth phantom`` + ``prepare``), and a large dataset of
``--images × --scale`` records by listing each prepared image ``--scale`` times under new ids (the pack and the
reader treat them as distinct images; only the phantom rendering is saved). Then, reading the train split as
the trainer does (BatchOrder → StepSampler → DataLoader, batch 32, nothing trained):

- **throughput**: images/s delivered at 256² and 512² (the 512 pack resamples the 256 px images: the bytes
  read per image are those of a 512 px dataset) from a pack with 0/2/4 workers, and from the PNGs without a
  cache; the pack's pages are dropped from the OS cache first (``posix_fadvise DONTNEED``), so the first
  epoch reads from disk;
- **peak memory** (proportional set size of the trainer process + its workers, sampled every 50 ms) over one
  epoch of the small and the large dataset at 256²: from a pack with 2 workers against the in-RAM cache of
  decoded PNGs (the default without a pack).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

from mammosynth import api
from mammosynth.training.data import BatchOrder, PreparedImages, StepSampler, loader

BATCH = 32


def rss_mb(pid: int) -> float:
    """Proportional set size of ``pid`` and its children (MB): a page shared by the trainer and its forked
    workers (the libraries, the manifest parsed before the fork) counts once, not once per process."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class PeakRSS:
    def __enter__(self):
        self.peak, self.stop = 0.0, False
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, rss_mb(os.getpid()))
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.stop = True
        self.thread.join()


def drop_cache(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def read_epochs(data: PreparedImages, workers: int, steps: int) -> tuple[float, int]:
    """Seconds to deliver ``steps`` batches of BATCH images as the trainer reads them."""
    order = BatchOrder(len(data), BATCH, 1, seed=0)
    sampler = StepSampler(order, 0, steps)
    started = time.perf_counter()
    if workers == 0:
        for indices in sampler:
            data.batch(indices)
    else:
        for _ in loader(data, sampler, workers):
            pass
    return time.perf_counter() - started, steps * BATCH


def enlarge(small: Path, large: Path, scale: int) -> None:
    """``small``'s records listed ``scale`` times under new ids (same pixel files, linked)."""
    large.mkdir(parents=True, exist_ok=True)
    for name in ("images", "masks"):
        if not (large / name).exists():
            (large / name).symlink_to(small / name)
    lines = (small / "manifest.jsonl").read_text().splitlines()
    with open(large / "manifest.jsonl", "w") as out:
        for copy in range(scale):
            for line in lines:
                record = json.loads(line)
                record["image_id"] = f"{record['image_id']}x{copy}"
                record["patient_key"] = f"{record.get('patient_key')}x{copy}"
                out.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30, help="batches per throughput reading")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data.json")
    args = parser.parse_args()
    work = args.work
    small, large = work / "small", work / "large"
    if not (small / "manifest.jsonl").exists():
        started = time.perf_counter()
        api.phantom(work / "raw", n=args.images, size=256, overwrite=True)
        api.prepare(work / "raw", small, size=256)
        print(f"made {args.images} phantoms in {time.perf_counter() - started:.0f} s", flush=True)
    enlarge(small, large, args.scale)
    result: dict = {"batch": BATCH, "cpu_count": os.cpu_count(), "throughput": [], "rss": []}
    for size in (256, 512):
        started = time.perf_counter()
        pack = api.pack(small, size=size, workers=2)
        print(f"packed {pack['images']} at {size}: {pack['bytes'] / 1e6:.0f} MB, {time.perf_counter() - started:.0f} s")
        for source in ("pack", "png"):
            for workers in (0, 2, 4):
                data = PreparedImages(small, size, cache=False, use_pack=source == "pack")
                drop_cache(small)
                seconds, images = read_epochs(data, workers, args.steps)
                row = {"size": size, "source": source, "workers": workers, "images_per_s": round(images / seconds, 1)}
                print(row, flush=True)
                result["throughput"].append(row)
    for name, folder in (("small", small), ("large", large)):
        if name == "large":
            started = time.perf_counter()
            pack = api.pack(large, size=256, workers=2)
            print(
                f"packed {pack['images']} at 256: {pack['bytes'] / 1e6:.0f} MB, {time.perf_counter() - started:.0f} s"
            )
        for source, workers in (("pack", 2), ("png-cached", 0)):
            data = PreparedImages(folder, 256, use_pack=source == "pack")
            steps = len(data) // BATCH
            with PeakRSS() as peak:
                seconds, images = read_epochs(data, workers, steps)
            row = {
                "dataset_images": len(data),
                "source": source,
                "workers": workers,
                "epoch_images": images,
                "epoch_s": round(seconds, 1),
                "peak_pss_mb": round(peak.peak),
            }
            print(row, flush=True)
            result["rss"].append(row)
            del data
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
