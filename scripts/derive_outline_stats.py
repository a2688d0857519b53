"""Summarise the fitted CC outline parameters of ../shared/data/cc-cesm/metadata.csv into package data.

The metadata's six numbers are in the publication's frame (:mod:`mammosynth.phantom.frame`: each image padded
to the largest of its finding class, y up, divided by the skin line's largest coordinate), which differs from
image to image. Each row is moved to the phantom's frame (the breast's bounding square, chest wall at x = 1,
y down) with its own image's frame (its norm from the publication's skin line, the square from the breast
mask ``prepare`` would draw), and its IoU with that mask is measured; then the phantom's sampler draws in
the frame it renders in. Only summary numbers (per class: count, min, max, median, mean, covariance, in both
frames) are written; no image and no per-image row leaves the data folder. Run: python scripts/derive_outline_stats.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from mammosynth.io import read_image
from mammosynth.phantom.fit import outline_iou
from mammosynth.phantom.frame import PUBLICATION_FRAMES_PX, breast_box, fit_publication
from mammosynth.phantom.params import Outline
from mammosynth.preprocess import breast_mask, chest_wall_side

NAMES = ["a", "b", "phi", "X0", "Y0", "Alpha_e"]
ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "cc-cesm"
TARGET = ROOT / "src" / "mammosynth" / "phantom" / "data" / "cc_outline_stats.json"


def summarise(values: np.ndarray) -> dict:
    return {
        "count": len(values),
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
        "median": np.median(values, 0).tolist(),
        "mean": values.mean(0).tolist(),
        "cov": np.cov(values, rowvar=False).tolist(),
    }


def to_phantom(row: dict) -> tuple[np.ndarray, float]:
    """One metadata row's outline in the phantom's frame, and its IoU with the image's breast mask."""
    pixels = read_image(SOURCE / row["file"]).pixels
    mask = breast_mask(pixels)
    if chest_wall_side(mask) == "right":
        mask, pixels = mask[:, ::-1], pixels[:, ::-1]
    original = (int(row["orig_height"]), int(row["orig_width"]))
    _, frame, _ = fit_publication(mask, PUBLICATION_FRAMES_PX[row["finding_class"]], pixels, original)
    outline = frame.phantom_outline(Outline(**{n: float(row[n]) for n in NAMES}))
    return np.array([getattr(outline, n) for n in NAMES]), outline_iou(outline, breast_box(mask))


def main() -> None:
    with open(SOURCE / "metadata.csv") as handle:
        rows = list(csv.DictReader(handle))
    converted = [to_phantom(row) for row in rows]
    phantom = np.array([values for values, _ in converted])
    ious = np.array([iou for _, iou in converted])
    publication = np.array([[float(r[n]) for n in NAMES] for r in rows])
    stats = {
        "names": NAMES,
        "source": "Banterle et al. 2025 fitted CC outlines (cc-cesm metadata.csv), moved to the phantom's frame",
        "frame": "phantom: the breast's bounding square, chest wall at x = 1, y down (see mammosynth.phantom.frame)",
        "iou_with_breast_mask": {"median": float(np.median(ious)), "p10": float(np.percentile(ious, 10))},
        "classes": {"all": summarise(phantom)},
        "publication_frame": {"all": summarise(publication)},
    }
    for name in ("normal", "benign", "malignant"):
        keep = np.array([r["finding_class"] == name for r in rows])
        stats["classes"][name] = summarise(phantom[keep])
        stats["publication_frame"][name] = summarise(publication[keep])
    TARGET.write_text(json.dumps(stats, indent=1))
    print(
        f"wrote {TARGET} from {len(rows)} rows; IoU of each outline with its breast mask: median "
        f"{np.median(ious):.3f}, 10th percentile {np.percentile(ious, 10):.3f}"
    )


if __name__ == "__main__":
    main()
