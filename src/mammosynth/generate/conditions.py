"""Per-image conditioning requests: from CLI flags (the same for N images) or a CSV (one row per image,
or a ``count`` column), plus a lesion region from a mask file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mammosynth import validate as check
from mammosynth.errors import InputError
from mammosynth.io.atomic import atomic_write
from mammosynth.io.images import read_mask
from mammosynth.models.conditioning import CONTINUOUS, FIELDS, conditions_from_record, validate_conditions

ROW_EXTRAS = ("count", "guidance")
CSV_COLUMNS = (*FIELDS, *CONTINUOUS, "lesion", *ROW_EXTRAS)


def condition_rows(n: int | None, flags: dict | None = None, table: str | Path | None = None) -> list[dict]:
    """A list of per-image requests ``{"conditions": {...}, "guidance": float | None}``.

    Example:
        >>> rows = condition_rows(2, {"view": "CC", "lesion": "benign-mass"})
        >>> len(rows), rows[0]["conditions"]["pathology"]
        (2, 'benign')
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    if table is None:
        if n is None or n < 1:
            raise InputError(None, "say how many images to generate (--n ≥ 1) or give a --conditions CSV")
        check.flag(n, "--n", lo=1, hi=check.MAX_IMAGES_PER_CALL)
        conditions = validate_conditions(flags, "command line")
        return [{"conditions": dict(conditions), "guidance": None} for _ in range(n)]
    table = Path(table)
    if not table.is_file():
        raise InputError(table, "conditions CSV not found")
    rows: list[dict] = []
    try:
        with open(table, newline="") as handle:
            reader = csv.DictReader(handle)
            unknown = [c for c in reader.fieldnames or [] if c not in CSV_COLUMNS]
            if unknown:
                raise InputError(table, f"unknown column {unknown[0]!r}; known: {', '.join(CSV_COLUMNS)}")
            for number, row in enumerate(reader, 2):
                where = f"{table}:{number}"
                merged = {**flags, **{k: v for k, v in row.items() if v not in (None, "") and k not in ROW_EXTRAS}}
                conditions = validate_conditions(merged, where)
                count = _number(row.get("count") or 1, int, where, "count")
                if not 1 <= count <= check.MAX_IMAGES_PER_CALL - len(rows):  # before any row is built
                    raise InputError(
                        where, f"count {count}: a table asks for 1 to {check.MAX_IMAGES_PER_CALL:,} images in all"
                    )
                guidance = _number(row["guidance"], float, where, "guidance") if row.get("guidance") else None
                rows += [{"conditions": dict(conditions), "guidance": guidance} for _ in range(count)]
    except UnicodeDecodeError:
        raise InputError(table, "not a text CSV file") from None
    if not rows:
        raise InputError(table, "no rows")
    if n is not None and n != len(rows):
        raise InputError(table, f"the CSV asks for {len(rows)} images but --n says {n}; give one or the other")
    return rows


def write_condition_table(records: list, path: str | Path, repeat: int = 1) -> Path:
    """A conditions CSV asking for ``repeat`` images per record, each with the record's view, laterality,
    density, BI-RADS and first finding (kind, pathology, centre, size): the synthetic counterpart of a real
    set, for a two-sample test in the same mix of conditions (only the records' labels are read, never
    their pixels).

    Example:
        >>> import tempfile
        >>> from mammosynth.datasets.schema import Record
        >>> record = Record(image_id="a", path="a.png", dataset="d", patient_key="p", view="MLO", density="B")
        >>> table = write_condition_table([record], Path(tempfile.mkdtemp()) / "c.csv", repeat=2)
        >>> [(r["conditions"]["view"], r["conditions"]["category"]) for r in condition_rows(None, table=table)]
        [('MLO', 'none'), ('MLO', 'none')]
    """
    rows = [conditions_from_record(record) for record in records for _ in range(repeat)]
    columns = [c for c in CSV_COLUMNS if any(c in row for row in rows)]
    with atomic_write(Path(path), "w") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def _number(value, kind, where: str, name: str):
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise InputError(where, f"{name} must be a number, got {value!r}") from None
    if number < 0 or (kind is int and number < 1):
        raise InputError(where, f"{name} out of range: {value!r}")
    return number


def region_from_mask(path: str | Path, size: int, spacing_mm: float | None) -> tuple[np.ndarray, dict]:
    """A lesion region mask (must be ``size`` × ``size``) and the lesion position/size conditions it implies."""
    mask = read_mask(path)
    if mask.shape != (size, size):
        raise InputError(path, f"mask is {mask.shape[1]}×{mask.shape[0]} but the model makes {size}×{size} images")
    if not mask.any():
        raise InputError(path, "mask is empty")
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    conditions = {"lesion_x": (cols[0] + cols[-1] + 1) / 2 / size, "lesion_y": (rows[0] + rows[-1] + 1) / 2 / size}
    if spacing_mm:
        conditions["lesion_size_mm"] = float(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) * spacing_mm)
    return mask, conditions


def region_from_conditions(conditions: dict, size: int, spacing_mm: float | None) -> np.ndarray | None:
    """A disc around the requested lesion position (radius: the lesion size, at least 1/8 of the image)."""
    if "lesion_x" not in conditions or "lesion_y" not in conditions:
        return None
    radius = size / 8
    if spacing_mm and "lesion_size_mm" in conditions:
        radius = max(radius, conditions["lesion_size_mm"] / spacing_mm)
    yy, xx = np.mgrid[:size, :size]
    dx, dy = xx + 0.5 - conditions["lesion_x"] * size, yy + 0.5 - conditions["lesion_y"] * size
    return dx**2 + dy**2 <= radius**2
