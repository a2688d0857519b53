"""Fidelity and diversity on a feature space: precision, recall (Kynkäänniemi et al. 2019), density and
coverage (Naeem et al. 2020) from k-nearest-neighbour balls. Plain functions on (N, D) feature arrays, so
any extractor works."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist, pdist

from mammosynth.errors import InputError


def _radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance of every point to its k-th nearest other point (``cKDTree``; no N × N matrix)."""
    return cKDTree(features).query(features, k=k + 1)[0][:, k]  # neighbour 0 is the point itself


def _chunks(a: np.ndarray, b: np.ndarray, rows: int = 1024):
    """(start, distances of a[start:start + rows] to all of b): memory bounded by ``rows`` × len(b)."""
    for start in range(0, len(a), rows):
        yield start, cdist(a[start : start + rows], b)


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
    inside = np.zeros(len(synthetic), np.int64)  # real balls holding each synthetic point
    for start, d in _chunks(synthetic, real):
        inside[start : start + len(d)] = (d <= real_radius[None]).sum(1)
    recalled = np.zeros(len(real), bool)
    for start, d in _chunks(real, synthetic):
        recalled[start : start + len(d)] = (d <= synthetic_radius[None]).any(1)
    nearest_synthetic = cKDTree(synthetic).query(real, k=1)[0]
    return {
        "precision": float((inside > 0).mean()),
        "recall": float(recalled.mean()),
        "density": float(inside.mean() / k),
        "coverage": float((nearest_synthetic <= real_radius).mean()),
        "k": k,
        "real_images": len(real),
        "synthetic_images": len(synthetic),
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
        nearest.append(cKDTree(features).query(features, k=2)[0][:, 1])
        spreads.append(np.median(pdist(features[:2000])))  # already shuffled; 2,000 points = 2 M pairs
    floor = nearest[0].min()
    return {
        "nn_distance_ratio": float(np.median(nearest[1]) / max(np.median(nearest[0]), 1e-12)),
        "pairwise_distance_ratio": float(spreads[1] / max(spreads[0], 1e-12)),
        "near_duplicate_share": float((nearest[1] < floor).mean()),
        "images_per_set": m,
        "collapse_suspected": bool(
            np.median(nearest[1]) < 0.5 * np.median(nearest[0]) or (nearest[1] < floor).mean() > 0.1
        ),
    }
