"""Draw a phantom's label map: integer tissue classes on a square grid, and the publication's colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage import draw

from mammosynth.io.images import read_mask
from mammosynth.phantom.outline import nipple_point, outline_polygon
from mammosynth.phantom.params import CalcCluster, Mass, PhantomParams
from mammosynth.preprocess.geometry import FrameTransform
from mammosynth.preprocess.resize import resize_mask

BACKGROUND, BREAST, SKIN, NIPPLE, FIBROGLANDULAR, PECTORAL, BENIGN_MASS, MALIGNANT_MASS, CALCIFICATION = range(9)
LABELS = {
    "background": BACKGROUND,
    "breast": BREAST,
    "skin": SKIN,
    "nipple": NIPPLE,
    "fibroglandular": FIBROGLANDULAR,
    "pectoral": PECTORAL,
    "benign_mass": BENIGN_MASS,
    "malignant_mass": MALIGNANT_MASS,
    "calcification": CALCIFICATION,
}
#: The two colour sets of the publication's drawer (RGB 0–255); pectoral and calcification, which it
#: does not have, get colours of their own.
COLORSETS = {
    1: {
        BACKGROUND: (0, 0, 0),
        BREAST: (100, 149, 237),
        SKIN: (70, 130, 180),
        NIPPLE: (176, 196, 222),
        FIBROGLANDULAR: (135, 206, 250),
        PECTORAL: (255, 215, 0),
        BENIGN_MASS: (50, 205, 50),
        MALIGNANT_MASS: (178, 34, 34),
        CALCIFICATION: (255, 255, 255),
    },
    2: {
        BACKGROUND: (0, 0, 0),
        BREAST: (0, 0, 255),
        SKIN: (0, 0, 200),
        NIPPLE: (0, 0, 100),
        FIBROGLANDULAR: (0, 0, 150),
        PECTORAL: (255, 255, 0),
        BENIGN_MASS: (0, 255, 0),
        MALIGNANT_MASS: (255, 0, 0),
        CALCIFICATION: (255, 255, 255),
    },
}


def to_colour(labels: np.ndarray, colorset: int = 1) -> np.ndarray:
    """Integer label map → RGB uint8 image in one of the publication's colour sets."""
    lut = np.zeros((256, 3), np.uint8)
    for label, rgb in COLORSETS[colorset].items():
        lut[label] = rgb
    return lut[labels]


def _mass_radius(mass: Mass, angles: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Relative radius r(θ) of a mass outline (1 = nominal)."""
    if mass.shape == "round":
        return np.ones_like(angles)
    if mass.shape == "oval":
        return 1.0 / np.sqrt((np.cos(angles) / 1.0) ** 2 + (np.sin(angles) / 0.6) ** 2)
    if mass.shape == "lobulated":
        lobes = int(rng.integers(3, 6))
        return 1.0 + 0.18 * np.sin(lobes * angles + rng.uniform(0, 2 * np.pi))
    noise = rng.normal(0, 1, 24)
    smooth = np.interp(angles, np.linspace(0, 2 * np.pi, 25)[:-1], noise, period=2 * np.pi)
    return np.clip(1.0 + 0.22 * smooth, 0.55, 1.5)


def mass_mask(mass: Mass, size: int, field_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of one mass (spiculated: an irregular core plus thin radiating spicules)."""
    px_per_mm = size / field_mm
    radius = 0.5 * mass.size_mm * px_per_mm
    angles = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    r = radius * _mass_radius(mass, angles, rng)
    rot = np.deg2rad(mass.rotation_deg)
    cx, cy = mass.x * size, mass.y * size
    xs, ys = cx + r * np.cos(angles + rot), cy + r * np.sin(angles + rot)
    mask = np.zeros((size, size), bool)
    rr, cc = draw.polygon(ys, xs, shape=mask.shape)
    mask[rr, cc] = True
    if mass.shape == "spiculated":
        for angle in rng.uniform(0, 2 * np.pi, int(rng.integers(8, 16))):
            length = radius * rng.uniform(1.6, 2.6)
            rr, cc = draw.line(int(cy), int(cx), int(cy + length * np.sin(angle)), int(cx + length * np.cos(angle)))
            keep = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            mask[rr[keep], cc[keep]] = True
        mask = ndi.binary_dilation(mask, iterations=max(0, round(0.3 * px_per_mm) - 1)) if px_per_mm > 3 else mask
    return mask


def calcification_mask(cluster: CalcCluster, size: int, field_mm: float, rng: np.random.Generator) -> np.ndarray:
    px_per_mm = size / field_mm
    mask = np.zeros((size, size), bool)
    offsets = rng.normal(0, cluster.spread_mm * px_per_mm, (cluster.count, 2))
    centres = offsets + np.array([cluster.x * size, cluster.y * size])
    radius = max(0.5, 0.5 * cluster.particle_mm * px_per_mm)
    for cx, cy in centres:
        rr, cc = draw.disk((cy, cx), radius * rng.uniform(0.7, 1.3), shape=mask.shape)
        mask[rr, cc] = True
    return mask


def breast_region(params: PhantomParams, size: int) -> np.ndarray:
    polygon, _ = outline_polygon(params.outline)
    pixels = polygon * size
    mask = np.zeros((size, size), bool)
    rr, cc = draw.polygon(np.append(pixels[:, 1], pixels[0, 1]), np.append(pixels[:, 0], 0), shape=mask.shape)
    mask[rr, cc] = True
    return mask


def fibroglandular_region(
    params: PhantomParams, breast: np.ndarray, inner: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Smooth random blobs whose area is ``fibroglandular_fraction`` of the breast, denser toward the
    chest wall and the breast's centre line, never in the subcutaneous fat."""
    size = breast.shape[0]
    if params.fgt_mask_path:  # a drawn region, at any resolution: scaled to this label map
        drawn = read_mask(Path(params.fgt_mask_path))
        if drawn.shape != breast.shape:
            drawn = resize_mask(drawn, size, size)
        return drawn & inner
    field = ndi.gaussian_filter(rng.normal(0, 1, (size, size)), sigma=size / 40, mode="reflect")
    field /= field.std() + 1e-12
    depth = ndi.distance_transform_edt(inner)
    field += 1.2 * depth / (depth.max() + 1e-12)
    target = params.fibroglandular_fraction * breast.sum()
    values = field[inner]
    if values.size == 0 or target <= 0:
        return np.zeros_like(breast)
    k = int(min(target, values.size - 1))
    threshold = np.partition(values, values.size - 1 - k)[values.size - 1 - k]
    return inner & (field >= threshold)


def draw_label_map(params: PhantomParams, size: int = 256) -> np.ndarray:
    """Integer label map (uint8, ``size`` × ``size``) in the standard orientation (chest wall left).

    Example:
        >>> labels = draw_label_map(PhantomParams(density="D"), size=128)
        >>> int(labels[64, 5]) != BACKGROUND, int(labels[64, 127]) == BACKGROUND
        (True, True)
    """
    params.validate()
    rng = np.random.default_rng(params.seed)
    px_per_mm = size / params.field_mm
    breast = breast_region(params, size)
    labels = np.zeros((size, size), np.uint8)
    labels[breast] = BREAST
    walled = np.hstack([np.ones((size, 1), bool), breast])  # the chest wall is not a skin line
    depth_mm = ndi.distance_transform_edt(walled)[:, 1:] / px_per_mm
    skin = breast & (depth_mm <= params.skin_mm)
    inner = breast & (depth_mm > params.skin_mm + 4.0)
    fgt = fibroglandular_region(params, breast, inner, rng)
    labels[fgt] = FIBROGLANDULAR
    labels[skin] = SKIN
    point, normal = nipple_point(params.outline, params.nipple_position)
    centre = (point + normal * 0.3 * params.nipple_mm / params.field_mm) * size
    rr, cc = draw.disk((centre[1], centre[0]), 0.5 * params.nipple_mm * px_per_mm, shape=labels.shape)
    labels[rr, cc] = NIPPLE
    if params.view == "MLO":
        width, height = params.pectoral
        rr, cc = draw.polygon([0, 0, height * size], [0, width * size, 0], shape=labels.shape)
        pectoral = np.zeros_like(breast)
        pectoral[rr, cc] = True
        labels[pectoral & breast] = PECTORAL
    inside = labels != BACKGROUND
    for mass in params.masses:
        mask = mass_mask(mass, size, params.field_mm, rng) & inside
        labels[mask] = MALIGNANT_MASS if mass.kind == "malignant" else BENIGN_MASS
    for cluster in params.calcifications:
        labels[calcification_mask(cluster, size, params.field_mm, rng) & inside] = CALCIFICATION
    return labels


def frame_labels(labels: np.ndarray, size: int, margin: float = 0.01) -> tuple[np.ndarray, float]:
    """Crop a label map (chest wall left) to its breast and fit it into ``size`` × ``size`` the way
    ``prepare`` frames real images; returns the framed map and the scale (output px per input px)."""
    breast = labels > 0
    rows, cols = np.flatnonzero(breast.any(axis=1)), np.flatnonzero(breast.any(axis=0))
    height, width = labels.shape
    pad = round(margin * max(width, height))
    crop = (
        int(cols[0]),
        max(0, int(rows[0]) - pad),
        min(width, int(cols[-1]) + 1 + pad),
        min(height, int(rows[-1]) + 1 + pad),
    )
    frame = FrameTransform.fit(width, height, False, crop, size)
    return frame.labels(labels), frame.scale


def prepared_label_map(params: PhantomParams, size: int) -> tuple[np.ndarray, float]:
    """The phantom's label map in the prepared frame (drawn at 2× and framed to ``size``) and its pixel
    spacing in mm — the input a label map → mammogram translator was trained on.

    Example:
        >>> labels, spacing_mm = prepared_label_map(PhantomParams(), 64)
        >>> labels.shape, bool(labels[32, 0] != BACKGROUND)
        ((64, 64), True)
    """
    labels, scale = frame_labels(draw_label_map(params, size * 2), size)
    return labels, params.field_mm / (size * 2) / scale
