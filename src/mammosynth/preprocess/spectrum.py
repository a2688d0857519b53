"""Texture of the breast by its power spectrum: mammographic parenchyma has a power-law spectrum
P(f) ∝ 1 / f^β (β ≈ 2–3.5 in the literature, e.g. Burgess 2001), so β measured on synthetic and real
images is a compact texture-fidelity number (:func:`spectrum_exponent`, used by the evaluation), and a
tilt of the spectrum moves it (:func:`tilt_spectrum`, used by the calibration after a generator)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mammosynth.errors import InputError


def spectrum_exponent(
    pixels: np.ndarray, region: np.ndarray | None = None, patch_px: int = 64, band: tuple[float, float] = (0.05, 0.35)
) -> float:
    """β of the power law fitted (least squares in log–log) to the radially averaged power spectrum of the
    square patches of ``patch_px`` that lie wholly inside ``region``, over frequencies ``band`` (cycles per
    pixel). Each patch has its mean removed and a Hann window applied.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> abs(spectrum_exponent(rng.normal(size=(256, 256)))) < 0.1  # white noise: flat spectrum
        True
    """
    pixels = np.asarray(pixels, np.float64)
    region = np.ones(pixels.shape, bool) if region is None else region.astype(bool)
    window = np.outer(np.hanning(patch_px), np.hanning(patch_px))
    power = np.zeros((patch_px, patch_px))
    count = 0
    step = patch_px // 2
    for y in range(0, pixels.shape[0] - patch_px + 1, step):
        for x in range(0, pixels.shape[1] - patch_px + 1, step):
            if region[y : y + patch_px, x : x + patch_px].all():
                patch = pixels[y : y + patch_px, x : x + patch_px]
                power += np.abs(np.fft.fft2((patch - patch.mean()) * window)) ** 2
                count += 1
    if count == 0:
        raise InputError(None, f"no {patch_px}×{patch_px} patch lies wholly inside the region")
    f = np.fft.fftfreq(patch_px)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    bins = np.linspace(band[0], band[1], 12)
    which = np.digitize(radius, bins)
    centres, means = [], []
    for k in range(1, len(bins)):
        inside = which == k
        if inside.any():
            centres.append(radius[inside].mean())
            means.append(power[inside].mean() / count)
    slope = np.polyfit(np.log(centres), np.log(means), 1)[0]
    return float(-slope)


def spectrum_patch_px(size_px: int) -> int:
    """The patch the evaluation measures β on for images of ``size_px``: an eighth of the width, at least 16 px."""
    return max(16, size_px // 8)


def spectrum_exponents(images: np.ndarray, regions, patch_px: int) -> list[float]:
    """:func:`spectrum_exponent` of each image within its region (an (N, H, W) mask stack or a sequence of
    masks), leaving out the images with no patch wholly inside theirs."""
    found = []
    for image, region in zip(images, regions, strict=True):
        try:
            found.append(spectrum_exponent(image, region, patch_px=patch_px))
        except InputError:
            continue  # no patch wholly inside this breast
    return found


def tilt_spectrum(
    images: np.ndarray,
    tilt: float,
    level: float = 0.02,
    reference_cpp: float = 0.15,
    floor_cpp: float = 0.02,
) -> np.ndarray:
    """Images (N, H, W) or (H, W) whose breast (pixels above ``level``) has its power spectrum multiplied by
    (f / ``reference_cpp``)^``tilt``: β falls by about ``tilt`` (a flatter, finer texture for ``tilt`` > 0),
    the mean stays, frequencies below ``floor_cpp`` (cycles per pixel) are scaled as the floor. The background
    stays as it is; breast pixels stay above ``level`` and at most 1. Before the filter the background is
    filled with the breast's own values carried outward (a normalised Gaussian blur, σ 1/16 of the width), so
    the skin line's step does not ring into the breast.

    Written by hand: a radial power-law gain on a masked image is a few lines of FFT; no kept library has it.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> f = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
        >>> noise = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(128, 128))) * np.maximum(f, 0.01) ** -1.5))
        >>> image = 0.5 + 0.1 * noise / noise.std()  # β 3, all breast
        >>> before, after = spectrum_exponent(image), spectrum_exponent(tilt_spectrum(image, 0.5))
        >>> round(before - after, 1)
        0.5
    """
    pixels = np.asarray(images, np.float64)
    stack = pixels[None] if pixels.ndim == 2 else pixels
    height, width = stack.shape[-2:]
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij"))
    gain = (np.maximum(f, floor_cpp) / reference_cpp) ** (tilt / 2)
    gain[0, 0] = 1.0  # the mean stays
    breast = stack > level
    sigma = (0, width / 16, width / 16)
    weight = ndimage.gaussian_filter(breast.astype(np.float64), sigma)
    carried = ndimage.gaussian_filter(np.where(breast, stack, 0.0), sigma) / np.maximum(weight, 1e-12)
    counts = breast.sum(axis=(1, 2), keepdims=True)
    means = np.where(breast, stack, 0.0).sum(axis=(1, 2), keepdims=True) / np.maximum(counts, 1)
    filled = np.where(breast, stack, np.where(weight > 1e-3, carried, means))
    filtered = np.real(np.fft.ifft2(np.fft.fft2(filled) * gain))
    out = np.where(breast, np.clip(filtered, np.nextafter(level, 1.0), 1.0), stack).astype(np.float32)
    return out[0] if pixels.ndim == 2 else out
