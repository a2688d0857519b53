"""Summarise the fitted CC outline parameters of ../shared/data/cc-cesm/metadata.csv into package data.

Only summary numbers (per class: count, min, max, median, mean, covariance) are written; no image and no
per-image row leaves the data folder. Run: python scripts/derive_outline_stats.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

NAMES = ["a", "b", "phi", "X0", "Y0", "Alpha_e"]
ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "cc-cesm" / "metadata.csv"
TARGET = ROOT / "src" / "mammosynth" / "phantom" / "data" / "cc_outline_stats.json"


def summarise(rows: list[dict]) -> dict:
    values = np.array([[float(r[n]) for n in NAMES] for r in rows])
    return {
        "count": len(rows),
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
        "median": np.median(values, 0).tolist(),
        "mean": values.mean(0).tolist(),
        "cov": np.cov(values, rowvar=False).tolist(),
    }


def main() -> None:
    with open(SOURCE) as handle:
        rows = list(csv.DictReader(handle))
    stats = {
        "names": NAMES,
        "source": "Banterle et al. 2025 fitted CC outlines (cc-cesm metadata.csv)",
        "classes": {"all": summarise(rows)},
    }
    for name in ("normal", "benign", "malignant"):
        subset = [r for r in rows if r["finding_class"] == name]
        stats["classes"][name] = summarise(subset)
    TARGET.write_text(json.dumps(stats, indent=1))
    print(f"wrote {TARGET} from {len(rows)} rows")


if __name__ == "__main__":
    main()
