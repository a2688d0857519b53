"""Spatial layouts drawn by the parametric breast model, framed like prepared images (chest wall left,
breast cropped and scaled to the square), as the 3-channel spatial condition of the generators."""

from __future__ import annotations

import numpy as np

from mammosynth.models.conditioning import FIELDS, spatial_from_labels
from mammosynth.phantom.labelmap import draw_label_map
from mammosynth.phantom.params import PhantomParams
from mammosynth.phantom.sampling import sample_params
from mammosynth.preprocess.geometry import FrameTransform

LESION_NAMES = {("mass", "benign"): "benign-mass", ("mass", "malignant"): "malignant-mass",
                ("mass", None): "malignant-mass", ("calcification", "benign"): "calcification",
                ("calcification", "malignant"): "calcification", ("calcification", None): "calcification"}


def frame_labels(labels: np.ndarray, size: int, margin: float = 0.01) -> np.ndarray:
    """Crop a label map to its breast and fit it into ``size`` × ``size`` the way ``prepare`` does."""
    breast = labels > 0
    rows, cols = np.flatnonzero(breast.any(axis=1)), np.flatnonzero(breast.any(axis=0))
    height, width = labels.shape
    pad = round(margin * max(width, height))
    crop = (int(cols[0]), max(0, int(rows[0]) - pad), min(width, int(cols[-1]) + 1 + pad),
            min(height, int(rows[-1]) + 1 + pad))
    return FrameTransform.fit(width, height, False, crop, size).labels(labels)


def phantom_layout(seed: int, size: int, conditions: dict) -> tuple[np.ndarray, PhantomParams]:
    """A phantom drawn for ``conditions`` (unknown fields drawn at random from ``seed``) → spatial channels
    (3, size, size) in the prepared frame, and the phantom's parameters."""
    lesion = "none"
    category = conditions.get("category")
    if category in ("mass", "calcification"):
        lesion = LESION_NAMES[(category, conditions.get("pathology"))]
    view = conditions.get("view") if conditions.get("view") in FIELDS["view"] else None
    params = sample_params(seed, view=view, laterality=conditions.get("laterality"),
                           density=conditions.get("density"), lesion=lesion,
                           lesion_size_mm=conditions.get("lesion_size_mm"))
    labels = frame_labels(draw_label_map(params, size * 2), size)
    return spatial_from_labels(labels), params
