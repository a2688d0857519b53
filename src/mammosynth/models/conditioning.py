"""Condition fields shared by every generator family: vocabularies, validation, encoding to tensors.

Every categorical field has index 0 = ``unknown`` so that any field can be left out at generation and
dropped at training time (classifier-free guidance per field). Lesion size and position are continuous
with a "known" flag. The spatial condition is a 3-channel map (breast, pectoral muscle, lesion) in the
prepared orientation (chest wall on the left), built from prepared masks or from a phantom label map.

Example:
    >>> c = validate_conditions({"view": "MLO", "density": "C", "lesion": "malignant-mass"})
    >>> c["category"], c["pathology"]
    ('mass', 'malignant')
    >>> encode_conditions([c])["categorical"].shape
    torch.Size([1, 6])
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from mammosynth.datasets.schema import BIRADS, CATEGORIES, DENSITIES, LATERALITIES, Record
from mammosynth.errors import InputError
from mammosynth.phantom.labelmap import LABELS

UNKNOWN = "unknown"
FIELDS: dict[str, tuple[str, ...]] = {
    "view": ("CC", "MLO"),
    "laterality": LATERALITIES,
    "density": DENSITIES,
    "birads": BIRADS,
    "category": ("none", *CATEGORIES),
    "pathology": ("none", "benign", "malignant"),
}
CONTINUOUS = ("lesion_size_mm", "lesion_x", "lesion_y")
SIZE_SCALE_MM = 50.0
SPATIAL_CHANNELS = ("breast", "pectoral", "lesion")
NUM_CLASSES = len(LABELS)  # classes of the parametric model's label map (phantom.labelmap)
LESIONS = {
    "none": ("none", "none"),
    "benign-mass": ("mass", "benign"),
    "malignant-mass": ("mass", "malignant"),
    "calcification": ("calcification", None),
    "benign-calcification": ("calcification", "benign"),
    "malignant-calcification": ("calcification", "malignant"),
}


def validate_conditions(conditions: dict, where: str = "conditions") -> dict:
    """Check and normalise a condition dict; ``lesion`` shorthands expand to category + pathology.

    Unknown keys and values raise :class:`InputError` naming ``where``.
    """
    out: dict = {}
    for key, value in conditions.items():
        if value is None or value == "" or value == UNKNOWN:
            continue
        if key == "lesion":
            if value not in LESIONS:
                raise InputError(where, f"unknown lesion {value!r}; known: {', '.join(LESIONS)}")
            category, pathology = LESIONS[value]
            out["category"] = category
            if pathology:
                out["pathology"] = pathology
        elif key in FIELDS:
            value = str(value).upper() if key in ("view", "laterality", "density") else str(value)
            if value not in FIELDS[key]:
                raise InputError(where, f"unknown {key} {value!r}; known: {', '.join(FIELDS[key])} or unknown")
            out[key] = value
        elif key in CONTINUOUS:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(where, f"{key} must be a number, got {value!r}") from None
            if not math.isfinite(number) or number < 0 or (key != "lesion_size_mm" and number > 1):
                raise InputError(where, f"{key} out of range: {value!r} (positions are fractions 0–1, size in mm)")
            out[key] = number
        else:
            known = ", ".join([*FIELDS, *CONTINUOUS, "lesion"])
            raise InputError(where, f"unknown condition field {key!r}; known: {known}")
    placed = [key for key in CONTINUOUS if key in out]
    if conditions.get("lesion") == "none" and placed:
        raise InputError(where, f"{placed[0]} describes a lesion, but the lesion asked for is none")
    return out


def conditions_from_record(record: Record) -> dict:
    """Conditions of a prepared record: its attributes plus the first finding's kind, size and centre."""
    conditions = {
        "view": record.view if record.view in FIELDS["view"] else None,
        "laterality": record.laterality,
        "density": record.density,
        "birads": record.birads,
        "category": "none" if not record.findings else record.findings[0].category,
        "pathology": "none" if not record.findings else record.findings[0].pathology,
    }
    if record.findings and record.width and record.height:
        finding = record.findings[0]
        box = _finding_box(finding.geometry, finding.coords)
        if box is not None:
            x0, y0, x1, y1 = box
            conditions["lesion_x"] = float(np.clip((x0 + x1) / 2 / record.width, 0, 1))
            conditions["lesion_y"] = float(np.clip((y0 + y1) / 2 / record.height, 0, 1))
            size = finding.attributes.get("size_mm")
            if size is None and record.spacing_mm:
                size = max(x1 - x0, y1 - y0) * record.spacing_mm
            if size is not None:
                conditions["lesion_size_mm"] = float(size)
    if conditions["pathology"] == "unknown":
        conditions["pathology"] = None
    return {k: v for k, v in conditions.items() if v is not None}


def _finding_box(geometry: str | None, coords: list[float]) -> tuple[float, float, float, float] | None:
    if geometry == "box" and len(coords) == 4:
        return tuple(coords)
    if geometry == "circle" and len(coords) == 3:
        x, y, r = coords
        return x - r, y - r, x + r, y + r
    if geometry == "polygon" and len(coords) >= 6:
        xs, ys = coords[0::2], coords[1::2]
        return min(xs), min(ys), max(xs), max(ys)
    return None


def encode_conditions(conditions: list[dict]) -> dict[str, torch.Tensor]:
    """Validated condition dicts → ``categorical`` (N, 6) long indices (0 = unknown) and ``continuous``
    (N, 3, 2) float (value, known)."""
    categorical = torch.zeros(len(conditions), len(FIELDS), dtype=torch.long)
    continuous = torch.zeros(len(conditions), len(CONTINUOUS), 2)
    for i, cond in enumerate(conditions):
        for j, (name, vocab) in enumerate(FIELDS.items()):
            if name in cond:
                categorical[i, j] = vocab.index(cond[name]) + 1
        for j, name in enumerate(CONTINUOUS):
            if name in cond:
                value = cond[name] / SIZE_SCALE_MM if name == "lesion_size_mm" else cond[name]
                continuous[i, j] = torch.tensor([value, 1.0])
    return {"categorical": categorical, "continuous": continuous}


def drop_conditions(
    encoded: dict[str, torch.Tensor], p_field: float, p_all: float, rand: Callable[..., torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Training-time dropout: each field becomes unknown with ``p_field``, all fields with ``p_all``.
    ``rand(*shape)`` draws uniform numbers, one row per example (``StepContext.rand`` in training)."""
    categorical, continuous = encoded["categorical"].clone(), encoded["continuous"].clone()
    n = categorical.shape[0]
    drop_all = rand(n, 1).cpu() < p_all
    drop_cat = (rand(n, categorical.shape[1]).cpu() < p_field) | drop_all
    drop_cont = (rand(n, 1).cpu() < p_field) | drop_all
    categorical[drop_cat] = 0
    continuous[drop_cont.expand(-1, continuous.shape[1])] = 0
    out = {"categorical": categorical, "continuous": continuous}
    if "spatial" in encoded:
        drop_spatial = ((rand(n, 1).cpu() < p_field) | drop_all).view(n, 1, 1, 1)
        out["spatial"] = encoded["spatial"].masked_fill(drop_spatial.to(encoded["spatial"].device), 0.0)
    return out


def forget_fields(encoded: dict[str, torch.Tensor], fields: list[str] | None) -> dict[str, torch.Tensor]:
    """The same conditions with ``fields`` set to unknown (all fields and the spatial map when ``None``);
    the unconditional branch of classifier-free guidance."""
    categorical, continuous = encoded["categorical"].clone(), encoded["continuous"].clone()
    names = list(FIELDS)
    for field in fields if fields is not None else [*names, "lesion_geometry", "spatial"]:
        if field in names:
            categorical[:, names.index(field)] = 0
        elif field in ("lesion_geometry", *CONTINUOUS):
            continuous.zero_()
    out = {"categorical": categorical, "continuous": continuous}
    if "spatial" in encoded:
        out["spatial"] = encoded["spatial"] * 0 if fields is None or "spatial" in fields else encoded["spatial"]
    return out


class ConditionEncoder(nn.Module):
    """Attribute conditions → cross-attention tokens (N, 7, dim) and a vector added to the timestep
    embedding (N, embed_dim), FiLM-style. One token per categorical field plus one for lesion geometry."""

    def __init__(self, dim: int, embed_dim: int) -> None:
        super().__init__()
        self.fields = nn.ModuleList(nn.Embedding(len(vocab) + 1, dim) for vocab in FIELDS.values())
        self.geometry = nn.Sequential(nn.Linear(2 * len(CONTINUOUS), dim), nn.SiLU(), nn.Linear(dim, dim))
        self.field_position = nn.Parameter(torch.zeros(len(FIELDS) + 1, dim))
        self.to_embedding = nn.Sequential(
            nn.Linear((len(FIELDS) + 1) * dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )

    def forward(self, categorical: torch.Tensor, continuous: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = [embedding(categorical[:, j]) for j, embedding in enumerate(self.fields)]
        tokens.append(self.geometry(continuous.flatten(1)))
        tokens = torch.stack(tokens, dim=1) + self.field_position
        return tokens, self.to_embedding(tokens.flatten(1))


def spatial_from_masks(
    breast: np.ndarray | None, pectoral: np.ndarray | None, lesion: np.ndarray | None, shape: tuple[int, int]
) -> np.ndarray:
    """Stack the three spatial channels (float32 0/1, missing ones zero)."""
    out = np.zeros((len(SPATIAL_CHANNELS), *shape), dtype=np.float32)
    for k, mask in enumerate((breast, pectoral, lesion)):
        if mask is not None:
            if mask.shape != shape:
                raise ValueError(f"mask of shape {mask.shape} does not match image {shape}")
            out[k] = mask > 0.5
    return out


def one_hot_labels(labels: torch.Tensor) -> torch.Tensor:
    """(N, H, W) integer classes of the parametric model's label map → (N, 9, H, W) float one-hot: the input
    of the translator and of a GAN built with ``model.labels``."""
    return nn.functional.one_hot(labels.long(), NUM_CLASSES).permute(0, 3, 1, 2).float()


def spatial_from_labels(labels: np.ndarray) -> np.ndarray:
    """Spatial channels from a parametric-model label map (0 background … 8 calcification)."""
    from mammosynth.phantom.labelmap import BENIGN_MASS, CALCIFICATION, MALIGNANT_MASS, PECTORAL

    lesion = np.isin(labels, (BENIGN_MASS, MALIGNANT_MASS, CALCIFICATION))
    return spatial_from_masks(labels > 0, labels == PECTORAL, lesion, labels.shape)
