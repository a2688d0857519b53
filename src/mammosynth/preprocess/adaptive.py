"""The CC model publication's binarisation and closing (Banterle et al. 2025, MATLAB's ``histeq``,
``imbinarize(I, 'adaptive')`` and ``imclose`` with a structuring element larger than the image), reproduced
because the publication's outline parameters depend on their details; ``segment`` borrows them to find dark
fat at the chest wall and :mod:`mammosynth.phantom.skin_line` to fit the publication's outline.

Hand-written where no kept library does the same thing: ``skimage.exposure.equalize_hist`` and
``skimage.filters.threshold_local`` use other rules, and a closing with a structuring element larger than the
image is a four-quadrant test (done with cumulative maxima, not a 3,000-pixel-wide footprint).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

LEVELS = 64  # histeq's default number of output levels
SCALE = 1.1  # adaptthresh's scale factor at its default sensitivity 0.5, bright foreground


def equalize_64(image: np.ndarray) -> np.ndarray:
    """MATLAB's ``histeq`` of a uint8 image onto 64 equally filled levels (uint8 out).

    Each input level goes to the first output level whose cumulative count reaches the input level's
    cumulative count less half its own count.

    Example:
        >>> out = equalize_64(np.repeat(np.arange(4, dtype=np.uint8), 25).reshape(10, 10))
        >>> sorted(set(out.ravel().tolist()))
        [61, 93, 158, 223]
    """
    counts = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    cumulative = np.cumsum(counts)
    target = np.cumsum(np.full(LEVELS, image.size / LEVELS))
    tolerance = counts / 2
    tolerance[[0, -1]] = 0
    error = target[:, None] - cumulative[None, :] + tolerance[None, :]
    error[error < -image.size * np.sqrt(np.finfo(np.float64).eps)] = image.size
    level = np.argmin(error, axis=0) / (LEVELS - 1)
    return np.round(level * 255).astype(np.uint8)[image]


def binarize_adaptive(image: np.ndarray) -> np.ndarray:
    """MATLAB's ``imbinarize(I, 'adaptive')``: brighter than 1.1 × the mean over a box of 2⌊size/16⌋ + 1
    pixels per axis (edges replicated).

    Example:
        >>> img = np.zeros((64, 64), np.uint8); img[:, :20] = 200
        >>> bw = binarize_adaptive(img)
        >>> bool(bw[30, 19]), bool(bw[30, 5]), bool(bw[30, 40])
        (True, False, False)
    """
    values = image.astype(np.float64) / 255
    box = tuple(2 * (np.array(values.shape) // 16) + 1)
    return values > np.clip(SCALE * ndimage.uniform_filter(values, size=box, mode="nearest"), 0, 1)


def quadrant_hull(mask: np.ndarray) -> np.ndarray:
    """The closing of ``mask`` with a square structuring element larger than the image (outside = 0):
    the pixels with some of ``mask`` in each of their four closed quadrants.

    Example:
        >>> m = np.zeros((5, 5), bool); m[0, 0] = m[4, 4] = m[0, 4] = True
        >>> quadrant_hull(m).astype(int)[:, ::2].tolist()
        [[1, 1, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]]
    """

    def seen(a: np.ndarray) -> np.ndarray:  # some of ``a`` at rows ≤ i and columns ≤ j
        return np.maximum.accumulate(np.maximum.accumulate(a, axis=0), axis=1)

    a = mask.astype(np.uint8)
    quadrants = (seen(a), seen(a[:, ::-1])[:, ::-1], seen(a[::-1])[::-1], seen(a[::-1, ::-1])[::-1, ::-1])
    return np.logical_and.reduce(quadrants).astype(bool)


def near(mask: np.ndarray, distance_px: int) -> np.ndarray:
    """The pixels within ``distance_px`` steps (4-connected) of ``mask``: ``distance_px`` binary dilations
    by the cross, in one distance transform.

    Example:
        >>> m = np.zeros((5, 5), bool); m[2, 2] = True
        >>> near(m, 1).astype(int)[1:4, 1:4].tolist()
        [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    """
    return ndimage.distance_transform_cdt(~mask, metric="taxicab") <= distance_px
