"""Which frame the cc-cesm metadata's outline parameters (a, b, phi, X0, Y0) live in: draw each image's
ellipse under a candidate convention and measure its overlap (IoU) with the breast mask ``prepare`` finds.

The publication's MATLAB (``breast_profile_parameters_extraction/Normal_Parameters.m`` of
cnr-isti-vclab/CC-Mammograms-Generation_GUI) flips left breasts (chest wall on the right), zero-pads every
image to the largest size (right-aligned, centred vertically), flips it upside down (y up), divides the
contour's coordinates by their largest value and fits an ellipse drawn as
``x = X0 + a cos(-phi) cos t - b sin(-phi) sin t``, ``y = Y0 + a sin(-phi) cos t + b cos(-phi) sin t``.
Whether "largest size" is per finding class or over the whole set, and the sign of phi, are what this
checks (issue 16, item 10). Run by hand:

    .venv/bin/python scripts/publication_frame_check.py ../shared/data/cc-cesm

Measured on the 122 shared images: padding over the whole set and rotation -phi, median IoU 0.91 (10th
percentile 0.73); per-class padding 0.67; +phi 0.82 (whole set) and 0.66 (per class).
"""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

import numpy as np
from skimage import measure

from mammosynth.io import read_image
from mammosynth.preprocess import breast_mask
from mammosynth.preprocess.resize import resize_mask


def overlap(row: dict, root: Path, rows_max: int, cols_max: int, sign: float, step: int = 4) -> float:
    """IoU of the metadata's ellipse (drawn in the candidate frame) with the breast mask, at the original size."""
    height, width = int(row["orig_height"]), int(row["orig_width"])
    mask = resize_mask(breast_mask(read_image(root / row["file"]).pixels), width, height)
    if row["laterality"] == "L":
        mask = mask[:, ::-1]
    row_offset, col_offset = rows_max // 2 - (height // 2 - 1), cols_max - width  # MATLAB's padding, 1-based
    contour = max(measure.find_contours(mask.astype(float), 0.5), key=len)
    x, y = contour[:, 1] + col_offset + 1, rows_max - (contour[:, 0] + row_offset + 1) + 1
    norm = max(x.max(), y.max())
    a, b, phi, x0, y0 = (float(row[k]) for k in ("a", "b", "phi", "X0", "Y0"))
    yy, xx = np.mgrid[0:height:step, 0:width:step]
    dx = (xx + col_offset + 1) / norm - x0
    dy = (rows_max - (yy + row_offset + 1) + 1) / norm - y0
    c, s = np.cos(sign * phi), np.sin(sign * phi)
    inside = ((dx * c + dy * s) / a) ** 2 + ((-dx * s + dy * c) / b) ** 2 < 1
    sampled = mask[::step, ::step]
    return float((inside & sampled).sum() / max((inside | sampled).sum(), 1))


def main(root: Path) -> None:
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classes: dict[str, list[dict]] = {}
    for row in rows:
        classes.setdefault(row["finding_class"], []).append(row)
    for sign, scope in itertools.product((-1.0, 1.0), ("whole set", "per class")):
        ious = []
        for members in classes.values():
            frame = rows if scope == "whole set" else members
            rows_max = max(int(r["orig_height"]) for r in frame)
            cols_max = max(int(r["orig_width"]) for r in frame)
            ious += [overlap(r, root, rows_max, cols_max, sign) for r in members]
        print(
            f"rotation {'-' if sign < 0 else '+'}phi, padding {scope}: n {len(ious)}, median IoU "
            f"{np.median(ious):.3f}, 10th percentile {np.percentile(ious, 10):.3f}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cc-cesm"))
