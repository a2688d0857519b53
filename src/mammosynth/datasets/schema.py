"""The one record schema every dataset adapter produces and every later stage reads.

A dataset on disk is a folder with ``manifest.jsonl``: one JSON object per line, one line per image,
paths relative to the folder. Geometry is in pixels of the image the record points to (x right, y down,
origin at the top-left pixel's corner).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath

from mammosynth import validate as check
from mammosynth.errors import InputError
from mammosynth.io.atomic import atomic_write

MANIFEST = "manifest.jsonl"
VIEWS = ("CC", "MLO", "other")
LATERALITIES = ("L", "R")
DENSITIES = ("A", "B", "C", "D")
BIRADS = ("0", "1", "2", "3", "4", "4A", "4B", "4C", "5", "6")
CATEGORIES = ("mass", "calcification", "architectural_distortion", "asymmetry", "other")
PATHOLOGIES = ("benign", "malignant", "unknown")
GEOMETRIES = ("box", "circle", "polygon", "mask")
SPLITS = ("train", "val", "test")


@dataclass
class Finding:
    """One annotated abnormality.

    ``geometry`` is ``box`` (coords = [xmin, ymin, xmax, ymax]), ``circle`` ([cx, cy, r]), ``polygon``
    ([x0, y0, x1, y1, …]) or ``mask`` (``mask_path`` relative to the dataset folder); ``None`` when the
    source gives no location.
    """

    category: str
    pathology: str = "unknown"
    birads: str | None = None
    geometry: str | None = None
    coords: list[float] = field(default_factory=list)
    mask_path: str | None = None
    attributes: dict = field(default_factory=dict)

    def validate(self, where: str, width: int | None = None, height: int | None = None) -> None:
        """Vocabulary and geometry; with the image's ``width`` and ``height`` also that the finding lies on it."""
        if self.category not in CATEGORIES:
            raise InputError(where, f"unknown finding category {self.category!r}; known: {', '.join(CATEGORIES)}")
        if self.pathology not in PATHOLOGIES:
            raise InputError(where, f"unknown pathology {self.pathology!r}; known: {', '.join(PATHOLOGIES)}")
        if self.geometry is not None and self.geometry not in GEOMETRIES:
            raise InputError(where, f"unknown geometry {self.geometry!r}")
        need = {"box": 4, "circle": 3}.get(self.geometry or "")
        if need and len(self.coords) != need:
            raise InputError(where, f"{self.geometry} needs {need} coordinates, got {len(self.coords)}")
        if self.geometry in ("box", "circle", "polygon"):
            self._check_coords(where, width, height)

    def _check_coords(self, where: str, width: int | None, height: int | None) -> None:
        c, what = self.coords, f"{self.category} {self.geometry}"
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in c):
            raise InputError(where, f"{what} coordinates must be finite numbers, got {c}")
        if self.geometry == "circle" and c[2] <= 0:
            raise InputError(where, f"{what} radius must be positive, got {c[2]:g}")
        if self.geometry == "box" and (c[0] >= c[2] or c[1] >= c[3]):
            raise InputError(where, f"{what} needs xmin < xmax and ymin < ymax, got {c}")
        if self.geometry == "polygon" and (len(c) < 6 or len(c) % 2):
            raise InputError(where, f"{what} needs at least 3 (x, y) points, got {len(c)} numbers")
        if not width or not height:
            return
        if self.geometry == "circle":
            if not (0 <= c[0] <= width and 0 <= c[1] <= height):
                raise InputError(where, f"{what} centre ({c[0]:g}, {c[1]:g}) lies outside the {width}×{height} image")
            return
        xs, ys = c[0::2], c[1::2]
        if max(xs) <= 0 or min(xs) >= width or max(ys) <= 0 or min(ys) >= height:
            raise InputError(where, f"{what} {c} lies outside the {width}×{height} image")


@dataclass
class Record:
    """One image. Source identifiers never appear here: ``patient_key`` and ``study_key`` are pseudonyms."""

    image_id: str
    path: str
    dataset: str
    patient_key: str
    study_key: str | None = None
    view: str | None = None
    laterality: str | None = None
    density: str | None = None
    birads: str | None = None
    findings: list[Finding] = field(default_factory=list)
    split: str | None = None
    spacing_mm: float | None = None
    width: int | None = None
    height: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """True for an image a generator made (``extra.synthetic``; an expanded dataset holds both kinds)."""
        return isinstance(self.extra, dict) and bool(self.extra.get("synthetic"))

    @property
    def label(self) -> str:
        """``normal`` or the worst pathology among the findings (malignant > benign > unknown)."""
        if not self.findings:
            return "normal"
        pathologies = {f.pathology for f in self.findings}
        for name in ("malignant", "benign", "unknown"):
            if name in pathologies:
                return name
        return "unknown"

    def validate(self, where: str | None = None, on_image: bool = False) -> Record:
        """Vocabularies and finding geometry; ``on_image`` (adapters, reading a source's annotations) also
        checks that every finding lies on the image (``width`` × ``height``, when known)."""
        where = where or self.path
        for name, value, allowed in (
            ("view", self.view, VIEWS),
            ("laterality", self.laterality, LATERALITIES),
            ("density", self.density, DENSITIES),
            ("birads", self.birads, BIRADS),
            ("split", self.split, SPLITS),
        ):
            if value is not None and value not in allowed:
                raise InputError(where, f"unknown {name} {value!r}; known: {', '.join(allowed)}")
        for finding in self.findings:
            finding.validate(where, *((self.width, self.height) if on_image else ()))
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "record") -> Record:
        """A record from its JSON object, every field typed (:func:`_typed`) and every file it names confined
        to the dataset folder (relative, no ``..``): a manifest cannot point a reader at another file."""
        data = dict(check.mapping(data, where, "a manifest line", cls.__dataclass_fields__))
        for name in ("image_id", "path", "dataset", "patient_key"):
            if name not in data:
                raise InputError(where, f"record has no {name}")
        data = {k: _typed(k, v, where) for k, v in data.items()}
        findings = check.items(data.get("findings", []), where, "findings", 10_000)
        data["findings"] = [
            Finding(**{k: _typed(k, v, where) for k, v in check.mapping(f, where, "a finding", FINDING_FIELDS).items()})
            for f in findings
        ]
        for finding in data["findings"]:
            if finding.mask_path is not None:
                confined(finding.mask_path, where, "mask_path")
        confined(data["path"], where, "path")
        for key in ("breast_mask", "pectoral_mask"):
            if data.get("extra", {}).get(key) is not None:
                confined(data["extra"][key], where, f"extra.{key}")
        return cls(**data)


FINDING_FIELDS = tuple(Finding.__dataclass_fields__)
# the text fields, read off the dataclasses' annotations (``str`` or ``str | None``)
_TEXT = {f.name for cls in (Record, Finding) for f in fields(cls) if f.type in ("str", "str | None")}


def _typed(name: str, value, where: str):
    """One record or finding field checked for its type (text, whole numbers, finite numbers, lists, objects)."""
    if value is None and name not in ("image_id", "path", "dataset", "patient_key", "category"):
        return None
    if name in _TEXT:
        return check.text(value, where, name, 4096)
    if name in ("width", "height"):
        return check.number(value, where, name, lo=1, hi=10**6, integer=True)
    if name == "spacing_mm":
        return check.number(value, where, name, lo=0, hi=100, lo_open=True)
    if name == "coords":
        return [check.number(v, where, "coords", lo=-1e9, hi=1e9) for v in check.items(value, where, name, 100_000)]
    if name in ("extra", "attributes"):
        return check.mapping(value, where, name)
    return value


def confined(path: str, where: str, name: str) -> str:
    """``path`` if it is relative and stays inside its dataset folder (no ``..``, no drive, no NUL)."""
    candidate = PurePosixPath(path.replace("\\", "/"))
    if not path or "\x00" in path or candidate.is_absolute() or ".." in candidate.parts or ":" in path.split("/")[0]:
        raise InputError(where, f"{name} {path!r} points outside the dataset folder; paths are relative to it")
    return path


def write_manifest(folder: str | Path, records: Iterable[Record]) -> Path:
    """Write ``manifest.jsonl`` atomically; returns its path."""
    path = Path(folder) / MANIFEST
    with atomic_write(path, "w") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
    return path


def iter_manifest(folder: str | Path) -> Iterator[Record]:
    """Stream the records of a dataset folder (memory flat in dataset size)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(folder, f"no {MANIFEST} here; not a mammosynth dataset folder")
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(where, f"malformed record ({exc})") from None
            if not isinstance(value, dict):
                raise InputError(where, f"a manifest line must be a JSON object, got {type(value).__name__}")
            yield Record.from_dict(value, where).validate(where)
