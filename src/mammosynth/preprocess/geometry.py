"""One frame transform from a source image to the prepared square: flip → crop → scale → pad.

Coordinates are continuous pixel coordinates (origin at the top-left pixel's outer corner, x right,
y down), so a point and the pixel under it move together through every step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from skimage import draw

from mammosynth.datasets.schema import Finding
from mammosynth.preprocess.resize import resize_image, resize_labels, resize_mask


@dataclass(frozen=True)
class FrameTransform:
    """Maps a ``source_width`` × ``source_height`` image to a ``size`` × ``size`` prepared frame."""

    source_width: int
    source_height: int
    flip: bool
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in the (flipped) source
    scale: float
    offset: tuple[int, int]  # where the scaled crop's top-left lands in the output
    size: int

    @classmethod
    def fit(cls, width: int, height: int, flip: bool, crop: tuple[int, int, int, int], size: int) -> FrameTransform:
        """Scale the crop to fit ``size`` keeping aspect; chest wall (x = 0) stays at the left edge,
        the crop is centred vertically."""
        x0, y0, x1, y1 = crop
        scale = size / max(x1 - x0, y1 - y0)
        new_h = min(size, round((y1 - y0) * scale))
        return cls(width, height, flip, crop, scale, (0, (size - new_h) // 2), size)

    @property
    def scaled_shape(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.crop
        return min(self.size, round((y1 - y0) * self.scale)), min(self.size, round((x1 - x0) * self.scale))

    def points(self, xy: np.ndarray) -> np.ndarray:
        """Transform an (N, 2) array of (x, y) source coordinates."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2).copy()
        if self.flip:
            xy[:, 0] = self.source_width - xy[:, 0]
        xy[:, 0] = (xy[:, 0] - self.crop[0]) * self.scale + self.offset[0]
        xy[:, 1] = (xy[:, 1] - self.crop[1]) * self.scale + self.offset[1]
        return xy

    def _place(self, array: np.ndarray, kind: str) -> np.ndarray:
        if self.flip:
            array = array[:, ::-1]
        x0, y0, x1, y1 = self.crop
        array = array[y0:y1, x0:x1]
        h, w = self.scaled_shape
        resized = {"image": resize_image, "mask": resize_mask, "labels": resize_labels}[kind](array, w, h)
        out = np.zeros((self.size, self.size), dtype=resized.dtype)
        ox, oy = self.offset
        out[oy : oy + h, ox : ox + w] = resized
        return out

    def image(self, pixels: np.ndarray) -> np.ndarray:
        return self._place(pixels, "image")

    def mask(self, mask: np.ndarray) -> np.ndarray:
        return self._place(mask, "mask")

    def labels(self, labels: np.ndarray) -> np.ndarray:
        return self._place(labels, "labels")

    def finding(self, finding: Finding) -> Finding:
        """The finding with its coordinates moved into the prepared frame (mask files are handled apart)."""
        moved = Finding(**{**asdict(finding), "coords": list(finding.coords)})
        if finding.geometry == "circle":
            ((cx, cy),) = self.points([finding.coords[:2]])
            moved.coords = [float(cx), float(cy), float(finding.coords[2] * self.scale)]
        elif finding.geometry == "box":
            corners = self.points([finding.coords[:2], finding.coords[2:]])
            moved.coords = [
                float(corners[:, 0].min()),
                float(corners[:, 1].min()),
                float(corners[:, 0].max()),
                float(corners[:, 1].max()),
            ]
        elif finding.geometry == "polygon":
            moved.coords = [float(v) for v in self.points(np.reshape(finding.coords, (-1, 2))).ravel()]
        return moved

    def to_dict(self) -> dict:
        return asdict(self)


def rasterise(finding: Finding, width: int, height: int) -> np.ndarray | None:
    """Boolean mask of a circle/box/polygon finding in a ``width`` × ``height`` frame (None otherwise)."""
    mask = np.zeros((height, width), bool)
    if finding.geometry == "circle":
        cx, cy, r = finding.coords
        rr, cc = draw.disk((cy - 0.5, cx - 0.5), max(r, 0.5), shape=mask.shape)
    elif finding.geometry == "box":
        x0, y0, x1, y1 = finding.coords  # pixel-edge coordinates, as for circles and polygons
        rr, cc = draw.polygon(np.array([y0, y0, y1, y1]) - 0.5, np.array([x0, x1, x1, x0]) - 0.5, shape=mask.shape)
    elif finding.geometry == "polygon":
        xy = np.reshape(finding.coords, (-1, 2))
        rr, cc = draw.polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, shape=mask.shape)
    else:
        return None
    mask[rr, cc] = True
    return mask
