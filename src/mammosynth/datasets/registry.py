"""Open any supported dataset folder as records: detection by the files it holds, or by ``format``."""

from __future__ import annotations

from pathlib import Path

from mammosynth.datasets.base import Dataset, check_unique, require_images
from mammosynth.datasets.cbis import find_cbis_csvs, load_cbis
from mammosynth.datasets.folder import load_csv_dataset, load_folder
from mammosynth.datasets.mias import load_mias
from mammosynth.datasets.schema import MANIFEST, iter_manifest
from mammosynth.datasets.vindr import load_vindr
from mammosynth.errors import InputError

FORMATS = ("auto", "manifest", "mini-mias", "vindr", "cbis-ddsm", "csv", "folder")


def load_manifest_dataset(root: str | Path) -> Dataset:
    root = Path(root)
    records = list(iter_manifest(root))
    check_unique((r.image_id for r in records), root / MANIFEST)
    name = records[0].dataset if records else "empty"
    return Dataset(root=root, name=name, records=records)


def detect_format(root: Path) -> str:
    if (root / MANIFEST).is_file():
        return "manifest"
    if (root / "Info.txt").is_file():
        return "mini-mias"
    if (root / "breast-level_annotations.csv").is_file():
        return "vindr"
    if find_cbis_csvs(root):
        return "cbis-ddsm"
    return "folder"


def load_dataset(
    path: str | Path,
    format: str = "auto",
    mapping: str | Path | dict | None = None,
    salt: str | None = None,
    skip_bad: bool = False,
) -> Dataset:
    """Load a dataset folder into records; with ``skip_bad`` an image whose annotation has a bad value is
    left out and its problem kept in ``Dataset.bad_annotations`` instead of stopping the read.

    Example:
        >>> ds = load_dataset("../shared/data/mini-mias-original")  # doctest: +SKIP
        >>> ds.name, len(ds) > 0  # doctest: +SKIP
        ('mini-mias', True)
    """
    root = Path(path)
    if not root.exists():
        raise InputError(root, "dataset folder not found")
    if not root.is_dir():
        raise InputError(root, "not a folder; give the dataset's root folder")
    if format not in FORMATS:
        raise InputError(root, f"unknown dataset format {format!r}; known: {', '.join(FORMATS)}")
    if mapping is not None and format in ("auto", "csv"):
        format = "csv"
    elif format == "auto":
        format = detect_format(root)
    if format == "csv" and mapping is None:
        raise InputError(root, "format 'csv' needs a column mapping (--mapping FILE)")
    loaders = {
        "manifest": lambda: load_manifest_dataset(root),
        "mini-mias": lambda: load_mias(root, salt=salt, skip_bad=skip_bad),
        "vindr": lambda: load_vindr(root, salt=salt, skip_bad=skip_bad),
        "cbis-ddsm": lambda: load_cbis(root, salt=salt, skip_bad=skip_bad),
        "csv": lambda: load_csv_dataset(root, mapping, salt=salt, skip_bad=skip_bad),  # type: ignore[arg-type]
        "folder": lambda: load_folder(root, salt=salt),
    }
    return require_images(loaders[format]())
