"""How well mammosynth's frame and ``fit`` reproduce the cc-cesm metadata's outline parameters (issue 16,
item 10): (1) each row's published outline moved to the phantom's frame and drawn there, against the breast
mask ``prepare`` finds (IoU); (2) ``fit`` in the publication's frame (padded to the whole set's largest
image) against the published numbers (median and 75th percentile of |Δ|). Run by hand:

    .venv/bin/python scripts/publication_frame_check.py ../shared/data/cc-cesm [STEP]

Measured on the 122 shared images: see the README ("The publication's outline parameters").
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from mammosynth.io import read_image
from mammosynth.phantom.fit import outline_iou
from mammosynth.phantom.frame import breast_box, fit_publication, publication_frame
from mammosynth.phantom.params import Outline
from mammosynth.preprocess import breast_mask, chest_wall_side
from mammosynth.preprocess.resize import resize_mask

NAMES = ("a", "b", "phi", "X0", "Y0", "Alpha_e")


def main(root: Path, step: int = 1) -> None:
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    frame_px = (max(int(r["orig_height"]) for r in rows), max(int(r["orig_width"]) for r in rows))
    ious, fit_ious, deltas = [], [], []
    for row in rows[::step]:
        height, width = int(row["orig_height"]), int(row["orig_width"])
        mask = resize_mask(breast_mask(read_image(root / row["file"]).pixels), width, height)
        if chest_wall_side(mask) == "right":
            mask = mask[:, ::-1]
        published = Outline(**{n: float(row[n]) for n in NAMES})
        frame = publication_frame(mask, frame_px)
        ious.append(outline_iou(frame.phantom_outline(published), breast_box(mask)))
        fitted, _, iou = fit_publication(mask, frame_px)
        fit_ious.append(iou)
        delta = np.abs([getattr(fitted, n) - getattr(published, n) for n in NAMES])
        delta[5] = min(delta[5] % (2 * np.pi), 2 * np.pi - delta[5] % (2 * np.pi))  # an angle
        deltas.append(delta)
    print(f"n {len(ious)} images (every {step}), frame {frame_px[0]}×{frame_px[1]} px")
    print(
        f"published outlines drawn in the phantom's frame: IoU median {np.median(ious):.3f}, 10th pct "
        f"{np.percentile(ious, 10):.3f}"
    )
    print(f"fit: IoU median {np.median(fit_ious):.3f}; |Δ| against the published numbers:")
    for name, median, p75 in zip(NAMES, np.median(deltas, 0), np.percentile(deltas, 75, 0), strict=True):
        print(f"  {name:8s} median {median:.3f}  75th pct {p75:.3f}")


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cc-cesm"),
        int(sys.argv[2]) if len(sys.argv) > 2 else 1,
    )
