"""The CC publication's fidelity test: the first five statistical moments of breast-region intensities per
image, compared between two sets moment by moment with two-sample tests; and a histogram distance."""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mammosynth.errors import InputError

MOMENTS = ("mean", "std", "skewness", "kurtosis", "moment5")


def intensity_moments(pixels: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """Mean, standard deviation and the 3rd–5th standardised moments (skewness, kurtosis — not excess —
    and the 5th) of the intensities inside ``region`` (default: the whole image).

    Example:
        >>> m = intensity_moments(np.array([[0.0, 1.0], [0.0, 1.0]]))
        >>> [round(float(v), 3) for v in m]
        [0.5, 0.5, 0.0, 1.0, 0.0]
    """
    values = np.asarray(pixels, dtype=np.float64)
    values = values[region.astype(bool)] if region is not None else values.ravel()
    if values.size < 2:
        raise InputError(None, "moments need at least 2 pixels in the region")
    mean, std = values.mean(), values.std()
    z = (values - mean) / std if std > 0 else np.zeros_like(values)
    return np.array([mean, std, (z**3).mean(), (z**4).mean(), (z**5).mean()])


def compare_moments(real: np.ndarray, synthetic: np.ndarray) -> dict[str, dict[str, float]]:
    """Per moment, a two-sample Kolmogorov–Smirnov test and a Mann–Whitney U test between the per-image
    moments of two sets ((N, 5) and (M, 5) arrays from :func:`intensity_moments`), plus the difference of
    medians in units of the real set's interquartile range.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(40, 5))
        >>> compare_moments(a, a)["mean"]["ks_pvalue"]
        1.0
    """
    return compare_columns(real, synthetic, MOMENTS)


def compare_columns(real: np.ndarray, synthetic: np.ndarray, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """:func:`compare_moments` for any per-image statistics: column ``k`` of both arrays is ``names[k]``."""
    real, synthetic = np.atleast_2d(real), np.atleast_2d(synthetic)
    if len(real) < 2 or len(synthetic) < 2:
        raise InputError(None, "two-sample tests need at least 2 images in each set")
    out = {}
    for k, name in enumerate(names):
        a, b = real[:, k], synthetic[:, k]
        iqr = np.subtract(*np.percentile(a, [75, 25]))
        same = np.array_equal(np.sort(a), np.sort(b))
        out[name] = {
            "real_median": float(np.median(a)),
            "synthetic_median": float(np.median(b)),
            "median_gap_iqr": float((np.median(b) - np.median(a)) / iqr) if iqr > 0 else 0.0,
            "ks_statistic": 0.0 if same else float(stats.ks_2samp(a, b).statistic),
            "ks_pvalue": 1.0 if same else float(stats.ks_2samp(a, b).pvalue),
            "mannwhitney_pvalue": 1.0 if same else float(stats.mannwhitneyu(a, b).pvalue),
        }
    return out


def histogram_distance(
    real: np.ndarray, synthetic: np.ndarray, bins: int = 64, value_range: tuple[float, float] = (0.0, 1.0)
) -> float:
    """Jensen–Shannon distance (base 2: 0 = same, 1 = disjoint) between the pooled intensity histograms
    of two sets of pixels.

    Example:
        >>> histogram_distance(np.zeros(100), np.ones(100))
        1.0
    """
    p, _ = np.histogram(np.asarray(real).ravel(), bins=bins, range=value_range)
    q, _ = np.histogram(np.asarray(synthetic).ravel(), bins=bins, range=value_range)
    return counts_distance(p, q, value_range)


def breast_histogram(
    images: np.ndarray,
    level: float = 0.02,
    bins: int = 64,
    value_range: tuple[float, float] = (0.0, 1.0),
    chunk: int = 256,
) -> np.ndarray:
    """Pooled histogram counts of the pixels brighter than ``level`` in an (N, H, W) stack, a chunk of images
    at a time (no stack-sized mask or copy).

    Example:
        >>> breast_histogram(np.array([[[0.0, 0.5], [0.9, 0.01]]]), bins=2).tolist()
        [0, 2]
    """
    counts = np.zeros(bins, np.int64)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk]
        counts += np.histogram(part[part > level], bins=bins, range=value_range)[0]
    return counts


def counts_distance(p: np.ndarray, q: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)) -> float:
    """Jensen–Shannon distance (base 2) between two histograms given as counts."""
    if p.sum() == 0 or q.sum() == 0:
        raise InputError(None, f"no pixels inside the intensity range {value_range}")
    return float(jensenshannon(p, q, base=2))
