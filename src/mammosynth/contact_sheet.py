"""Contact sheet: a grid of a dataset's images with their masks outlined and their conditions as titles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mammosynth.datasets.base import Dataset
from mammosynth.io.atomic import atomic_write
from mammosynth.io.images import read_image


def contact_sheet(dataset: Dataset, path: str | Path, max_images: int = 24, columns: int = 6) -> Path:
    """Write a PNG grid of up to ``max_images`` images: breast (green), pectoral (yellow), lesion (red) and
    removed burned-in label (magenta) outlines from the prepared masks, and view · laterality · density ·
    label as titles."""
    records = dataset.records[:max_images]
    rows = max(1, int(np.ceil(len(records) / columns)))
    # matplotlib's object API: no pyplot, so the user's backend and figure state are left alone
    fig = Figure(figsize=(2.2 * columns, 2.4 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, record in zip(axes.ravel(), records, strict=False):
        pixels = read_image(dataset.root / record.path).pixels
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=1)
        burned_in = record.extra.get("prepare", {}).get("burned_in", {}).get("mask")
        overlays = [(record.extra.get("breast_mask"), "lime"), (record.extra.get("pectoral_mask"), "yellow")]
        overlays.append((burned_in, "magenta"))
        overlays += [(f.mask_path, "red") for f in record.findings]
        for mask_path, colour in overlays:
            if mask_path and (dataset.root / mask_path).is_file():
                mask = read_image(dataset.root / mask_path).pixels > 0.5
                if mask.any() and mask.shape == pixels.shape:
                    ax.contour(mask, levels=[0.5], colors=colour, linewidths=0.8)
        ax.set_title(
            f"{record.view or '?'} {record.laterality or '?'} {record.density or '?'} {record.label}", fontsize=8
        )
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    return path
