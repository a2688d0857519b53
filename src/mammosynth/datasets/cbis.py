"""CBIS-DDSM: the mass/calc case-description CSVs (``*_case_description_*.csv``) with DICOM paths
relative to the dataset root, read as the CSVs name them or as TCIA's download lays them out (see
:func:`resolve_cbis`). One record per full mammogram; each CSV row adds one finding whose geometry is its
ROI mask, told from the cropped lesion by its size. Rows that resolve to no file are named in
``Dataset.skipped``. Source paths embed the patient id, so image ids are pseudonymised."""

from __future__ import annotations

from pathlib import Path

from mammosynth.datasets.base import Dataset, read_csv, rejecting, resolve_inside
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


def resolve_cbis(root: Path, relative: str, where: str) -> list[Path]:
    r"""The DICOM files a CSV path names: the file itself where it exists (under ``root`` or ``root/CBIS-DDSM``),
    else, in TCIA's download layout (``CASE/<date>-DDSM-…-<study UID's last 5>/<n>-<description>-<series UID's
    last 5>/1-1.dcm``), every DICOM of the series folder the path's case and series UID name. Windows ``\``
    separators are read as ``/``. Empty when nothing matches.

    Example:
        >>> resolve_cbis(Path("/nowhere"), "Calc-Test_P_00038_LEFT_CC/1.2.3/1.2.4/000000.dcm", "x")
        []
    """
    relative = relative.strip().replace("\\", "/")
    bases = [root, root / "CBIS-DDSM"]
    for base in bases:
        candidate = resolve_inside(root, str((base / relative).relative_to(root)), where)
        if candidate.is_file():
            return [candidate]
    parts = [p for p in relative.split("/") if p]
    if len(parts) < 3:
        return []
    case, series_uid = parts[0], parts[2]
    for base in bases:
        case_dir = resolve_inside(root, str((base / case).relative_to(root)), where)
        if not case_dir.is_dir():
            continue
        series = [d for d in case_dir.glob("*/*") if d.is_dir() and d.name.endswith("-" + series_uid[-5:])]
        if len(series) == 1:
            return sorted(p for p in series[0].iterdir() if p.suffix.lower() == ".dcm")
    return []


def pick_mask(candidates: list[Path], image: Path) -> Path | None:
    """The ROI mask among a ROI series' files: the one the size of the full image (the other is the small
    cropped lesion; the CSV's names and TCIA's ``1-1``/``1-2`` come in either order)."""
    import pydicom

    def size(path: Path) -> tuple[int, int]:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        return int(header.get("Rows", 0)), int(header.get("Columns", 0))

    target = size(image)
    same = [c for c in candidates if size(c) == target]
    return same[0] if len(same) == 1 else None


def _split(csv_path: Path) -> str | None:
    name = csv_path.name.lower()
    return "test" if "test" in name else "train" if "train" in name else None


def load_cbis(root: str | Path, salt: str | None = None, skip_bad: bool = False) -> Dataset:
    root = Path(root)
    csvs = find_cbis_csvs(root)
    if not csvs:
        raise InputError(root, "no *_case_description_*.csv: not a CBIS-DDSM folder")
    salt = resolve_salt(salt)
    by_image: dict[str, Record] = {}
    skipped: list[str] = []
    bad: list[str] | None = [] if skip_bad else None
    rejected: set[str] = set()  # images with a bad row (skip_bad): all their rows left out
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
            images = resolve_cbis(root, relative, where)
            if len(images) != 1:
                skipped.append(relative)
                continue
            image = images[0]
            # the mask is the full-size file of the ROI series (the crop's path may name it, or neither)
            mask_relative = row["ROI mask file path"].strip()
            roi = resolve_cbis(root, mask_relative, where) if mask_relative else []
            if len(roi) == 1:
                roi = sorted(p for p in roi[0].parent.iterdir() if p.suffix.lower() == ".dcm")
            mask = pick_mask(roi, image) if roi else None
            if mask_relative and mask is None:
                skipped.append(f"{mask_relative} (ROI mask)")
            key = str(image.relative_to(root.resolve()))
            record = by_image.get(key)
            if record is None:
                record = by_image[key] = Record(
                    image_id=pseudonymise(key, salt, namespace="cbis-image", prefix="I"),
                    path=key,
                    dataset="cbis-ddsm",
                    patient_key=pseudonymise(row["patient_id"], salt, namespace="cbis"),
                    view=normalise_view(row["image view"], where),
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
                    geometry="mask" if mask is not None else None,
                    mask_path=str(mask.relative_to(root.resolve())) if mask is not None else None,
                    attributes=attributes,
                )
            )
            with rejecting(bad) as outcome:
                record.validate(where, on_image=True)
            if outcome.failed:
                rejected.add(key)
    records = [r for key, r in by_image.items() if key not in rejected]
    return Dataset(root=root, name="cbis-ddsm", records=records, skipped=skipped, bad_annotations=bad or [])
