"""CBIS-DDSM: the mass/calc case-description CSVs (``*_case_description_*.csv``) with DICOM paths
relative to the dataset root. One record per full-mammogram path; each CSV row adds one finding whose
geometry is its ROI mask file. Source paths embed the patient id, so image ids are pseudonymised."""

from __future__ import annotations

from pathlib import Path

from mammosynth.datasets.base import Dataset, read_csv, resolve_inside
from mammosynth.datasets.schema import Finding, Record
from mammosynth.datasets.vocab import (
    CBIS_CATEGORY,
    CBIS_DENSITY,
    CBIS_PATHOLOGY,
    map_values,
    normalise_laterality,
    normalise_view,
)
from mammosynth.errors import InputError
from mammosynth.io.pseudonym import pseudonymise, resolve_salt

REQUIRED = (
    "patient_id",
    "left or right breast",
    "image view",
    "abnormality type",
    "pathology",
    "assessment",
    "image file path",
    "ROI mask file path",
)
DENSITY_COLUMNS = ("breast_density", "breast density")


def find_cbis_csvs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*.csv") if "case_description" in p.name.lower())


def _split(csv_path: Path) -> str | None:
    name = csv_path.name.lower()
    return "test" if "test" in name else "train" if "train" in name else None


def load_cbis(root: str | Path, salt: str | None = None) -> Dataset:
    root = Path(root)
    csvs = find_cbis_csvs(root)
    if not csvs:
        raise InputError(root, "no *_case_description_*.csv: not a CBIS-DDSM folder")
    salt = resolve_salt(salt)
    by_image: dict[str, Record] = {}
    skipped: list[str] = []
    for csv_path in csvs:
        rows = read_csv(csv_path, REQUIRED)
        if rows and not any(c in rows[0] for c in DENSITY_COLUMNS):
            raise InputError(csv_path, "missing required column(s): breast_density (or 'breast density')")
        map_values(str(csv_path), "abnormality type", (r["abnormality type"].lower() for r in rows), CBIS_CATEGORY)
        map_values(str(csv_path), "pathology", (r["pathology"].lower() for r in rows), CBIS_PATHOLOGY)
        densities = [next(r[c] for c in DENSITY_COLUMNS if c in r) for r in rows]
        map_values(str(csv_path), "breast_density", densities, CBIS_DENSITY)
        for number, (row, density) in enumerate(zip(rows, densities, strict=True), 2):
            where = f"{csv_path}:{number}"
            relative = row["image file path"].strip()
            image = resolve_inside(root, relative, where)
            mask_relative = row["ROI mask file path"].strip()
            mask = resolve_inside(root, mask_relative, where) if mask_relative else None
            if not image.is_file():
                skipped.append(relative)
                continue
            key = str(image.relative_to(root.resolve()))
            record = by_image.get(key)
            if record is None:
                record = by_image[key] = Record(
                    image_id=pseudonymise(key, salt, namespace="cbis-image", prefix="I"),
                    path=key,
                    dataset="cbis-ddsm",
                    patient_key=pseudonymise(row["patient_id"], salt, namespace="cbis"),
                    view=normalise_view(row["image view"]),
                    laterality=normalise_laterality(row["left or right breast"]),
                    density=CBIS_DENSITY[density],
                    split=_split(csv_path),
                )
            assessment = row["assessment"].strip()
            attributes = {
                k: row[k]
                for k in ("mass shape", "mass margins", "calc type", "calc distribution", "subtlety")
                if row.get(k)
            }
            record.findings.append(
                Finding(
                    category=CBIS_CATEGORY[row["abnormality type"].lower()],
                    pathology=CBIS_PATHOLOGY[row["pathology"].lower()],
                    birads=assessment or None,
                    geometry="mask" if mask is not None and mask.is_file() else None,
                    mask_path=str(mask.relative_to(root.resolve())) if mask is not None and mask.is_file() else None,
                    attributes=attributes,
                )
            )
            record.validate(where, on_image=True)
    return Dataset(root=root, name="cbis-ddsm", records=list(by_image.values()), skipped=skipped)
