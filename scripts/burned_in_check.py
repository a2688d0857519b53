"""What the burned-in label removal (issue 16, item 3) cuts on the shared images: per folder, how many
images lose a part of their breast mask to it and how much, and a sheet of every such image for a person to
look at (the source image dimmed, what is removed in red; local only, the sheet shows real images). cc-cesm
images carry no labels, so anything cut there is a false positive. Run by hand:

    .venv/bin/python scripts/burned_in_check.py ../shared/data benchmarks/results/burned-in
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mammosynth.io import read_image
from mammosynth.preprocess import breast_mask, chest_wall_side
from mammosynth.preprocess.burned_in import burned_in_mask
from mammosynth.preprocess.resize import resize_image, resize_mask

FOLDERS = {"mini-mias": "images/*.png", "ddsm-tissue-seg": "images/*.png", "cc-cesm": "images/*.png"}
TILE = 160


def tile(pixels: np.ndarray, breast: np.ndarray, removed: np.ndarray) -> np.ndarray:
    height, width = pixels.shape
    scale = TILE / max(height, width)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    grey = resize_image(pixels, w, h)
    cut = resize_mask(removed, w, h)
    kept = resize_mask(breast & ~removed, w, h)
    rgb = np.zeros((TILE, TILE, 3), np.float32)
    rgb[:h, :w] = (0.35 + 0.65 * kept)[..., None] * grey[..., None]
    rgb[:h, :w][cut] = (1.0, 0.0, 0.0)
    return rgb


def main(shared: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for folder, pattern in FOLDERS.items():
        files = sorted((shared / folder).glob(pattern))
        cut_shares, tiles = [], []
        for path in files:
            pixels = read_image(path).pixels
            breast = breast_mask(pixels)
            if breast is None:
                continue
            removed = burned_in_mask(pixels, breast, chest_wall_side(breast))
            share = float(removed.sum() / breast.sum())
            cut_shares.append(share)
            if removed.any():
                tiles.append(tile(pixels, breast, removed))
                print(f"{folder}/{path.name}: {100 * share:.2f} % of the mask removed", flush=True)
        shares = np.array(cut_shares)
        summary[folder] = {
            "images": len(shares),
            "with_removal": int((shares > 0).sum()),
            "median_removed_share_where_cut": float(np.median(shares[shares > 0])) if (shares > 0).any() else 0.0,
            "max_removed_share": float(shares.max()) if shares.size else 0.0,
        }
        if tiles:
            columns = 8
            rows = [
                np.concatenate(
                    tiles[i : i + columns] + [np.zeros_like(tiles[0])] * (columns - len(tiles[i : i + columns])), 1
                )
                for i in range(0, len(tiles), columns)
            ]
            sheet = (255 * np.clip(np.concatenate(rows, 0), 0, 1)).astype(np.uint8)
            Image.fromarray(sheet).save(out / f"burned-in-{folder}.png")
    print(json.dumps(summary, indent=1))
    (out / "burned-in.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
