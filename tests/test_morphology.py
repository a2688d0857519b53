"""The distance-transform disk morphology against SciPy's operators with ``skimage.morphology.disk``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import disk

from mammosynth.preprocess.morphology import EDT_FROM_RADIUS, close_disk, dilate_disk, erode_disk, open_disk


def _masks(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(12):
        h, w = rng.integers(20, 70, 2)
        smooth = ndi.gaussian_filter(rng.random((h, w)), rng.uniform(1, 5))
        masks.append(smooth > np.quantile(smooth, rng.uniform(0.2, 0.8)))
    full, empty = np.ones((30, 40), bool), np.zeros((30, 40), bool)
    touching = np.zeros((40, 40), bool)
    touching[:, :25] = True  # against the left border, where border_value decides the erosion
    return [*masks, full, empty, touching]


@pytest.mark.parametrize("radius", [0, 1, 3, EDT_FROM_RADIUS, EDT_FROM_RADIUS + 3, 15])
def test_disk_morphology_matches_scipy(radius):
    footprint = disk(radius)
    for mask in _masks(radius):
        for border_value in (0, 1):
            expected = ndi.binary_erosion(mask, footprint, border_value=border_value)
            np.testing.assert_array_equal(erode_disk(mask, radius, bool(border_value)), expected)
        np.testing.assert_array_equal(dilate_disk(mask, radius), ndi.binary_dilation(mask, footprint))
        np.testing.assert_array_equal(open_disk(mask, radius), ndi.binary_opening(mask, footprint))
        np.testing.assert_array_equal(close_disk(mask, radius), ndi.binary_closing(mask, footprint))


def test_large_disk_erosion_removes_what_is_narrower_than_the_disk():
    mask = np.zeros((60, 60), bool)
    mask[10:50, 10:50] = True  # 40 px square: survives a disk of radius 15 at its centre
    mask[5:8, :] = True  # a 3 px line: gone
    eroded = erode_disk(mask, 15)
    assert eroded[30, 30] and not eroded[6].any()
    assert eroded.sum() == ndi.binary_erosion(mask, disk(15)).sum() > 0
