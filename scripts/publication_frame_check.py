"""How well mammosynth's frame and ``fit`` reproduce the cc-cesm metadata's outline parameters (issue 16,
item 10): (1) each row's published outline moved to the phantom's frame and drawn there, against the breast
mask ``prepare`` finds (IoU); (2) ``fit`` in the publication's frame against the published numbers (median,
75th and 90th percentile of |Δ|). Run by hand:

    .venv/bin/python scripts/publication_frame_check.py ../shared/data/cc-cesm [STEP]

Each image is fitted in its finding class's frame (``PUBLICATION_FRAMES_PX``: the publication fitted each
class apart). The shared copies are shrunk to 512 px: their skin line is scaled back to the original size
(``original_px``) before the frame is applied.

Measured on the 122 shared images: see the README ("The publication's outline parameters").
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from mammosynth.io import read_image
from mammosynth.phantom.fit import outline_iou
from mammosynth.phantom.frame import PUBLICATION_FRAMES_PX, breast_box, fit_publication
from mammosynth.phantom.params import Outline
from mammosynth.preprocess import breast_mask, chest_wall_side

NAMES = ("a", "b", "phi", "X0", "Y0", "Alpha_e")


def main(root: Path, step: int = 1) -> None:
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[::step]
    deltas, ious, fit_ious = [], [], []
    for row in rows:
        pixels = read_image(root / row["file"]).pixels
        mask = breast_mask(pixels)
        if chest_wall_side(mask) == "right":
            mask, pixels = mask[:, ::-1], pixels[:, ::-1]
        original = (int(row["orig_height"]), int(row["orig_width"]))
        outline, frame, iou = fit_publication(mask, PUBLICATION_FRAMES_PX[row["finding_class"]], pixels, original)
        published = Outline(**{n: float(row[n]) for n in NAMES})
        ious.append(outline_iou(frame.phantom_outline(published), breast_box(mask)))
        fit_ious.append(iou)
        delta = np.abs([getattr(outline, n) - getattr(published, n) for n in NAMES])
        delta[5] = min(delta[5] % (2 * np.pi), 2 * np.pi - delta[5] % (2 * np.pi))  # an angle
        deltas.append(delta)
    print(f"n {len(rows)} images (every {step}), each in its class's frame")
    print(
        f"published outlines drawn in the phantom's frame: IoU median {np.median(ious):.3f}, 10th pct "
        f"{np.percentile(ious, 10):.3f}"
    )
    print(f"fit: IoU median {np.median(fit_ious):.3f}; |Δ| against the published numbers:")
    for i, name in enumerate(NAMES):
        column = np.array(deltas)[:, i]
        print(
            f"  {name:8s} median {np.median(column):.3f}  75th pct {np.percentile(column, 75):.3f}  "
            f"90th pct {np.percentile(column, 90):.3f}"
        )


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cc-cesm"),
        int(sys.argv[2]) if len(sys.argv) > 2 else 1,
    )
