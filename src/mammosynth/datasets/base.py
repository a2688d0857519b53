"""What every adapter shares: a loaded dataset, CSV reading with clear errors, safe path resolution."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mammosynth.datasets.schema import Record
from mammosynth.errors import InputError

IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".tif", ".tiff", ".jpg", ".jpeg", ".pgm"}


@dataclass
class Dataset:
    """Records of one dataset; ``Record.path`` is relative to ``root``."""

    root: Path
    name: str
    records: list[Record]
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what the adapter had to assume, said to the user
    bad_annotations: list[str] = field(default_factory=list)  # images left out for them (``skip_bad``)

    def __len__(self) -> int:
        return len(self.records)

    def image_path(self, record: Record) -> Path:
        return self.root / record.path


def read_csv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a CSV as dicts (stripped strings); one error naming every missing required column."""
    if not path.is_file():
        raise InputError(path, "CSV file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in required if c not in columns]
            if missing:
                raise InputError(path, f"missing required column(s): {', '.join(missing)}")
            return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except UnicodeDecodeError:
        raise InputError(path, "not a UTF-8 text CSV") from None
    except csv.Error as exc:
        raise InputError(path, f"malformed CSV ({exc})") from None


def resolve_inside(root: Path, relative: str, where: str | Path) -> Path:
    """``root / relative``, refusing absolute paths and ``..`` that leave the dataset root, and NUL bytes."""
    if "\x00" in relative:
        raise InputError(where, f"path {relative!r} holds a NUL byte")
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise InputError(where, f"path {relative!r} points outside the dataset root {root}")
    return candidate


def check_unique(ids: Iterable[str], where: str | Path) -> None:
    duplicates = sorted(k for k, n in Counter(ids).items() if n > 1)
    if duplicates:
        shown = ", ".join(duplicates[:5]) + (" …" if len(duplicates) > 5 else "")
        raise InputError(where, f"duplicate image ids: {shown}")


def require_images(dataset: Dataset) -> Dataset:
    if not dataset.records:
        raise InputError(dataset.root, "no images found in this dataset")
    return dataset


@dataclass
class Rejection:
    """What :func:`rejecting` yields: ``failed`` once the guarded block was left for a bad value."""

    failed: bool = False


@contextmanager
def rejecting(bad: list[str] | None) -> Iterator[Rejection]:
    """Around one source row or image: with ``bad`` (``--skip-bad``) a bad value in it becomes one line
    there (naming the file and the problem) and the image is left out; without, the read stops on it.

    Example:
        >>> bad, kept = [], []
        >>> for value in ("1", "x", "3"):
        ...     with rejecting(bad):
        ...         if not value.isdigit():
        ...             raise InputError("table.csv:3", f"not a number: {value!r}")
        ...         kept.append(value)
        >>> kept, bad
        (['1', '3'], ["table.csv:3: not a number: 'x'"])
    """
    outcome = Rejection()
    try:
        yield outcome
    except InputError as error:
        if bad is None:
            raise
        bad.append(str(error))
        outcome.failed = True
