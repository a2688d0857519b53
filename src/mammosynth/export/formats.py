"""Output formats of an expanded dataset, beside its ``manifest.jsonl``: a flat table (CSV and parquet) in
the record schema, DICOM files clearly marked synthetic, and the VinDr-Mammo layout (CSVs + DICOMs) that
the VinDr adapter — and the user's own VinDr pipeline — reads unchanged."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from mammosynth.datasets.schema import Record
from mammosynth.io.atomic import atomic_write
from mammosynth.io.dicom import write_dicom
from mammosynth.io.images import read_image, read_mask

COLUMNS = (
    "image_id",
    "path",
    "dataset",
    "synthetic",
    "patient_key",
    "study_key",
    "view",
    "laterality",
    "density",
    "birads",
    "label",
    "split",
    "spacing_mm",
    "width",
    "height",
    "findings",
    "finding_category",
    "finding_pathology",
    "finding_mask",
    "seed",
    "model_id",
    "conditions",
    "provenance",
)


def table_row(record: Record) -> dict:
    """One flat row of a record (findings and provenance as JSON text)."""
    provenance = record.extra.get("provenance", {}) if isinstance(record.extra, dict) else {}
    first = record.findings[0] if record.findings else None
    return {
        "image_id": record.image_id,
        "path": record.path,
        "dataset": record.dataset,
        "synthetic": bool(record.extra.get("synthetic", False)),
        "patient_key": record.patient_key,
        "study_key": record.study_key,
        "view": record.view,
        "laterality": record.laterality,
        "density": record.density,
        "birads": record.birads,
        "label": record.label,
        "split": record.split,
        "spacing_mm": record.spacing_mm,
        "width": record.width,
        "height": record.height,
        "findings": json.dumps([f.__dict__ for f in record.findings]),
        "finding_category": first.category if first else None,
        "finding_pathology": first.pathology if first else None,
        "finding_mask": first.mask_path if first else None,
        "seed": provenance.get("seed"),
        "model_id": provenance.get("model_id"),
        "conditions": json.dumps(provenance.get("conditions")) if provenance else None,
        "provenance": json.dumps(provenance) if provenance else None,
    }


def write_tables(out: Path, records: list[Record]) -> dict:
    """``manifest.csv`` and ``manifest.parquet`` (when pyarrow is installed) with :data:`COLUMNS`."""
    rows = [table_row(r) for r in records]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out / "manifest.csv", "w") as handle:
        handle.write(text.getvalue())
    written = {"csv": "manifest.csv"}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        written["parquet"] = None
        return written
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                (
                    name,
                    pa.bool_()
                    if name == "synthetic"
                    else pa.float64()
                    if name == "spacing_mm"
                    else pa.int64()
                    if name in ("width", "height", "seed")
                    else pa.string(),
                )
                for name in COLUMNS
            ]
        ),
    )
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    with atomic_write(out / "manifest.parquet", "wb") as handle:
        handle.write(buffer.getvalue().to_pybytes())
    written["parquet"] = "manifest.parquet"
    return written


def write_dicom_set(out: Path, records: list[Record], family: str) -> dict:
    """Every synthetic image as ``dicom/<image_id>.dcm``: DERIVED, "SYNTHETIC" in its descriptions,
    mammosynth as contributing equipment, burned-in annotation NO, new UIDs and a synthetic patient only."""
    written = 0
    for record in records:
        target = out / "dicom" / f"{record.image_id}.dcm"
        if target.is_file():
            continue  # resumed: already written atomically
        pixels = read_image(out / record.path).pixels
        write_dicom(
            target,
            pixels,
            view=record.view,
            laterality=record.laterality,
            patient_key=record.patient_key,
            spacing_mm=record.spacing_mm,
            synthetic=True,
            sop_class="mammography",
            description=f"mammosynth {family} synthetic mammogram",
        )
        written += 1
    return {"folder": "dicom", "files": len(records), "written_this_run": written}


def _box(record: Record, out: Path) -> list[float] | None:
    finding = record.findings[0]
    if finding.geometry == "box":
        return list(finding.coords)
    if finding.geometry == "circle":
        x, y, r = finding.coords
        return [x - r, y - r, x + r, y + r]
    if finding.mask_path and (out / finding.mask_path).is_file():
        mask = read_mask(out / finding.mask_path)
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows):
            return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]
    return None


VINDR_NAMES = {
    "mass": "Mass",
    "calcification": "Suspicious Calcification",
    "architectural_distortion": "Architectural Distortion",
    "asymmetry": "Asymmetry",
    "other": "Suspicious Lymph Node",
}


def write_vindr(out: Path, records: list[Record]) -> dict:
    """The dataset in VinDr-Mammo's layout under ``out/vindr``: ``breast-level_annotations.csv``,
    ``finding_annotations.csv`` and ``images/<study_id>/<image_id>.dicom``. Study ids are the pseudonymous
    study (or patient) keys; boxes come from each record's first finding."""
    root = out / "vindr"
    breast_rows, finding_rows = [], []
    for record in records:
        study = record.study_key or record.patient_key
        target = root / "images" / study / f"{record.image_id}.dicom"
        synthetic = bool(record.extra.get("synthetic", False))
        if not target.is_file():
            write_dicom(
                target,
                read_image(out / record.path).pixels,
                view=record.view,
                laterality=record.laterality,
                patient_key=record.patient_key,
                spacing_mm=record.spacing_mm,
                synthetic=synthetic,
                sop_class="mammography",
                burned_in_annotation=not synthetic and "burned_in" not in record.extra.get("prepare", {}),
            )
        breast_rows.append(
            {
                "study_id": study,
                "series_id": study,
                "image_id": record.image_id,
                "laterality": record.laterality or "",
                "view_position": record.view or "",
                "height": record.height or "",
                "width": record.width or "",
                "breast_birads": f"BI-RADS {record.birads}" if record.birads else "",
                "breast_density": f"DENSITY {record.density}" if record.density else "",
                "split": {"train": "training", "test": "test"}.get(record.split or "", "training"),
            }
        )
        box = _box(record, out) if record.findings else None
        finding_rows.append(
            {
                "study_id": study,
                "image_id": record.image_id,
                "finding_categories": str(
                    [VINDR_NAMES.get(record.findings[0].category, "Mass")] if record.findings else ["No Finding"]
                ),
                "finding_birads": f"BI-RADS {record.findings[0].birads}"
                if record.findings and record.findings[0].birads
                else "",
                **dict(zip(("xmin", "ymin", "xmax", "ymax"), box or ["", "", "", ""], strict=True)),
            }
        )
    for name, rows in (("breast-level_annotations.csv", breast_rows), ("finding_annotations.csv", finding_rows)):
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        with atomic_write(root / name, "w") as handle:
            handle.write(text.getvalue())
    return {"folder": "vindr", "images": len(records)}
