"""Fidelity and diversity on a feature space: precision, recall (Kynkäänniemi et al. 2019), density and
coverage (Naeem et al. 2020) from k-nearest-neighbour balls. Plain functions on (N, D) feature arrays, so
any extractor works."""

from __future__ import annotations

import numpy as np

from mammosynth.errors import InputError


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    return np.sqrt(np.maximum(squared, 0))


def _radii(features: np.ndarray, k: int) -> np.ndarray:
    d = _distances(features, features)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def precision_recall_density_coverage(real: np.ndarray, synthetic: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision (synthetic inside the real manifold), recall (real inside the synthetic manifold),
    density and coverage, each manifold being the union of k-NN balls.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(50, 4))
        >>> precision_recall_density_coverage(x, x)["coverage"]
        1.0
    """
    real, synthetic = np.asarray(real, np.float64), np.asarray(synthetic, np.float64)
    if real.ndim != 2 or synthetic.ndim != 2 or real.shape[1] != synthetic.shape[1]:
        raise InputError(None, f"features must be (N, D) arrays of one width, got {real.shape} and {synthetic.shape}")
    if min(len(real), len(synthetic)) <= k:
        raise InputError(None, f"need more than k = {k} feature vectors in each set")
    real_radius, synthetic_radius = _radii(real, k), _radii(synthetic, k)
    d = _distances(real, synthetic)  # (real, synthetic)
    inside_real = d <= real_radius[:, None]
    return {
        "precision": float(inside_real.any(0).mean()),
        "recall": float((d <= synthetic_radius[None]).any(1).mean()),
        "density": float(inside_real.sum(0).mean() / k),
        "coverage": float((d.min(1) <= real_radius).mean()),
        "k": k,
    }


def mode_collapse(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> dict:
    """Signs of mode collapse in a feature space: the spread of the synthetic set relative to the real one
    (median distance to the set's own nearest neighbour and median pairwise distance, as ratios; a
    collapsed generator is well under 1) and the share of synthetic images with a near-duplicate among
    the other synthetic images (closer than the closest pair of real images). Both sets are first cut to
    the same size at random (``seed``): nearest-neighbour distances shrink as a set grows.

    Example:
        >>> rng = np.random.default_rng(0); x = rng.normal(size=(60, 4))
        >>> mode_collapse(x, np.repeat(x[:3], 20, axis=0))["near_duplicate_share"]
        1.0
    """
    real, synthetic = np.asarray(real, np.float64), np.asarray(synthetic, np.float64)
    if min(len(real), len(synthetic)) < 3:
        raise InputError(None, "the mode-collapse check needs at least 3 feature vectors in each set")
    rng = np.random.default_rng(seed)
    m = min(len(real), len(synthetic))
    real, synthetic = real[rng.permutation(len(real))[:m]], synthetic[rng.permutation(len(synthetic))[:m]]
    spreads = []
    nearest = []
    for features in (real, synthetic):
        d = _distances(features, features)
        pairs = d[np.triu_indices(len(d), 1)]
        np.fill_diagonal(d, np.inf)
        nearest.append(d.min(1))
        spreads.append(np.median(pairs))
    floor = nearest[0].min()
    return {
        "nn_distance_ratio": float(np.median(nearest[1]) / max(np.median(nearest[0]), 1e-12)),
        "pairwise_distance_ratio": float(spreads[1] / max(spreads[0], 1e-12)),
        "near_duplicate_share": float((nearest[1] < floor).mean()),
        "collapse_suspected": bool(np.median(nearest[1]) < 0.5 * np.median(nearest[0])
                                   or (nearest[1] < floor).mean() > 0.1),
    }
