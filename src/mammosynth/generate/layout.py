"""Spatial layouts drawn by the parametric breast model, framed like prepared images (chest wall left,
breast cropped and scaled to the square), as the 3-channel spatial condition of the generators."""

from __future__ import annotations

import numpy as np

from mammosynth.models.conditioning import FIELDS, spatial_from_labels
from mammosynth.phantom.labelmap import prepared_label_map
from mammosynth.phantom.params import PhantomParams
from mammosynth.phantom.sampling import sample_params

# a seed stream of its own (above any resampling attempt, not calibration's 0xCA1): see :func:`layout_seed`
LAYOUT_STREAM = 0x1A40

LESION_NAMES = {
    ("mass", "benign"): "benign-mass",
    ("mass", "malignant"): "malignant-mass",
    ("mass", None): "malignant-mass",
    ("calcification", "benign"): "calcification",
    ("calcification", "malignant"): "calcification",
    ("calcification", None): "calcification",
}


def layout_seed(seed: int, index: int) -> int:
    """Seed of the layout drawn for generated image ``index`` of a run with ``seed``. Not the image's own seed
    (``image_seed(seed, index)``): a phantom dataset made with the same seed draws its image ``index`` from
    that one, and the layout would repeat its fibroglandular pattern (IoU 0.53 against 0.32 between unrelated
    draws at 64², measured on 40 pairs), so a twin could re-render a held-out or training phantom's tissue.

    Example:
        >>> from mammosynth.phantom.dataset import image_seed
        >>> layout_seed(0, 3) != image_seed(0, 3)
        True
    """
    return int(np.random.SeedSequence([int(seed), int(index), LAYOUT_STREAM]).generate_state(1, dtype=np.uint32)[0])


def phantom_layout(seed: int, size: int, conditions: dict) -> tuple[np.ndarray, np.ndarray, PhantomParams]:
    """A phantom drawn for ``conditions`` (unknown fields drawn at random from ``seed``) → its label map
    (size, size) and spatial channels (3, size, size) in the prepared frame, and its parameters."""
    lesion = "none"
    category = conditions.get("category")
    if category in ("mass", "calcification"):
        lesion = LESION_NAMES[(category, conditions.get("pathology"))]
    view = conditions.get("view") if conditions.get("view") in FIELDS["view"] else None
    params = sample_params(
        seed,
        view=view,
        laterality=conditions.get("laterality"),
        density=conditions.get("density"),
        lesion=lesion,
        lesion_size_mm=conditions.get("lesion_size_mm"),
    )
    labels, _ = prepared_label_map(params, size)
    return labels, spatial_from_labels(labels), params


def phantom_layouts(
    seeds: list[int], size: int, conditions: list[dict]
) -> tuple[np.ndarray, np.ndarray, list[PhantomParams]]:
    """:func:`phantom_layout` for each (seed, conditions): label maps (N, size, size), spatial channels
    (N, 3, size, size) and parameters."""
    drawn = [phantom_layout(seed, size, c) for seed, c in zip(seeds, conditions, strict=True)]
    return np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn]), [d[2] for d in drawn]
