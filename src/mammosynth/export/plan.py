"""How many synthetic images of which condition an expansion makes: read a dataset's balance over chosen
fields (view, laterality, density, lesion kind), then plan the additions for a target — ``balanced``
(every cell up to the largest), ``N-per-class`` (every cell up to N) or a YAML spec — and give every
planned image its conditions and an index. Image ``i``'s conditions depend only on ``(seed, i)`` and the
plan, so the set does not depend on how many workers make it.

A YAML spec holds ``by`` (fields, optional) and one of ``balanced: true``, ``per_class: N`` or ``cells``:
a list of ``{field: value, ..., add: N}`` or ``{..., total: N}``::

    by: [view, lesion]
    cells:
      - {view: CC, lesion: malignant-mass, total: 120}
      - {view: MLO, lesion: calcification, add: 40}
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from mammosynth.datasets.schema import DENSITIES, LATERALITIES, Record
from mammosynth.errors import InputError
from mammosynth.models.verifier import kind_of

PLAN_FIELDS: dict[str, tuple[str, ...]] = {
    "view": ("CC", "MLO"),
    "laterality": LATERALITIES,
    "density": DENSITIES,
    "lesion": ("none", "benign-mass", "malignant-mass", "calcification"),
}
UNKNOWN = "unknown"


def lesion_of(record: Record) -> str:
    """The record's lesion kind in the generators' vocabulary (first finding; ``none`` when normal)."""
    if not record.findings:
        return "none"
    kind = kind_of(record.findings[0].category, record.findings[0].pathology)
    if kind == "other":
        return UNKNOWN  # distortions and asymmetries have no generator condition
    return kind if kind != "background" else "none"


def cell_of(record: Record, by: tuple[str, ...]) -> tuple[str, ...]:
    """The record's value for each field in ``by`` (``unknown`` where it has none)."""
    values = []
    for name in by:
        value = lesion_of(record) if name == "lesion" else getattr(record, name)
        values.append(value if value in PLAN_FIELDS[name] else UNKNOWN)
    return tuple(values)


@dataclass
class Plan:
    """Per cell: the real count and the synthetic images to add; ``images``: one condition dict per index."""

    by: tuple[str, ...]
    target: str
    seed: int
    cells: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    ignored_unknown: int = 0

    @property
    def total(self) -> int:
        return len(self.images)

    def table(self) -> list[list]:
        """Rows for display: cell values, real, add, after."""
        return [[*c["cell"].values(), c["real"], c["add"], c["real"] + c["add"]] for c in self.cells]

    def to_dict(self) -> dict:
        return {
            "by": list(self.by),
            "target": self.target,
            "seed": self.seed,
            "cells": self.cells,
            "images": self.images,
            "ignored_unknown": self.ignored_unknown,
        }


def _check_by(by: tuple[str, ...] | list[str], where: str) -> tuple[str, ...]:
    by = tuple(by)
    if not by:
        raise InputError(where, "balance by at least one field")
    for name in by:
        if name not in PLAN_FIELDS:
            raise InputError(where, f"cannot balance by {name!r}; fields: {', '.join(PLAN_FIELDS)}")
    if len(set(by)) != len(by):
        raise InputError(where, "a field is named twice")
    return by


def read_target(target: str, by: tuple[str, ...] | None) -> tuple[str, dict, tuple[str, ...]]:
    """``(kind, spec, by)`` for a target string: ``balanced``, ``N-per-class`` or a YAML file's path."""
    if target == "balanced":
        return "balanced", {}, _check_by(by or ("lesion",), "--by")
    match = re.fullmatch(r"(\d+)-per-class", target)
    if match:
        if int(match.group(1)) < 1:
            raise InputError("--target", "N-per-class needs N ≥ 1")
        return "per_class", {"per_class": int(match.group(1))}, _check_by(by or ("lesion",), "--by")
    path = Path(target)
    if not path.is_file():
        raise InputError(target, "target is neither 'balanced', 'N-per-class' nor an existing YAML file")
    try:
        spec = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a YAML file ({str(exc).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise InputError(path, "the target spec must be a mapping (by / balanced / per_class / cells)")
    unknown = set(spec) - {"by", "balanced", "per_class", "cells"}
    if unknown:
        raise InputError(path, f"unknown key {sorted(unknown)[0]!r}; known: by, balanced, per_class, cells")
    spec_by = spec.get("by")
    if spec_by is not None and by is not None and tuple(spec_by) != tuple(by):
        raise InputError(path, f"the spec balances by {spec_by} but --by says {list(by)}; give one")
    chosen = _check_by(tuple(spec_by or by or ("lesion",)), str(path))
    kinds = [k for k in ("balanced", "per_class", "cells") if spec.get(k) not in (None, False)]
    if len(kinds) != 1:
        raise InputError(path, "give exactly one of balanced: true, per_class: N or cells: [...]")
    if kinds[0] == "per_class" and (not isinstance(spec["per_class"], int) or spec["per_class"] < 1):
        raise InputError(path, "per_class must be a whole number ≥ 1")
    return kinds[0], spec, chosen


def plan_expansion(
    records: list[Record], target: str, by: tuple[str, ...] | None = None, seed: int = 0, max_images: int = 1_000_000
) -> Plan:
    """Plan an expansion of ``records`` (see the module docstring); raises on impossible targets.

    Example:
        >>> from mammosynth.datasets.schema import Finding
        >>> normal = [Record(image_id=str(i), path="", dataset="d", patient_key=str(i)) for i in range(5)]
        >>> lesion = [Record(image_id="m", path="", dataset="d", patient_key="m",
        ...                  findings=[Finding(category="mass", pathology="malignant")])]
        >>> plan = plan_expansion(normal + lesion, "balanced")
        >>> [(c["cell"]["lesion"], c["real"], c["add"]) for c in plan.cells]
        [('malignant-mass', 1, 4), ('none', 5, 0)]
    """
    kind, spec, by = read_target(target, by)
    where = target
    members: dict[tuple, list[Record]] = {}
    ignored = 0
    for record in records:
        cell = cell_of(record, by)
        if UNKNOWN in cell:
            ignored += 1
            continue
        members.setdefault(cell, []).append(record)
    if not members:
        raise InputError(where, f"no image of the dataset has a known {' / '.join(by)}; cannot balance by it")
    counts = Counter({cell: len(group) for cell, group in members.items()})
    adds: dict[tuple, int] = {}
    if kind == "balanced":
        top = max(counts.values())
        adds = {cell: top - n for cell, n in counts.items()}
    elif kind == "per_class":
        adds = {cell: max(0, spec["per_class"] - n) for cell, n in counts.items()}
    else:
        if not isinstance(spec["cells"], list) or not spec["cells"]:
            raise InputError(where, "cells must be a non-empty list")
        adds = dict.fromkeys(counts, 0)
        for number, entry in enumerate(spec["cells"], 1):
            if not isinstance(entry, dict):
                raise InputError(where, f"cell {number} is not a mapping")
            values = {k: v for k, v in entry.items() if k not in ("add", "total")}
            if set(values) != set(by):
                raise InputError(where, f"cell {number} must name exactly {', '.join(by)}")
            cell = tuple(str(values[name]) for name in by)
            for name, value in zip(by, cell, strict=True):
                if value not in PLAN_FIELDS[name]:
                    raise InputError(
                        where, f"cell {number}: unknown {name} {value!r}; known: {', '.join(PLAN_FIELDS[name])}"
                    )
            if ("add" in entry) == ("total" in entry):
                raise InputError(where, f"cell {number}: give add or total")
            amount = entry.get("add", entry.get("total"))
            if not isinstance(amount, int) or amount < 0:
                raise InputError(where, f"cell {number}: add/total must be a whole number ≥ 0")
            have = counts.get(cell, 0)
            if "total" in entry and amount < have:
                raise InputError(
                    where,
                    f"cell {number} asks for {amount} images in all but the dataset already "
                    f"has {have}; an expansion only adds",
                )
            adds[cell] = amount - have if "total" in entry else amount
    total = sum(adds.values())
    if total > max_images:
        raise InputError(where, f"the target needs {total} synthetic images, over the limit of {max_images}")
    plan = Plan(by=by, target=target, seed=seed, ignored_unknown=ignored)
    for cell in sorted(adds, key=lambda c: tuple(c)):
        plan.cells.append({"cell": dict(zip(by, cell, strict=True)), "real": counts.get(cell, 0), "add": adds[cell]})
    for entry in plan.cells:
        cell = tuple(entry["cell"].values())
        group = members.get(cell, [])
        for _ in range(entry["add"]):
            index = len(plan.images)
            conditions = dict(entry["cell"])
            if group:  # the other fields as a real image of this cell has them (drawn from (seed, index))
                donor = group[int(np.random.default_rng([seed, index]).integers(len(group)))]
                for name in ("view", "laterality", "density"):
                    value = getattr(donor, name)
                    if name not in conditions and value in PLAN_FIELDS[name]:
                        conditions[name] = value
            plan.images.append(conditions)
    return plan
