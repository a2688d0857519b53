"""The publication's skin line and ellipse estimator, so ``fit`` returns the numbers Banterle et al. would.

Their MATLAB (``breast_profile_parameters_extraction/*_Parameters.m`` of cnr-isti-vclab/CC-Mammograms-
Generation_GUI) equalises the histogram (``histeq``, 64 levels), binarises adaptively (``imbinarize``:
brighter than 1.1 × the local mean over a box of 2⌊size/16⌋ + 1 pixels), closes with a structuring element
larger than the image, takes the Canny edges of what is closed, and fits a conic to those points by
algebraic least squares (Ohad Gal's ``fit_ellipse``). Each step is reproduced here because the published
numbers depend on its details: an algebraic fit of a partial arc is biased, and the bias is part of the
convention. On the publication's own full-size images this gives its parameters to the third decimal.

The binarisation and closing live in :mod:`mammosynth.preprocess.adaptive`; the conic fit is hand-written
because ``skimage.measure.EllipseModel`` is a different estimator. Canny is ``skimage.feature.canny``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import feature

from mammosynth.preprocess.adaptive import binarize_adaptive, equalize_64, near, quadrant_hull

GATE = 0.05  # what of the foreground lies this far (× the long side) from the breast mask is kept whole


def skin_line(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(n, 2) row, column pixels of the publication's skin line in ``image`` (standard orientation: chest
    wall at the left edge; values quantised to 256 levels over the image's own range).

    With ``mask`` (the breast), what the binarisation finds apart from the breast and farther than ``GATE``
    from it (labels, markers) is left out: its boxes are set to the background and the image is binarised
    again, so it neither stretches the closing nor shifts the equalisation. Clean images are untouched.

    Example:
        >>> img = np.zeros((120, 80)); rr, cc = np.mgrid[:120, :80]
        >>> img[((rr - 60) / 50) ** 2 + (cc / 60) ** 2 < 1] = 0.5
        >>> line = skin_line(img)
        >>> int(line[:, 1].max()) in (59, 60), bool(np.all(line[:, 1] > 0))
        (True, True)
    """
    values = np.asarray(image, dtype=np.float64)
    foreground = _binarized(values)
    if mask is not None:
        around = near(mask, max(1, round(GATE * max(mask.shape))))
        far = _apart(foreground, around)
        if far.any():
            boxes = np.zeros_like(far)
            for box in ndimage.find_objects(ndimage.label(far)[0]):
                boxes[box] = True
            boxes = ndimage.binary_dilation(boxes, iterations=2) & ~around
            values = np.where(boxes, values[~boxes].min(), values)
            foreground = _binarized(values)
            foreground &= ~_apart(foreground, around)
    return edges(quadrant_hull(foreground))


def _binarized(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    return binarize_adaptive(equalize_64(np.round((values - lo) / (hi - lo or 1.0) * 255).astype(np.uint8)))


def _apart(foreground: np.ndarray, near: np.ndarray) -> np.ndarray:
    """The pieces of ``foreground`` that do not reach ``near``."""
    parts, _ = ndimage.label(foreground)
    return (parts > 0) & ~np.isin(parts, np.unique(parts[near & foreground]))


def edges(closed: np.ndarray) -> np.ndarray:
    """(n, 2) row, column pixels of the Canny edges of the filled breast ``closed`` (standard orientation),
    carried to the left edge first when it stops short of it, so the chest wall is no edge.

    Example:
        >>> closed = np.zeros((40, 30), bool); closed[5:35, 2:20] = True
        >>> line = edges(closed)
        >>> wall = (line[:, 1] <= 2) & (line[:, 0] > 8) & (line[:, 0] < 30)  # no edge along column 2
        >>> bool(wall.any()), int(line[:, 1].max()) in (19, 20)
        (False, True)
    """
    closed = closed.copy()
    columns = closed.any(0).nonzero()[0]
    if len(columns) and columns[0] > 0:
        closed[:, : columns[0]] = closed[:, columns[:1]]
    return np.argwhere(feature.canny(closed.astype(np.float64), sigma=np.sqrt(2), mode="nearest"))


@dataclass(frozen=True)
class Conic:
    """An ellipse as ``fit_ellipse`` reports it: semi-axes ``a`` (along the tilted x axis) and ``b``, tilt
    ``phi`` (|phi| < π/4, the curve drawn rotated by −phi) and centre (``x0``, ``y0``); as an
    :class:`~mammosynth.phantom.params.Outline` it draws with :func:`~mammosynth.phantom.outline.ellipse_point`."""

    a: float
    b: float
    phi: float
    x0: float
    y0: float


def fit_conic(x: np.ndarray, y: np.ndarray) -> Conic | None:
    """Ohad Gal's ``fit_ellipse``: the conic A x² + B xy + C y² + D x + E y = 1 through the centred points
    by least squares, its tilt removed; ``None`` when it is not an ellipse.

    Example:
        >>> t = np.linspace(0.3, 2.5, 50)
        >>> e = fit_conic(0.8 + 0.5 * np.cos(t), 0.5 + 0.3 * np.sin(t))
        >>> [round(v, 3) for v in (e.a, e.b, e.phi, e.x0, e.y0)]
        [0.5, 0.3, 0.0, 0.8, 0.5]
    """
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if len(x) < 5:
        return None
    mx, my = x.mean(), y.mean()
    x, y = x - mx, y - my
    design = np.stack([x * x, x * y, y * y, x, y], axis=1)
    try:
        a, b, c, d, e = np.linalg.solve(design.T @ design, design.sum(0))
    except np.linalg.LinAlgError:
        return None
    phi, cos, sin = 0.0, 1.0, 0.0
    if min(abs(b / a), abs(b / c)) > 1e-3:
        phi = 0.5 * float(np.arctan(b / (c - a)))
        cos, sin = np.cos(phi), np.sin(phi)
        a, c, d, e = (
            a * cos**2 - b * cos * sin + c * sin**2,
            a * sin**2 + b * cos * sin + c * cos**2,
            d * cos - e * sin,
            d * sin + e * cos,
        )
        mx, my = cos * mx - sin * my, sin * mx + cos * my
    if not a * c > 0:
        return None
    if a < 0:
        a, c, d, e = -a, -c, -d, -e
    x0, y0 = mx - d / 2 / a, my - e / 2 / c
    f = 1 + d * d / (4 * a) + e * e / (4 * c)
    return Conic(
        a=float(np.sqrt(f / a)),
        b=float(np.sqrt(f / c)),
        phi=phi,
        x0=float(cos * x0 + sin * y0),
        y0=float(-sin * x0 + cos * y0),
    )


def end_angle(conic: Conic, y_top: float) -> float:
    """``Alpha_e`` as the publication computes it: where the ellipse meets the height ``y_top`` of the skin
    line's top end, the left crossing (the real part of the roots when the ellipse stays below), then the
    upper point of the ellipse above that x, as an angle of the parametrisation.

    Example:
        >>> round(end_angle(Conic(a=0.5, b=0.4, phi=0.0, x0=1.0, y0=0.6), 1.0), 4)  # the top: π/2
        1.5708
    """
    c, s = np.cos(-conic.phi), np.sin(-conic.phi)
    a2, b2 = conic.a**2, conic.b**2
    dy = y_top - conic.y0
    cross = 2 * s * c * (1 / a2 - 1 / b2)
    roots = np.roots([c * c / a2 + s * s / b2, dy * cross, dy * dy * (s * s / a2 + c * c / b2) - 1])
    dx = float(roots.real.min())  # x − x0 of the left crossing
    heights = np.roots([s * s / a2 + c * c / b2, dx * cross, dx * dx * (c * c / a2 + s * s / b2) - 1])
    basis = np.array([[conic.a * c, -conic.b * s], [conic.a * s, conic.b * c]])
    cos_t, sin_t = np.linalg.solve(basis, [dx, float(heights.real.max())])
    return float(np.arctan2(sin_t, cos_t))
