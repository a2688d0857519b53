"""Breast-shape statistics: how much of the frame the breast fills, and — for CC images — the six outline
parameters of the parametric model (a, b, phi, X0, Y0, Alpha_e) fitted by
:func:`~mammosynth.phantom.fit.fit_outline`, compared between sets with the same two-sample tests as the
moments. Images in native orientation are turned chest wall left first (the side holding more breast).
"""

from __future__ import annotations

import numpy as np

from mammosynth.errors import InputError
from mammosynth.evaluate.moments import compare_columns
from mammosynth.phantom.fit import fit_outline

OUTLINE_FIELDS = ("a", "b", "phi", "X0", "Y0", "Alpha_e")


def breast_mask(image: np.ndarray, level: float = 0.02) -> np.ndarray:
    """Pixels brighter than ``level`` (prepared and generated images have a black background)."""
    return image > level


def outline_parameters(images: np.ndarray, fit_px: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per image the fitted outline parameters (N, 6) and the fit's intersection-over-union; rows of
    images whose breast is too small to fit are NaN.

    Example:
        >>> from mammosynth.phantom.labelmap import breast_region
        >>> from mammosynth.phantom.params import Outline, PhantomParams
        >>> truth = Outline(a=0.5, b=0.42, phi=0.1, X0=0.9, Y0=0.5, Alpha_e=1.5)
        >>> params, iou = outline_parameters(breast_region(PhantomParams(outline=truth), 64)[None] * 0.5)
        >>> bool(iou[0] > 0.9), bool(abs(params[0, 4] - 0.5) < 0.05)
        (True, True)
    """
    params, ious = np.full((len(images), 6), np.nan), np.full(len(images), np.nan)
    for i, image in enumerate(images):
        mask = breast_mask(image)
        half = mask.shape[1] // 2
        if mask[:, half:].sum() > mask[:, :half].sum():  # chest wall on the right: a right breast, native view
            mask = mask[:, ::-1]
        try:
            outline, ious[i] = fit_outline(mask, size=fit_px)
        except InputError:
            continue
        params[i] = [getattr(outline, name) for name in OUTLINE_FIELDS]
    return params, ious


def compare_shapes(
    real: np.ndarray,
    synthetic: np.ndarray,
    real_cc: np.ndarray,
    synthetic_cc: np.ndarray,
    max_fits: int = 40,
    seed: int = 0,
) -> dict:
    """Breast area fraction of every image, and outline parameters of up to ``max_fits`` CC images per set
    (boolean ``*_cc`` masks pick them; chosen at random with ``seed``), each compared real vs synthetic."""

    def areas(images: np.ndarray) -> np.ndarray:  # image by image: no stack-sized mask
        return np.array([[breast_mask(image).mean()] for image in images])

    area = compare_columns(areas(real), areas(synthetic), ("breast_area_fraction",))
    out: dict = {"area": area["breast_area_fraction"]}
    rng = np.random.default_rng(seed)
    picks = []
    for images, cc in ((real, real_cc), (synthetic, synthetic_cc)):
        chosen = np.flatnonzero(cc)
        picks.append(images[rng.permutation(chosen)[:max_fits]])
    if min(len(p) for p in picks) < 2:
        out["outline"] = {"skipped": "fewer than 2 CC images in a set (the outline model is the CC view's)"}
        return out
    (real_params, real_iou), (synthetic_params, synthetic_iou) = (outline_parameters(p) for p in picks)
    real_params, synthetic_params = (p[~np.isnan(p).any(1)] for p in (real_params, synthetic_params))
    if min(len(real_params), len(synthetic_params)) < 2:
        out["outline"] = {"skipped": "the outline fit failed on nearly every CC image"}
        return out
    out["outline"] = {
        "fitted": [len(real_params), len(synthetic_params)],
        "fit_iou_median": [float(np.nanmedian(real_iou)), float(np.nanmedian(synthetic_iou))],
        "parameters": compare_columns(real_params, synthetic_params, OUTLINE_FIELDS),
    }
    return out
