"""VinDr-Mammo: ``breast-level_annotations.csv`` + ``finding_annotations.csv`` + DICOMs at
``images/<study_id>/<image_id>.dicom``. Boxes are in the DICOM's pixel frame."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from mammosynth.datasets.base import Dataset, check_unique, read_csv, resolve_inside
from mammosynth.datasets.schema import Finding, Record
from mammosynth.datasets.vocab import (
    VINDR_CATEGORY,
    VINDR_DENSITY,
    map_values,
    normalise_laterality,
    normalise_view,
)
from mammosynth.errors import InputError
from mammosynth.io.pseudonym import pseudonymise, resolve_salt

BREAST_COLUMNS = (
    "study_id",
    "series_id",
    "image_id",
    "laterality",
    "view_position",
    "height",
    "width",
    "breast_birads",
    "breast_density",
    "split",
)
FINDING_COLUMNS = ("study_id", "image_id", "finding_categories", "finding_birads", "xmin", "ymin", "xmax", "ymax")
SPLITS = {"training": "train", "train": "train", "test": "test", "val": "val", "validation": "val"}


def _birads(value: str) -> str | None:
    value = value.upper().replace("BI-RADS", "").strip()
    return value or None


def _categories(value: str, where: str) -> list[str]:
    try:
        parsed = ast.literal_eval(value) if value.startswith("[") else [value]
    except (ValueError, SyntaxError):
        raise InputError(where, f"finding_categories {value!r} is not a list literal") from None
    return [str(v).strip() for v in parsed]


def load_vindr(root: str | Path, salt: str | None = None) -> Dataset:
    root = Path(root)
    salt = resolve_salt(salt)
    breast_csv = root / "breast-level_annotations.csv"
    breast_rows = read_csv(breast_csv, BREAST_COLUMNS)
    map_values(
        str(breast_csv),
        "breast_density",
        (r["breast_density"] for r in breast_rows if r["breast_density"]),
        VINDR_DENSITY,
    )
    map_values(str(breast_csv), "split", (r["split"] for r in breast_rows if r["split"]), SPLITS)
    check_unique((r["image_id"] for r in breast_rows), breast_csv)

    finding_csv = root / "finding_annotations.csv"
    findings: dict[str, list[Finding]] = {}
    if finding_csv.is_file():
        rows = read_csv(finding_csv, FINDING_COLUMNS)
        all_categories = [
            c for n, r in enumerate(rows, 2) for c in _categories(r["finding_categories"], f"{finding_csv}:{n}")
        ]
        map_values(
            str(finding_csv),
            "finding_categories",
            (c.lower() for c in all_categories if c.lower() != "no finding"),
            VINDR_CATEGORY,
        )
        for row in rows:
            categories = [
                c for c in _categories(row["finding_categories"], str(finding_csv)) if c.lower() != "no finding"
            ]
            if not categories:
                continue
            has_box = all(row.get(k) not in ("", None) for k in ("xmin", "ymin", "xmax", "ymax"))
            coords = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")] if has_box else []
            for category in categories:
                findings.setdefault(row["image_id"], []).append(
                    Finding(
                        category=VINDR_CATEGORY[category.lower()],
                        pathology="unknown",
                        birads=_birads(row["finding_birads"]),
                        geometry="box" if has_box else None,
                        coords=coords,
                        attributes={"source_category": category},
                    )
                )

    records, skipped = [], []
    for number, row in enumerate(breast_rows, 2):
        where = f"{breast_csv}:{number}"
        relative = f"images/{row['study_id']}/{row['image_id']}.dicom"
        image = resolve_inside(root, relative, where)
        if not image.is_file():
            skipped.append(relative)
            continue
        records.append(
            Record(
                image_id=row["image_id"],
                path=str(image.relative_to(root.resolve())),
                dataset="vindr-mammo",
                patient_key=pseudonymise(row["study_id"], salt, namespace="vindr"),
                study_key=pseudonymise(row["study_id"], salt, namespace="vindr-study", prefix="S"),
                view=normalise_view(row["view_position"]),
                laterality=normalise_laterality(row["laterality"]),
                density=VINDR_DENSITY.get(row["breast_density"]),
                birads=_birads(row["breast_birads"]),
                findings=[on_image(f, row["width"], row["height"]) for f in findings.get(row["image_id"], [])],
                split=SPLITS.get(row["split"]),
                width=int(float(row["width"])) if row["width"] else None,
                height=int(float(row["height"])) if row["height"] else None,
            ).validate(where, on_image=True)
        )
    return Dataset(root=root, name="vindr-mammo", records=records, skipped=skipped)


def on_image(finding: Finding, width: str, height: str) -> Finding:
    """A box clipped to the image (VinDr boxes drawn past the edge keep coordinates beyond it); one wholly
    off the image is left for ``Record.validate`` to refuse."""
    if finding.geometry != "box" or not width or not height:
        return finding
    w, h = float(width), float(height)
    x0, y0, x1, y1 = finding.coords
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        return finding
    return dataclasses.replace(finding, coords=[max(x0, 0.0), max(y0, 0.0), min(x1, w), min(y1, h)])
