"""Generic adapters: a folder of images (DICOM headers give view/laterality/patient), or a folder plus a
CSV described by a mapping (YAML/JSON or dict).

Mapping keys::

    csv: metadata.csv            # relative to the dataset root (or beside the mapping file); never outside
    dataset: my-hospital         # name written into the records
    spacing_mm: 0.1              # optional, when files do not carry it
    multi_separator: ";"         # several findings in one cell, e.g. "CIRC;CALC"
    columns:                     # record field -> CSV column (only ``path`` is required)
      path: file
      image_id: image_id
      patient: patient_id
      study: study_id
      view: view
      laterality: laterality
      density: tissue
      birads: birads
      split: split
      category: abnormality
      pathology: severity
      cx: x                      # circle centre and radius, in the image's pixels
      cy: y
      radius: r
      xmin: x0                   # or a box
      ymin: y0
      xmax: x1
      ymax: y1
      mask: mask_file
    values:                      # optional value maps; a value mapped to null means "no finding"/unknown
      density: {F: A, G: B, D: C}
      category: {CIRC: mass, NORM: null}
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from mammosynth import validate as check
from mammosynth.datasets.base import IMAGE_SUFFIXES, Dataset, check_unique, read_csv, rejecting, resolve_inside
from mammosynth.datasets.schema import CATEGORIES, DENSITIES, PATHOLOGIES, SPLITS, Finding, Record, confined
from mammosynth.datasets.vocab import normalise_laterality, normalise_view
from mammosynth.errors import InputError
from mammosynth.io.dicom import dicom_view
from mammosynth.io.images import image_size, is_dicom
from mammosynth.io.pseudonym import pseudonymise, resolve_salt

MAPPING_KEYS = {"csv", "dataset", "spacing_mm", "multi_separator", "columns", "values"}
COLUMN_KEYS = {
    "path",
    "image_id",
    "patient",
    "study",
    "view",
    "laterality",
    "density",
    "birads",
    "split",
    "category",
    "pathology",
    "cx",
    "cy",
    "radius",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "mask",
}


def folder_pseudonym(root: Path, salt: str) -> str:
    """The name a dataset gets when the user gives none: a keyed hash of its folder's name, since a folder
    may be named after a patient or a hospital and the name is written into every output."""
    return pseudonymise(root.resolve().name, salt, namespace="dataset", prefix="folder-", digits=8)


def load_mapping(mapping: str | Path | dict) -> dict:
    """Read and check a column mapping; unknown keys are errors, not silently ignored."""
    where, path = "mapping", None
    if not isinstance(mapping, dict):
        where = str(mapping)
        path = Path(mapping)
        if not path.is_file():
            raise InputError(path, "mapping file not found")
        try:
            text = path.read_text()
            mapping = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise InputError(path, f"malformed mapping ({exc})") from None
    if not isinstance(mapping, dict):
        raise InputError(where, "mapping must be a mapping of keys to values")
    unknown = set(mapping) - MAPPING_KEYS
    if unknown:
        raise InputError(where, f"unknown mapping keys: {', '.join(sorted(unknown))}")
    for key in ("csv", "dataset", "multi_separator"):
        if mapping.get(key) is not None:
            check.text(mapping[key], where, key, 1000)
    if mapping.get("csv") is not None:
        confined(mapping["csv"], where, "csv")
    if mapping.get("spacing_mm") is not None:
        check.number(mapping["spacing_mm"], where, "spacing_mm", lo=0, hi=100, lo_open=True)
    columns = check.mapping(mapping.get("columns") or {}, where, "columns")
    for key, column in columns.items():
        check.text(column, where, f"columns.{key}", 1000)
    for key, table in check.mapping(mapping.get("values") or {}, where, "values").items():
        for value in check.mapping(table, where, f"values.{key}").values():
            if value is not None and not isinstance(value, str | int | float):
                raise InputError(where, f"values.{key} maps to {value!r}; map each value to text or null")
    unknown = set(columns) - COLUMN_KEYS
    if unknown:
        raise InputError(where, f"unknown column keys: {', '.join(sorted(unknown))}")
    if "path" not in columns:
        raise InputError(where, "columns.path is required")
    located = [k for k in ("mask", "cx", "xmin") if k in columns]
    if located and "category" not in columns:
        raise InputError(
            where,
            f"columns.{located[0]} needs columns.category (the kind of each finding); without it no lesion is kept",
        )
    return mapping if path is None else {**mapping, "_folder": str(path.parent)}


MASK_LIKE = re.compile(r"(^|[/_\-.])(masks?|labels?|label_?maps?|roi|seg(mentation)?|tissue)([/_\-.]|$)", re.IGNORECASE)
CBIS_CASE = re.compile(r"^(Mass|Calc)-(Training|Test)_P_\d+_(LEFT|RIGHT)_(CC|MLO)(_\d+)?$")
PER_FILE_PATIENTS = (
    "no patient identifier (no columns.patient, or a file without PatientID): each such image counts as its own "
    "patient, so one woman's images may land in train and test"
)


def load_folder(root: str | Path, salt: str | None = None, name: str | None = None) -> Dataset:
    """Every image file below ``root``; DICOM headers fill view, laterality, spacing and patient."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    if any(CBIS_CASE.match(p.name) for p in root.iterdir() if p.is_dir()):
        raise InputError(
            root,
            "this is CBIS-DDSM's image folder: point at the folder that holds it and the *_case_description_*.csv "
            "files (they tell the mammograms from the ROI masks and crops)",
        )
    salt = resolve_salt(salt)
    name = name or folder_pseudonym(root, salt)
    records, per_file = [], False  # per_file: some image has no patient id (its file stands in for one)
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES or (not p.suffix and is_dicom(p)))
    )
    for path in files:
        relative = str(path.relative_to(root))
        file_key = pseudonymise(relative, salt, namespace=f"{name}-file")
        record = Record(
            image_id=pseudonymise(relative, salt, namespace=f"{name}-image", prefix="I"),
            path=relative,
            dataset=name,
            patient_key=file_key,
        )
        if is_dicom(path):
            import pydicom

            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception as exc:
                raise InputError(path, f"unreadable DICOM ({exc})") from None
            if ds.get("PatientID"):
                record.patient_key = pseudonymise(str(ds.PatientID), salt, namespace="dicom-patient")
            if ds.get("StudyInstanceUID"):
                record.study_key = pseudonymise(str(ds.StudyInstanceUID), salt, namespace="dicom-study", prefix="S")
            record.view = normalise_view(dicom_view(ds))
            record.laterality = normalise_laterality(ds.get("ImageLaterality") or ds.get("Laterality"))
            spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
            record.spacing_mm = float(spacing[0]) if spacing else None
            record.width, record.height = int(ds.get("Columns", 0)) or None, int(ds.get("Rows", 0)) or None
        per_file = per_file or record.patient_key == file_key
        records.append(record)
    if not records:
        raise InputError(root, "no images found (empty folder or no supported image files)")
    warnings = [PER_FILE_PATIENTS] if per_file else []
    tables = sorted(p.name for p in root.glob("*.csv"))
    if tables:
        warnings.append(
            f"{tables[0]} is here but no --mapping was given: its labels are not read, and every image below "
            "counts as a mammogram"
        )
    masks = sum(bool(MASK_LIKE.search(r.path)) for r in records)
    if masks:
        warnings.append(f"{masks} image(s) look like masks or label maps by their path, and are read as mammograms")
    return Dataset(root=root, name=name, records=records, warnings=warnings)


def load_csv_dataset(
    root: str | Path, mapping: str | Path | dict, salt: str | None = None, skip_bad: bool = False
) -> Dataset:
    """A folder plus a CSV described by ``mapping`` (see the module docstring)."""
    root = Path(root)
    mapping = load_mapping(mapping)
    columns: dict[str, str] = mapping["columns"]
    values: dict[str, dict] = mapping.get("values") or {}
    csv_path = root / mapping.get("csv", "metadata.csv")  # relative and confined (load_mapping)
    if not csv_path.is_file() and mapping.get("_folder") and (Path(mapping["_folder"]) / mapping["csv"]).is_file():
        csv_path = Path(mapping["_folder"]) / mapping["csv"]  # beside the mapping file
    rows = read_csv(csv_path, list(columns.values()))
    salt = resolve_salt(salt)
    name = mapping.get("dataset") or folder_pseudonym(root, salt)
    separator = mapping.get("multi_separator")

    def cell(row: dict, key: str) -> str | None:
        return row.get(columns[key]) or None if key in columns else None

    def mapped(key: str, value: str | None, allowed: tuple | None, where: str) -> str | None:
        if value is None:
            return None
        table = values.get(key)
        if table is not None:
            if value not in table:
                known = ", ".join(map(str, table))
                raise InputError(where, f"unknown value {value!r} in column {columns[key]!r}; mapped: {known}")
            value = table[value]
            value = None if value is None else str(value)
        if value is not None and allowed is not None and value not in allowed:
            raise InputError(
                where,
                f"unknown {key} value {value!r} in column {columns[key]!r}; known: "
                f"{', '.join(allowed)} (add a values.{key} map)",
            )
        return value

    def split_cell(value: str | None) -> list[str | None]:
        if value is None:
            return [None]
        return [v.strip() or None for v in value.split(separator)] if separator else [value]

    records, skipped, bad = [], [], [] if skip_bad else None
    for number, row in enumerate(rows, 2):
        with rejecting(bad):  # skip_bad: a row with a bad value leaves its image out
            where = f"{csv_path}:{number}"
            relative = cell(row, "path")
            if not relative:
                raise InputError(where, f"empty path in column {columns['path']!r}")
            image = resolve_inside(root, relative, where)
            if not image.is_file():
                skipped.append(relative)
                continue
            relative = str(image.relative_to(root.resolve()))
            patient = cell(row, "patient") or relative
            view = cell(row, "view")
            laterality = cell(row, "laterality")
            record = Record(
                image_id=cell(row, "image_id") or pseudonymise(relative, salt, namespace=f"{name}-image", prefix="I"),
                path=relative,
                dataset=name,
                patient_key=pseudonymise(patient, salt, namespace=name),
                study_key=pseudonymise(cell(row, "study"), salt, namespace=f"{name}-study", prefix="S")
                if cell(row, "study")
                else None,
                view=normalise_view(mapped("view", view, None, where), where),
                laterality=normalise_laterality(mapped("laterality", laterality, None, where)),
                density=mapped("density", cell(row, "density"), DENSITIES, where),
                birads=mapped("birads", cell(row, "birads"), None, where),
                split=mapped("split", cell(row, "split"), SPLITS, where),
                spacing_mm=mapping.get("spacing_mm"),
            )
            if view and record.view is None:
                raise InputError(where, f"unknown view {view!r}")
            if laterality and record.laterality is None:
                raise InputError(where, f"unknown laterality {laterality!r}; known: L, R, LEFT, RIGHT")
            categories = split_cell(cell(row, "category"))
            n = len(categories)
            keys = ("pathology", "cx", "cy", "radius", "xmin", "ymin", "xmax", "ymax", "mask")
            per = {k: split_cell(cell(row, k)) for k in keys}
            per = {k: (v if len(v) == n else v[:1] * n) for k, v in per.items()}
            for i, raw_category in enumerate(categories):
                category = mapped("category", raw_category, CATEGORIES, where)
                if category is None:
                    continue
                pathology = mapped("pathology", per["pathology"][i], PATHOLOGIES, where) or "unknown"
                finding = Finding(category=category, pathology=pathology)
                try:
                    if per["cx"][i] and per["cy"][i] and per["radius"][i]:
                        finding.geometry = "circle"
                        finding.coords = [float(per[k][i]) for k in ("cx", "cy", "radius")]
                    elif all(per[k][i] for k in ("xmin", "ymin", "xmax", "ymax")):
                        finding.geometry = "box"
                        finding.coords = [float(per[k][i]) for k in ("xmin", "ymin", "xmax", "ymax")]
                except ValueError:
                    raise InputError(where, "lesion coordinates are not numbers") from None
                if per["mask"][i] and finding.geometry is None:  # one mask per finding, or the row's one for each
                    mask = resolve_inside(root, per["mask"][i], where)
                    finding.geometry, finding.mask_path = "mask", str(mask.relative_to(root.resolve()))
                record.findings.append(finding)
            if record.width is None:
                record.width, record.height = image_size(image)
            records.append(record.validate(where, on_image=True))
    check_unique((r.image_id for r in records), csv_path)
    warnings = [] if "patient" in columns else [PER_FILE_PATIENTS]
    return Dataset(root=root, name=name, records=records, skipped=skipped, warnings=warnings, bad_annotations=bad or [])
