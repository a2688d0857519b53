"""VinDr-Mammo: ``breast-level_annotations.csv`` + ``finding_annotations.csv`` + DICOMs at
``images/<study_id>/<image_id>.dicom``, or ``.png`` (the common conversions, possibly resized). Boxes are in
the DICOM's pixel frame; for a resized PNG they are scaled to its own."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from mammosynth.datasets.base import Dataset, check_unique, read_csv, rejecting, resolve_inside
from mammosynth.datasets.schema import Finding, Record
from mammosynth.datasets.vocab import (
    VINDR_CATEGORY,
    VINDR_DENSITY,
    map_values,
    normalise_laterality,
    normalise_view,
)
from mammosynth.errors import InputError
from mammosynth.io.images import image_size
from mammosynth.io.pseudonym import pseudonymise, resolve_salt

IMAGE_SUFFIXES = (".dicom", ".dcm", ".png")
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


def load_vindr(root: str | Path, salt: str | None = None, skip_bad: bool = False) -> Dataset:
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

    records, skipped, bad = [], [], [] if skip_bad else None
    for number, row in enumerate(breast_rows, 2):
        where = f"{breast_csv}:{number}"
        # the PhysioNet download holds .dicom files; its PNG conversions (Kaggle) keep the layout
        candidates = [f"images/{row['study_id']}/{row['image_id']}{suffix}" for suffix in IMAGE_SUFFIXES]
        found = [p for p in (resolve_inside(root, c, where) for c in candidates) if p.is_file()]
        if not found:
            skipped.append(candidates[0])
            continue
        image = found[0]
        width, height = int(float(row["width"] or 0)) or None, int(float(row["height"] or 0)) or None
        boxes = [on_image(f, width, height) for f in findings.get(row["image_id"], [])]
        if image.suffix == ".png":  # a conversion may be resized: the boxes move to the PNG's frame
            size = image_size(image)
            if width and height and size != (width, height):
                boxes = [rescaled(f, size[0] / width, size[1] / height) for f in boxes]
            width, height = size
        with rejecting(bad):
            records.append(
                Record(
                    image_id=row["image_id"],
                    path=str(image.relative_to(root.resolve())),
                    dataset="vindr-mammo",
                    patient_key=pseudonymise(row["study_id"], salt, namespace="vindr"),
                    study_key=pseudonymise(row["study_id"], salt, namespace="vindr-study", prefix="S"),
                    view=normalise_view(row["view_position"], where),
                    laterality=normalise_laterality(row["laterality"]),
                    density=VINDR_DENSITY.get(row["breast_density"]),
                    birads=_birads(row["breast_birads"]),
                    findings=boxes,
                    split=SPLITS.get(row["split"]),
                    width=width,
                    height=height,
                ).validate(where, on_image=True)
            )
    return Dataset(root=root, name="vindr-mammo", records=records, skipped=skipped, bad_annotations=bad or [])


def rescaled(finding: Finding, sx: float, sy: float) -> Finding:
    """A box in a resized copy of its image (x scaled by ``sx``, y by ``sy``)."""
    if finding.geometry != "box":
        return finding
    x0, y0, x1, y1 = finding.coords
    return dataclasses.replace(finding, coords=[x0 * sx, y0 * sy, x1 * sx, y1 * sy])


def on_image(finding: Finding, width: int | None, height: int | None) -> Finding:
    """A box clipped to the image (VinDr boxes drawn past the edge keep coordinates beyond it); one wholly
    off the image is left for ``Record.validate`` to refuse."""
    if finding.geometry != "box" or not width or not height:
        return finding
    w, h = float(width), float(height)
    x0, y0, x1, y1 = finding.coords
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        return finding
    return dataclasses.replace(finding, coords=[max(x0, 0.0), max(y0, 0.0), min(x1, w), min(y1, h)])
