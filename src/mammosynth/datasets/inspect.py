"""Class balance of a dataset: what a repository has, and what it lacks."""

from __future__ import annotations

from collections import Counter

from mammosynth.datasets.base import Dataset
from mammosynth.datasets.schema import CATEGORIES, DENSITIES, LATERALITIES, PATHOLOGIES, SPLITS, VIEWS

FIELDS = {
    "view": VIEWS,
    "laterality": LATERALITIES,
    "density": DENSITIES,
    "label": ("normal", "benign", "malignant", "unknown"),
    "finding": CATEGORIES,
    "pathology": PATHOLOGIES,
    "split": SPLITS,
}


def count_dataset(dataset: Dataset) -> dict[str, dict[str, int]]:
    """Counts per field; ``finding`` and ``pathology`` count findings, the rest count images.
    Every known value is listed (zero included) so gaps show; ``unknown`` counts missing values."""
    counts: dict[str, Counter] = {name: Counter() for name in FIELDS}
    for record in dataset.records:
        for name in ("view", "laterality", "density", "split"):
            counts[name][getattr(record, name) or "unknown"] += 1
        counts["label"][record.label] += 1
        for finding in record.findings:
            counts["finding"][finding.category] += 1
            counts["pathology"][finding.pathology] += 1
    table: dict[str, dict[str, int]] = {}
    for name, known in FIELDS.items():
        row = {value: counts[name].get(value, 0) for value in known}
        for value, n in counts[name].items():
            row.setdefault(value, n)
        table[name] = row
    table["images"] = {"total": len(dataset.records), "with_findings": sum(bool(r.findings) for r in dataset.records)}
    return table
