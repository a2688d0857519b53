"""Set distances on a feature space: FID (MONAI's ``FIDMetric``) and KID (Bińkowski et al. 2018).

KID is written here because MONAI has no unbiased polynomial-kernel MMD; it is a few lines and, unlike
FID, unbiased for the small sets medical users have."""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import FIDMetric

from mammosynth.errors import InputError


def _check(real: np.ndarray, synthetic: np.ndarray, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    real, synthetic = np.asarray(real, np.float64), np.asarray(synthetic, np.float64)
    if real.ndim != 2 or synthetic.ndim != 2 or real.shape[1] != synthetic.shape[1]:
        raise InputError(None, f"features must be (N, D) arrays of one width, got {real.shape} and {synthetic.shape}")
    if min(len(real), len(synthetic)) < minimum:
        raise InputError(None, f"need at least {minimum} feature vectors in each set")
    return real, synthetic


def frechet_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID when the features are Inception's).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(100, 4))
        >>> abs(frechet_distance(x, x)) < 1e-6
        True
    """
    real, synthetic = _check(real, synthetic, 2)
    return float(FIDMetric()(torch.from_numpy(synthetic), torch.from_numpy(real)))


def kernel_distance(real: np.ndarray, synthetic: np.ndarray, subsets: int = 20, subset_size: int = 100,
                    seed: int = 0) -> tuple[float, float]:
    """KID: unbiased MMD² with the kernel (x·y / D + 1)³, averaged over random subsets; returns (mean, std).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(200, 4))
        >>> kernel_distance(x[:100], x[100:])[0] < 0.1 < kernel_distance(x[:100], x[100:] + 1)[0]
        True
    """
    real, synthetic = _check(real, synthetic, 2)
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(real), len(synthetic))
    dim = real.shape[1]
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = synthetic[rng.choice(len(synthetic), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / dim + 1) ** 3, (y @ y.T / dim + 1) ** 3, (x @ y.T / dim + 1) ** 3)
        off = ~np.eye(m, dtype=bool)
        values.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))
