"""Parameters of the parametric 2D breast model: one JSON-serialisable object per phantom.

The outline follows Banterle et al. 2025: an arc of a rotated ellipse (a, b, phi, X0, Y0, Alpha_e) in a
unit square (the image's largest side is 1, chest wall on the right, y down); the closing chord is the
chest wall. mammosynth renders it in its standard orientation (chest wall at the left edge).
Positions of lesions are fractions of the output image (x from the chest wall, y from the top).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mammosynth import validate as check
from mammosynth.errors import InputError

MASS_SHAPES = ("round", "oval", "lobulated", "irregular", "spiculated")
MASS_KINDS = ("benign", "malignant")
#: Fibroglandular area fraction of the breast per BI-RADS density (5th ed. quartiles, mid-points).
DENSITY_FRACTION = {"A": 0.12, "B": 0.35, "C": 0.6, "D": 0.85}


@dataclass
class Outline:
    a: float = 0.52
    b: float = 0.40
    phi: float = -0.16
    X0: float = 0.94
    Y0: float = 0.61
    Alpha_e: float = 1.60


@dataclass
class Mass:
    kind: str = "malignant"
    shape: str = "irregular"
    size_mm: float = 15.0
    x: float = 0.35
    y: float = 0.5
    rotation_deg: float = 0.0


@dataclass
class CalcCluster:
    x: float = 0.4
    y: float = 0.5
    count: int = 12
    spread_mm: float = 5.0
    particle_mm: float = 0.5
    kind: str = "malignant"


@dataclass
class PhantomParams:
    """Everything that defines one phantom; ``seed`` drives the fibroglandular pattern and noise."""

    view: str = "CC"
    laterality: str = "L"
    density: str = "B"
    outline: Outline = field(default_factory=Outline)
    nipple_position: float = 0.0  # −1 … 1 along the arc, 0 = its middle (the publication's default)
    nipple_mm: float = 8.0
    skin_mm: float = 2.0
    field_mm: float = 240.0  # physical side of the square image
    fgt_fraction: float | None = None  # overrides the density's default area fraction
    fgt_mask_path: str | None = None  # a user-drawn fibroglandular region (PNG) instead of blobs
    pectoral: tuple[float, float] = (0.45, 0.35)  # MLO: muscle width at the top, height at the chest wall
    masses: list[Mass] = field(default_factory=list)
    calcifications: list[CalcCluster] = field(default_factory=list)
    seed: int = 0

    def validate(self, where: str = "phantom parameters") -> PhantomParams:
        """Every field's type and bounds (:data:`BOUNDS`); one line naming the field when one is off."""
        PhantomParams.from_dict(self.to_dict(), where)
        return self

    @property
    def fibroglandular_fraction(self) -> float:
        return DENSITY_FRACTION[self.density] if self.fgt_fraction is None else float(self.fgt_fraction)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, where: str = "phantom parameters") -> PhantomParams:
        """Parameters from a JSON object, every value checked for type, finiteness and bounds
        (:data:`BOUNDS`, at most :data:`MAX_LESIONS` masses and clusters); one line naming the field if not.

        Example:
            >>> PhantomParams.from_dict({"masses": [{"size_mm": -3}]}, "p.json")
            Traceback (most recent call last):
            mammosynth.errors.InputError: p.json: masses[0].size_mm must be above 0 and at most 150, got -3
        """
        data = check.mapping(data, where, "phantom parameters", cls.__dataclass_fields__)
        out: dict[str, Any] = {}
        for name in ("view", "laterality", "density"):
            if name in data:
                out[name] = check.choice(data[name], where, name, CHOICES[name])
        outline = check.mapping(data.get("outline", {}), where, "outline", Outline.__dataclass_fields__)
        out["outline"] = Outline(**{k: _bounded(v, where, f"outline.{k}", k) for k, v in outline.items()})
        for name in ("nipple_position", "nipple_mm", "skin_mm", "field_mm"):
            if name in data:
                out[name] = _bounded(data[name], where, name, name)
        if data.get("fgt_fraction") is not None:
            out["fgt_fraction"] = _bounded(data["fgt_fraction"], where, "fgt_fraction", "fgt_fraction")
        if data.get("fgt_mask_path") is not None:
            out["fgt_mask_path"] = check.text(data["fgt_mask_path"], where, "fgt_mask_path")
        if "pectoral" in data:
            pectoral = check.items(data["pectoral"], where, "pectoral", 2)
            if len(pectoral) != 2:
                raise InputError(where, "pectoral must be two numbers: width at the top, height at the chest wall")
            out["pectoral"] = tuple(_bounded(v, where, f"pectoral[{k}]", "pectoral") for k, v in enumerate(pectoral))
        for name, kind in (("masses", Mass), ("calcifications", CalcCluster)):
            found = check.items(data.get(name, []), where, name, MAX_LESIONS)
            out[name] = [_lesion(kind, entry, where, f"{name}[{k}]") for k, entry in enumerate(found)]
        if "seed" in data:
            out["seed"] = check.number(data["seed"], where, "seed", lo=0, hi=2**63 - 1, integer=True)
        return cls(**out)


#: Allowed values of the named fields (positions are fractions of the image, sizes in mm).
CHOICES = {"view": ("CC", "MLO"), "laterality": ("L", "R"), "density": tuple(DENSITY_FRACTION), "kind": MASS_KINDS}
#: (low, high, low end open) per field name; a breast's outline parameters are those of the publication's
#: frame (the fitted real ones span a 0.35–2.1, b 0.31–0.74, phi ±0.75, X0 0.65–2.6, Y0 0.28–0.73).
BOUNDS = {
    "a": (0.0, 5.0, True),
    "b": (0.0, 5.0, True),
    "phi": (-2 * math.pi, 2 * math.pi, False),
    "X0": (-5.0, 5.0, False),
    "Y0": (-5.0, 5.0, False),
    "Alpha_e": (-2 * math.pi, 2 * math.pi, False),
    "nipple_position": (-1.0, 1.0, False),
    "nipple_mm": (0.0, 50.0, False),
    "skin_mm": (0.0, 20.0, False),
    "field_mm": (10.0, 1000.0, False),
    "fgt_fraction": (0.0, 1.0, False),
    "pectoral": (0.0, 1.0, False),
    "x": (0.0, 1.0, False),
    "y": (0.0, 1.0, False),
    "size_mm": (0.0, 150.0, True),
    "rotation_deg": (-360.0, 360.0, False),
    "count": (1, 1000, False),
    "spread_mm": (0.0, 100.0, True),
    "particle_mm": (0.0, 10.0, True),
}
MAX_LESIONS = 20  # masses, and calcification clusters, per phantom


def _bounded(value: Any, where: str, name: str, field_name: str) -> float | int:
    lo, hi, lo_open = BOUNDS[field_name]
    return check.number(value, where, name, lo=lo, hi=hi, lo_open=lo_open, integer=field_name == "count")


def _lesion(kind: type, entry: Any, where: str, name: str) -> Mass | CalcCluster:
    entry = check.mapping(entry, where, name, kind.__dataclass_fields__)
    values: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "kind":
            values[key] = check.choice(value, where, f"{name}.kind", MASS_KINDS)
        elif key == "shape":
            values[key] = check.choice(value, where, f"{name}.shape", MASS_SHAPES)
        else:
            values[key] = _bounded(value, where, f"{name}.{key}", key)
    return kind(**values)
