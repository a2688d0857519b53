"""Texture of the breast by its power spectrum: mammographic parenchyma has a power-law spectrum
P(f) ∝ 1 / f^β (β ≈ 2–3.5 in the literature, e.g. Burgess 2001), so β measured on synthetic and real
images is a compact texture-fidelity number."""

from __future__ import annotations

import numpy as np

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
