"""Mapping tables from each source's vocabulary to the record schema.

Density (BI-RADS 5th edition A–D):

====================  =====================================  ======
source                source value                           record
====================  =====================================  ======
mini-MIAS             F (fatty)                              A
mini-MIAS             G (fatty-glandular)                    B
mini-MIAS             D (dense-glandular)                    C
CBIS-DDSM             1, 2, 3, 4                             A, B, C, D
VinDr-Mammo           DENSITY A … DENSITY D                  A … D
====================  =====================================  ======

mini-MIAS has three tissue classes for four BI-RADS ones; D (dense-glandular) covers BI-RADS C and D and
is mapped to C, the larger of the two in screening populations. Finding categories and pathologies are
mapped by the tables below; a value in none of them is an error that lists it.
"""

from __future__ import annotations

from collections.abc import Iterable

from mammosynth.errors import InputError

MIAS_DENSITY = {"F": "A", "G": "B", "D": "C"}
CBIS_DENSITY = {"1": "A", "2": "B", "3": "C", "4": "D", "0": None}
VINDR_DENSITY = {f"DENSITY {c}": c for c in "ABCD"}

#: mini-MIAS abnormality class → (category, attributes)
MIAS_CLASS = {
    "CALC": ("calcification", {}),
    "CIRC": ("mass", {"margin": "circumscribed"}),
    "SPIC": ("mass", {"margin": "spiculated"}),
    "MISC": ("mass", {"margin": "ill-defined"}),
    "ARCH": ("architectural_distortion", {}),
    "ASYM": ("asymmetry", {}),
}
MIAS_SEVERITY = {"B": "benign", "M": "malignant"}

VINDR_CATEGORY = {
    "mass": "mass",
    "suspicious calcification": "calcification",
    "architectural distortion": "architectural_distortion",
    "asymmetry": "asymmetry",
    "focal asymmetry": "asymmetry",
    "global asymmetry": "asymmetry",
    "suspicious lymph node": "other",
    "skin thickening": "other",
    "skin retraction": "other",
    "nipple retraction": "other",
    "other": "other",
}
CBIS_CATEGORY = {"mass": "mass", "calcification": "calcification"}
CBIS_PATHOLOGY = {"malignant": "malignant", "benign": "benign", "benign_without_callback": "benign"}

VIEW_ALIASES = {
    "CC": "CC",
    "MLO": "MLO",
    "XCCL": "CC",
    "XCCM": "CC",
    "ML": "other",
    "LM": "other",
    "LMO": "other",
    "SIO": "other",
    "FB": "other",
    "AT": "other",
    "OTHER": "other",
}
LATERALITY_ALIASES = {"L": "L", "LEFT": "L", "R": "R", "RIGHT": "R"}


def normalise_view(value: str | None, where: str | None = None) -> str | None:
    """``'cc'`` → ``'CC'``; ML/LM/XCCL and the other DICOM view codes map to CC or ``'other'``. With ``where``
    (a table a user can correct) a value that is no view code is an error naming it; without (a DICOM header)
    it is ``'other'``.

    Example:
        >>> normalise_view("xccl"), normalise_view("SIO")
        ('CC', 'other')
    """
    if value is None or str(value).strip() == "":
        return None
    code = str(value).strip().upper()
    if code not in VIEW_ALIASES and where is not None:
        raise InputError(
            where, f"unknown view {value!r}; known: {', '.join(VIEW_ALIASES)} (or map it with values.view)"
        )
    return VIEW_ALIASES.get(code, "other")


def normalise_laterality(value: str | None) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    return LATERALITY_ALIASES.get(str(value).strip().upper())


def map_values(where: str, column: str, values: Iterable[str], table: dict) -> None:
    """Raise one error listing every value of ``column`` that ``table`` does not know."""
    unknown = sorted({v for v in values if v not in table})
    if unknown:
        raise InputError(where, f"unknown values in column {column!r}: {', '.join(map(repr, unknown))}")
