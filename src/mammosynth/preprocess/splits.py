"""Patient-level train/val/test splits, stratified by each patient's worst label."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from mammosynth.datasets.schema import Record

LABEL_ORDER = ("malignant", "benign", "unknown", "normal")


def assign_splits(
    records: list[Record], fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0
) -> list[Record]:
    """Set ``split`` on every record: all images of a patient share one split (no patient on two
    sides); within each label stratum patients are ordered by a seeded hash and cut by ``fractions``.

    Example:
        >>> from mammosynth.datasets.schema import Record
        >>> recs = [Record(image_id=str(i), path="", dataset="d", patient_key=f"p{i // 2}") for i in range(20)]
        >>> recs = assign_splits(recs)
        >>> all(recs[i].split == recs[i + 1].split for i in range(0, 20, 2))
        True
    """
    patients: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        patients[record.patient_key].append(record)
    strata: dict[str, list[str]] = defaultdict(list)
    for key, items in patients.items():
        labels = {r.label for r in items}
        strata[next(lab for lab in LABEL_ORDER if lab in labels)].append(key)
    total = sum(fractions)
    for keys in strata.values():
        keys.sort(key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
        n = len(keys)
        n_train = round(n * fractions[0] / total)
        n_val = round(n * fractions[1] / total)
        if n >= 3 and fractions[2] > 0 and n_train + n_val >= n:
            n_train = max(1, n - max(1, n_val) - 1)
        for i, key in enumerate(keys):
            split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            for record in patients[key]:
                record.split = split
    return records


def shared_patients(records: list[Record]) -> int:
    """How many patients have images in more than one split (a source's own splits can leak a patient).

    Example:
        >>> from mammosynth.datasets.schema import Record
        >>> recs = [Record(image_id=s, path="", dataset="d", patient_key="p", split=s) for s in ("train", "test")]
        >>> shared_patients(recs)
        1
    """
    splits: dict[str, set] = defaultdict(set)
    for record in records:
        splits[record.patient_key].add(record.split)
    return sum(len(s) > 1 for s in splits.values())
