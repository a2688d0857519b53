"""The publication's frame for the six outline parameters, and the way between it and the phantom's.

Banterle et al. fit their ellipse (``breast_profile_parameters_extraction/*_Parameters.m`` of
cnr-isti-vclab/CC-Mammograms-Generation_GUI) after mirroring left breasts (chest wall on the right),
zero-padding every image to the largest height and width of its class (right-aligned, centred vertically),
turning it upside down (y up) and dividing the skin line's pixel coordinates by their largest value (``norm``).
Their (a, b, phi, X0, Y0) therefore depend on the image's place in that padded frame, and ``Alpha_e`` is
the ellipse angle of the skin line's top end. Each finding class had its own frame (``PUBLICATION_FRAMES_PX``).

The phantom draws in its own frame: the breast's bounding square (side ``S`` pixels, top-left at the
breast's top row and the chest wall), chest wall at x = 1, y down. Both frames are the same picture up to
a scale, a shift and a vertical flip, so an ellipse maps exactly: ``a, b`` scale, ``phi`` and the angle
change sign, the centre moves. Hand-written because no library knows this convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mammosynth.errors import InputError
from mammosynth.phantom.fit import FIT_SIZE, fit_outline, outline_iou
from mammosynth.phantom.outline import arc_range, ellipse_point
from mammosynth.phantom.params import Outline
from mammosynth.phantom.skin_line import edges, end_angle, fit_conic, skin_line
from mammosynth.preprocess.adaptive import quadrant_hull

# (rows, columns) of each finding class's frame in the publication: it fitted each class apart
# (``Normal_Parameters.m``, ``Benign_Parameters.m``, …), padding every image to the largest of its class; these
# are the largest image sizes of each class folder of its ``Selected_Dataset`` (repository commit eaea146)
PUBLICATION_FRAMES_PX = {
    "normal": (3414, 2486),
    "benign": (3197, 2309),
    "malignant": (3297, 2394),
    "mixed": (3363, 2204),
}


@dataclass(frozen=True)
class PublicationFrame:
    """``x_pub = x_shift + scale * x_phantom`` and ``y_pub = y_shift - scale * y_phantom``."""

    scale: float
    x_shift: float
    y_shift: float

    def to_publication(self, o: Outline) -> Outline:
        """The phantom-frame outline ``o`` in the publication's frame.

        Example:
            >>> frame = PublicationFrame(scale=0.8, x_shift=0.1, y_shift=1.0)
            >>> o = Outline(a=0.5, b=0.4, phi=0.2, X0=0.9, Y0=0.5, Alpha_e=1.5)
            >>> back = frame.from_publication(frame.to_publication(o))
            >>> bool(np.allclose(list(back.__dict__.values()), list(o.__dict__.values())))
            True
        """
        return Outline(
            a=o.a * self.scale,
            b=o.b * self.scale,
            phi=-o.phi,
            X0=self.x_shift + self.scale * o.X0,
            Y0=self.y_shift - self.scale * o.Y0,
            Alpha_e=_wrap(-o.Alpha_e),
        )

    def from_publication(self, o: Outline) -> Outline:
        """The publication-frame outline ``o`` in the phantom's frame (what ``PhantomParams.outline`` holds)."""
        return Outline(
            a=o.a / self.scale,
            b=o.b / self.scale,
            phi=-o.phi,
            X0=(o.X0 - self.x_shift) / self.scale,
            Y0=(self.y_shift - o.Y0) / self.scale,
            Alpha_e=_wrap(-o.Alpha_e) % (2 * np.pi),
        )

    def phantom_outline(self, o: Outline) -> Outline:
        """The publication-frame outline ``o`` for the phantom to draw: :meth:`from_publication` with
        ``Alpha_e`` moved to where the ellipse meets the chest wall (x = 1), since the phantom closes the arc
        on the vertical through ``Alpha_e`` while the publication's marks the skin line's top end, which lies
        away from the chest wall when the breast runs off the image's top edge.

        Example:
            >>> frame = PublicationFrame(scale=1.0, x_shift=0.0, y_shift=1.0)
            >>> o = frame.phantom_outline(Outline(a=0.5, b=0.4, phi=0.0, X0=0.8, Y0=0.5, Alpha_e=1.0))
            >>> round(float(ellipse_point(o, o.Alpha_e)[0]), 6)
            1.0
        """
        out = self.from_publication(o)
        radius = np.hypot(out.a * np.cos(out.phi), out.b * np.sin(out.phi))  # x(t) − X0 = radius cos(t − delta)
        delta = np.arctan2(out.b * np.sin(out.phi), out.a * np.cos(out.phi))
        reach = (1.0 - out.X0) / radius
        if abs(reach) <= 1:  # of the two crossings (one arc), the upper one, as the publication's top end
            crossings = [delta + np.arccos(reach), delta - np.arccos(reach)]
            upper = crossings[int(np.argmin([ellipse_point(out, t)[1] for t in crossings]))]
            out.Alpha_e = _wrap(float(upper))
        return out


def _wrap(t: float) -> float:
    """An angle in (−π, π], as MATLAB's atan2 gives it."""
    return float(np.pi - (np.pi - t) % (2 * np.pi))


def breast_box(mask: np.ndarray) -> np.ndarray:
    """``mask`` cut to the breast's rows and from the chest wall (left edge) to its farthest column: the
    picture whose bounding square is the phantom's frame."""
    rows, cols = mask.any(1).nonzero()[0], mask.any(0).nonzero()[0]
    return mask[rows[0] : rows[-1] + 1, : cols[-1] + 1]


def _top_row(rows_px: int, rows: int) -> int:
    """The 1-based frame row of an image's first row, as the publication's MATLAB centres it."""
    return rows_px // 2 - rows // 2 + 1


def publication_points(
    line: np.ndarray, image_px: tuple[float, float], frame_px: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The skin line's (row, column) pixels ``line`` of an image of ``image_px`` = (rows, columns) in
    standard orientation, as x, y pixel coordinates (1-based, MATLAB's) of the publication's frame: the image
    mirrored (chest wall on the right), zero-padded to ``frame_px`` (right-aligned, centred vertically as
    their code pads) and turned upside down."""
    h, w = image_px
    rows_px, cols_px = frame_px or (int(np.ceil(h)), int(np.ceil(w)))
    if rows_px < h - 1e-6 or cols_px < w - 1e-6:
        raise InputError("--frame-px", f"the frame {rows_px}×{cols_px} is smaller than the image {h:g}×{w:g}")
    return cols_px - line[:, 1], rows_px - _top_row(rows_px, int(h)) - line[:, 0] + 1


def publication_outline(
    line: np.ndarray, image_px: tuple[float, float], frame_px: tuple[int, int] | None = None
) -> tuple[Outline | None, float]:
    """The publication's six parameters from the skin line's pixels ``line`` (rows, columns; standard
    orientation) and its norm (the largest coordinate), or ``None`` for the outline when the conic through
    them is not an ellipse."""
    x, y = publication_points(np.asarray(line, np.float64), image_px, frame_px)
    norm = float(max(x.max(), y.max()))
    conic = fit_conic(x / norm, y / norm)
    if conic is None:
        return None, norm
    alpha = end_angle(conic, float(y.max()) / norm)
    return Outline(a=conic.a, b=conic.b, phi=conic.phi, X0=conic.x0, Y0=conic.y0, Alpha_e=alpha), norm


def publication_frame(mask: np.ndarray, norm: float, frame_px: tuple[int, int] | None = None) -> PublicationFrame:
    """The frame of one breast ``mask`` (standard orientation, the whole image) padded to ``frame_px`` =
    (rows, columns) (the largest image of the set fitted with it; the image itself when ``None``) whose
    coordinates were divided by ``norm`` (:func:`publication_outline` gives it)."""
    h, w = mask.shape
    rows_px, cols_px = frame_px or (h, w)
    if mask.sum() < 50:
        raise InputError(None, "breast mask is empty or too small to fit an outline")
    top = _top_row(rows_px, h)
    rows, cols = mask.any(1).nonzero()[0], mask.any(0).nonzero()[0]
    side = float(max(rows[-1] - rows[0] + 1, cols[-1] + 1))  # the phantom's square, as ``fit_outline`` crops it
    return PublicationFrame(
        scale=side / norm,
        x_shift=(cols_px - side) / norm,
        y_shift=(rows_px - top + 1 - rows[0]) / norm,
    )


def fit_publication(
    mask: np.ndarray,
    frame_px: tuple[int, int] | None = None,
    image: np.ndarray | None = None,
    original_px: tuple[int, int] | None = None,
    size: int = FIT_SIZE,
) -> tuple[Outline, PublicationFrame, float]:
    """The six parameters of the breast in ``mask`` (standard orientation, the whole image) in the
    publication's convention, the frame that takes them to the phantom's, and the phantom outline's IoU
    with the breast.

    The publication's own estimator (:mod:`~mammosynth.phantom.skin_line`) on ``image`` (the mammogram,
    foreground far from the breast left out), or on the mask itself, as what its binarisation would find,
    when ``image`` is ``None``. ``original_px`` = (rows, columns): the size of the image these pixels were
    shrunk from, in whose pixels ``frame_px`` is given (the skin line is scaled back to it). Where the conic
    is not an ellipse, the outline is fitted in the phantom's frame instead
    (:func:`~mammosynth.phantom.fit.fit_outline`, IoU with the breast) and moved to the publication's.

    Example:
        >>> from mammosynth.phantom.labelmap import breast_region
        >>> from mammosynth.phantom.params import PhantomParams
        >>> truth = Outline(a=0.5, b=0.42, phi=0.1, X0=0.9, Y0=0.5, Alpha_e=1.5)
        >>> fitted, frame, iou = fit_publication(breast_region(PhantomParams(outline=truth), 256))
        >>> round(fitted.phi, 1), round(fitted.b, 1), iou > 0.95  # phi flips sign with y
        (-0.1, 0.4, True)
    """
    if mask.sum() < 50:
        raise InputError(None, "breast mask is empty or too small to fit an outline")
    line = edges(quadrant_hull(mask)) if image is None else skin_line(image, mask)
    if len(line) < 5:
        line = np.argwhere(mask & ~ndimage.binary_erosion(mask, border_value=1))
    scale = np.ones(2) if original_px is None else np.asarray(original_px, np.float64) / mask.shape
    outline, norm = publication_outline((line + 0.5) * scale - 0.5, original_px or mask.shape, frame_px)
    shrunk = None if frame_px is None else (round(frame_px[0] / scale[0]), round(frame_px[1] / scale[1]))
    frame = publication_frame(mask, norm / scale[0], shrunk)
    box = breast_box(mask)
    if outline is None:
        phantom, _ = fit_outline(box, size)
        outline = frame.to_publication(phantom)
        ends = [-t for t in arc_range(phantom)]
        outline.Alpha_e = _wrap(ends[int(np.argmax([ellipse_point(outline, t)[1] for t in ends]))])
    return outline, frame, outline_iou(frame.phantom_outline(outline), box, size)
