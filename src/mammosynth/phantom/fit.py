"""Fit the six outline parameters to a real breast mask, so users can seed the model from their images.

The mask must be in the standard orientation (chest wall at the left edge, as ``prepare`` writes it).
Frame convention: the square of side max(height, width) with the chest wall at x = 1 of the
publication's frame (chest wall on the right), y down. Method: an algebraic ellipse fit of the skin-line
points (skimage.measure.EllipseModel) as the start, then Nelder–Mead on the intersection-over-union
between the rasterised model and the mask (scipy.optimize).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from skimage import measure

from mammosynth.errors import InputError
from mammosynth.phantom.labelmap import breast_region
from mammosynth.phantom.outline import arc_range, ellipse_point
from mammosynth.phantom.params import Outline, PhantomParams
from mammosynth.preprocess.resize import resize_mask

FIT_SIZE = 128


def _square(mask: np.ndarray, size: int) -> np.ndarray:
    h, w = mask.shape
    side = max(h, w)
    square = np.zeros((side, side), bool)
    square[:h, :w] = mask
    return resize_mask(square, size, size)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _with_wall(a: float, b: float, phi: float, y0: float, alpha: float) -> Outline:
    phi = (phi + np.pi / 2) % np.pi - np.pi / 2  # (phi ± π, t) is the same ellipse as (phi, t ± π)
    x_offset = a * np.cos(alpha) * np.cos(phi) + b * np.sin(alpha) * np.sin(phi)
    return Outline(a=float(a), b=float(b), phi=float(phi), X0=float(1.0 - x_offset), Y0=float(y0), Alpha_e=float(alpha))


def canonical(o: Outline) -> Outline:
    """The same curve with |phi| ≤ π/4, so ``a`` is the semi-axis nearest the horizontal (the
    publication's "width of the breast profile"): (a, b, phi) and (b, a, phi ∓ π/2) are one ellipse."""
    if abs(o.phi) <= np.pi / 4:
        return o
    x, y = ellipse_point(o, o.Alpha_e)
    phi = o.phi - np.sign(o.phi) * np.pi / 2
    a, b = o.b, o.a
    dx, dy = x - o.X0, y - o.Y0
    u = dx * np.cos(phi) - dy * np.sin(phi)
    v = dx * np.sin(phi) + dy * np.cos(phi)
    alpha = float(np.arctan2(v / b, u / a))
    return Outline(a=a, b=b, phi=float(phi), X0=o.X0, Y0=o.Y0, Alpha_e=alpha % (2 * np.pi))


def outline_iou(outline: Outline, mask: np.ndarray, size: int = FIT_SIZE) -> float:
    """IoU between the model's breast region and ``mask`` (standard orientation) on a square grid."""
    return _iou(breast_region(PhantomParams(outline=outline), size), _square(mask, size))


def fit_outline(mask: np.ndarray, size: int = FIT_SIZE) -> tuple[Outline, float]:
    """Fitted :class:`Outline` and its IoU with ``mask``.

    Example:
        >>> from mammosynth.phantom.labelmap import breast_region
        >>> truth = Outline(a=0.5, b=0.42, phi=0.1, X0=0.9, Y0=0.5, Alpha_e=1.5)
        >>> fitted, iou = fit_outline(breast_region(PhantomParams(outline=truth), 128))
        >>> iou > 0.95
        True
    """
    target = _square(mask, size)
    if target.sum() < 50:
        raise InputError(None, "breast mask is empty or too small to fit an outline")
    contour = max(measure.find_contours(np.pad(target, 1).astype(float), 0.5), key=len) - 1
    y, x = contour[:, 0] / size, contour[:, 1] / size
    keep = (x > 0.03) & (y > 0.01) & (y < 0.99)
    points = np.stack([1.0 - x[keep], y[keep]], axis=1)  # publication frame: chest wall at x = 1
    start = [0.5, 0.4, 0.0, float(np.mean(points[:, 1])) if len(points) else 0.5]
    if len(points) >= 6:
        model = (
            measure.EllipseModel.from_estimate(points)
            if hasattr(measure.EllipseModel, "from_estimate")
            else measure.EllipseModel()
        )
        if not hasattr(measure.EllipseModel, "from_estimate"):
            model.estimate(points)
        centre, axes = getattr(model, "center", None), getattr(model, "axis_lengths", None)
        params = (*centre, *axes, model.theta) if centre is not None and axes is not None else None
        if params is not None and np.all(np.isfinite(params)):
            _xc, yc, a, b, theta = params
            if 0.05 < a < 3 and 0.05 < b < 3:
                start = [float(a), float(b), float(-theta), float(yc)]

    def loss(v: np.ndarray) -> float:
        a, b, phi, y0, alpha = v
        if a <= 0.05 or b <= 0.05 or a > 3 or b > 3:
            return 1.0
        return 1.0 - _iou(breast_region(PhantomParams(outline=_with_wall(a, b, phi, y0, alpha)), size), target)

    starts = []
    for alpha in np.linspace(0.3, 3.0, 10):
        for a_scale in (1.25, 1.0, 0.8):
            v = np.array([start[0] * a_scale, start[1], start[2], start[3], alpha])
            starts.append((loss(v), v))
    starts.sort(key=lambda item: item[0])
    best_value, v = starts[0]
    for _, v0 in starts[:3]:  # partial arcs have near-equivalent ellipses: polish a few starts
        result = optimize.minimize(
            loss, v0, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-4, "maxiter": 600}
        )
        if result.fun < best_value:
            best_value, v = result.fun, result.x
    outline = canonical(_with_wall(*v))
    t_start, _ = arc_range(outline)  # report the arc's first end, as the publication does
    outline = _with_wall(outline.a, outline.b, outline.phi, outline.Y0, t_start % (2 * np.pi))
    return outline, outline_iou(outline, mask, size)
