"""Render a phantom mammogram from its label map: a zero-training baseline generator.

Attenuation per tissue, compressed-thickness roll-off toward the skin line, fibroglandular texture as
anatomical noise with a power-law spectrum P(f) ∝ f^−β (β ≈ 3, as measured on real mammograms), mass
margins (sharp for benign, blurred and spiculated for malignant), calcifications, detector blur and
quantum noise. Written here because no kept library renders mammograms; each step is NumPy/SciPy.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from mammosynth.phantom.labelmap import (
    BACKGROUND,
    BENIGN_MASS,
    BREAST,
    CALCIFICATION,
    FIBROGLANDULAR,
    MALIGNANT_MASS,
    NIPPLE,
    PECTORAL,
    SKIN,
)
from mammosynth.phantom.params import PhantomParams

ATTENUATION = {
    BACKGROUND: 0.0,
    BREAST: 0.32,
    SKIN: 0.42,
    NIPPLE: 0.5,
    FIBROGLANDULAR: 0.55,
    PECTORAL: 0.78,
    BENIGN_MASS: 0.72,
    MALIGNANT_MASS: 0.76,
    CALCIFICATION: 1.0,
}


def power_law_noise(shape: tuple[int, int], beta: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian noise whose power spectrum falls as f^−β.

    Example:
        >>> n = power_law_noise((64, 64), 3.0, np.random.default_rng(0))
        >>> round(float(n.std()), 3)
        1.0
    """
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    amplitude = f ** (-beta / 2.0)
    amplitude[0, 0] = 0.0
    spectrum = amplitude * (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape))
    noise = np.fft.irfft2(spectrum, s=shape)
    return (noise - noise.mean()) / (noise.std() + 1e-12)


def render_phantom(
    params: PhantomParams, labels: np.ndarray, beta: float = 3.0, noise_sigma: float = 0.008
) -> np.ndarray:
    """Float32 image in [0, 1] (background 0) for a label map drawn from ``params``."""
    size = labels.shape[0]
    px_per_mm = size / params.field_mm
    rng = np.random.default_rng(params.seed + 1_000_003)
    lut = np.zeros(256, np.float32)
    for label, value in ATTENUATION.items():
        lut[label] = value
    breast = labels != BACKGROUND
    tissue = lut[labels].astype(np.float64)
    # soft tissue boundaries (partial volume over ~1 mm), masses keep their own margins below
    soft = ndi.gaussian_filter(
        np.where((labels == FIBROGLANDULAR) | (labels == PECTORAL), tissue, lut[BREAST]),
        sigma=max(0.5, 2.5 * px_per_mm),
    )
    image = np.where(np.isin(labels, (FIBROGLANDULAR, BREAST)), soft, tissue)
    texture = power_law_noise(labels.shape, beta, rng)
    dense = ndi.gaussian_filter((labels == FIBROGLANDULAR).astype(float), sigma=max(0.5, 2 * px_per_mm))
    image += (0.045 + 0.08 * dense) * texture
    for kind, blur_mm in ((BENIGN_MASS, 0.3), (MALIGNANT_MASS, 1.2)):
        region = labels == kind
        if region.any():
            weight = ndi.gaussian_filter(region.astype(float), sigma=max(0.4, blur_mm * px_per_mm))
            image = image * (1 - weight) + (lut[kind] + 0.03 * texture) * weight
    calc = labels == CALCIFICATION
    if calc.any():
        image = np.maximum(image, ndi.gaussian_filter(calc.astype(float), 0.6) * 2.0 * lut[CALCIFICATION])
    # compressed thickness falls toward the skin line (not at the chest wall)
    walled = np.hstack([np.ones((size, 1), bool), breast])
    depth_mm = ndi.distance_transform_edt(walled)[:, 1:] / px_per_mm
    image *= np.where(breast, 0.55 + 0.45 * (1 - np.exp(-depth_mm / 10.0)), 0.0)
    image = ndi.gaussian_filter(image, sigma=max(0.3, 0.1 * px_per_mm))  # detector blur
    image += rng.normal(0, noise_sigma, image.shape) * breast
    return np.clip(image, 0.0, 1.0).astype(np.float32)
