"""Parameters of the parametric 2D breast model: one JSON-serialisable object per phantom.

The outline follows Banterle et al. 2025: an arc of a rotated ellipse (a, b, phi, X0, Y0, Alpha_e) in a
unit square (the image's largest side is 1, chest wall on the right, y down); the closing chord is the
chest wall. mammosynth renders it in its standard orientation (chest wall at the left edge).
Positions of lesions are fractions of the output image (x from the chest wall, y from the top).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

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
        if self.view not in ("CC", "MLO"):
            raise InputError(where, f"unknown view {self.view!r}; known: CC, MLO")
        if self.laterality not in ("L", "R"):
            raise InputError(where, f"unknown laterality {self.laterality!r}; known: L, R")
        if self.density not in DENSITY_FRACTION:
            raise InputError(where, f"unknown density {self.density!r}; known: A, B, C, D")
        o = self.outline
        if o.a <= 0 or o.b <= 0:
            raise InputError(where, "outline semi-axes a and b must be positive")
        for mass in self.masses:
            if mass.kind not in MASS_KINDS:
                raise InputError(where, f"unknown mass kind {mass.kind!r}; known: {', '.join(MASS_KINDS)}")
            if mass.shape not in MASS_SHAPES:
                raise InputError(where, f"unknown mass shape {mass.shape!r}; known: {', '.join(MASS_SHAPES)}")
            if mass.size_mm <= 0:
                raise InputError(where, "mass size_mm must be positive")
        if not 0 <= self.skin_mm <= 20:
            raise InputError(where, "skin_mm must be within 0–20")
        return self

    @property
    def fibroglandular_fraction(self) -> float:
        return DENSITY_FRACTION[self.density] if self.fgt_fraction is None else float(self.fgt_fraction)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> PhantomParams:
        data = dict(data)
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise InputError("phantom parameters", f"unknown keys: {', '.join(sorted(unknown))}")
        try:
            data["outline"] = Outline(**data.get("outline", {}))
            data["masses"] = [Mass(**m) for m in data.get("masses", [])]
            data["calcifications"] = [CalcCluster(**c) for c in data.get("calcifications", [])]
        except TypeError as exc:
            raise InputError("phantom parameters", str(exc)) from None
        if "pectoral" in data:
            data["pectoral"] = tuple(data["pectoral"])
        return cls(**data).validate()
