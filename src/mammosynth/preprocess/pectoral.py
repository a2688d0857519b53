"""Pectoral-muscle mask for MLO views in the standard orientation (chest wall at the left).

Method: inside the upper part of the breast near the chest wall, the muscle is the bright region
that starts at the chest wall; Otsu's threshold on those breast pixels gives its extent per row, and a
RANSAC straight-line fit to the per-row extents (skimage.measure.ransac) gives the muscle's edge, so
glandular tissue that touches it does not leak into the mask. Hand-written: no kept library segments
the pectoral muscle.
"""

from __future__ import annotations

import numpy as np
from skimage import filters, measure

from mammosynth.preprocess.resize import resize_image, resize_mask

WORK_SIZE = 256


def pectoral_mask(pixels: np.ndarray, breast: np.ndarray, work_size: int = WORK_SIZE) -> np.ndarray:
    """Boolean pectoral mask (possibly empty) of an MLO image with the chest wall at the left."""
    height, width = pixels.shape
    scale = work_size / max(height, width)
    sw, sh = max(8, round(width * scale)), max(8, round(height * scale))
    small = filters.gaussian(resize_image(pixels, sw, sh), sigma=1.5, preserve_range=True)
    inside = resize_mask(breast, sw, sh)
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size < 10:
        return np.zeros_like(breast)
    top = int(rows[0])
    region_rows = slice(top, top + int(0.7 * (rows[-1] - top)))
    region = small[region_rows, : max(2, int(0.7 * sw))]
    region_inside = inside[region_rows, : region.shape[1]]
    values = region[region_inside]
    if values.size < 50:
        return np.zeros_like(breast)
    threshold = filters.threshold_otsu(values)
    bright = (region > threshold) & region_inside
    extents = []
    for r in range(bright.shape[0]):
        row = bright[r]
        if not row[:2].any():
            break  # the muscle is a run of bright pixels starting at the chest wall
        run = int(np.argmin(row)) if not row.all() else row.size
        extents.append((run, r + top))
    if len(extents) < 8:
        return np.zeros_like(breast)
    data = np.array(extents, dtype=float)  # (x, y)
    try:
        model, inliers = measure.ransac(
            data, measure.LineModelND, min_samples=2, residual_threshold=3.0, max_trials=200, rng=0
        )
    except Exception:
        return np.zeros_like(breast)
    if model is None or inliers is None or inliers.sum() < 6:
        return np.zeros_like(breast)
    origin, direction = model.origin, model.direction
    if abs(direction[1]) < 1e-6:
        return np.zeros_like(breast)
    yy, xx = np.mgrid[0:sh, 0:sw]
    # x on the fitted line at each row; the muscle lies to the left of it
    line_x = origin[0] + (yy - origin[1]) * direction[0] / direction[1]
    slope = direction[0] / direction[1]
    if slope > 0:  # the edge must run from the top outward toward the chest wall lower down
        return np.zeros_like(breast)
    small_mask = (xx < line_x) & inside
    if small_mask.sum() > 0.5 * inside.sum():
        return np.zeros_like(breast)
    return resize_mask(small_mask, width, height) & breast
