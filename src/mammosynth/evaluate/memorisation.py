"""Does a generator copy its training images? Nearest-neighbour search of every synthetic image among the
training images by Pearson correlation of downsampled pixels, judged against the same search for held-out
real images (which are certainly not copies).

Written by hand because it is one normalised matrix product per chunk (memory bounded by ``chunk``), not
worth a dependency."""

from __future__ import annotations

import numpy as np

from mammosynth.errors import InputError
from mammosynth.evaluate.stack import work_stack


def _vectors(images: np.ndarray, work_px: int) -> np.ndarray:
    small = work_stack(images, work_px).reshape(len(images), -1).astype(np.float64)
    small -= small.mean(1, keepdims=True)
    norm = np.linalg.norm(small, axis=1, keepdims=True)
    return small / np.where(norm > 0, norm, 1)


class NeighbourIndex:
    """Reference images kept as normalised vectors, for repeated nearest-neighbour queries (the copy filter
    of an expansion asks once per batch)."""

    def __init__(self, references: np.ndarray, work_px: int = 64) -> None:
        self.work_px = work_px
        self.vectors = _vectors(references, work_px)

    def query(self, queries: np.ndarray, chunk: int = 256, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Index of each query's most correlated reference and that correlation (see
        :func:`nearest_neighbours`)."""
        q = _vectors(queries, self.work_px)
        index, best = np.empty(len(q), np.int64), np.empty(len(q))
        for start in range(0, len(q), chunk):
            sims = q[start:start + chunk] @ self.vectors.T
            if exclude_self:
                rows = np.arange(len(sims))
                sims[rows, start + rows] = -np.inf
            index[start:start + chunk] = sims.argmax(1)
            best[start:start + chunk] = sims.max(1)
        return index, best

    def copy_threshold(self) -> float:
        """Correlation above which an image counts as a copy when no held-out set is given: half the
        smallest distance (1 − correlation) between two different reference images."""
        if len(self.vectors) < 2:
            raise InputError(None, "a copy threshold needs at least 2 reference images")
        best = -1.0
        for start in range(0, len(self.vectors), 256):
            sims = self.vectors[start:start + 256] @ self.vectors.T
            rows = np.arange(len(sims))
            sims[rows, start + rows] = -np.inf
            best = max(best, float(sims.max()))
        return float(1 - (1 - best) / 2)


def nearest_neighbours(queries: np.ndarray, references: np.ndarray, work_px: int = 64,
                       chunk: int = 256, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the index of its most correlated reference image and that correlation (−1…1);
    with ``exclude_self`` (queries are the references) an image is not its own neighbour.

    Example:
        >>> rng = np.random.default_rng(0); refs = rng.random((5, 32, 32))
        >>> index, corr = nearest_neighbours(refs[[3]], refs, work_px=32)
        >>> int(index[0]), round(float(corr[0]), 6)
        (3, 1.0)
    """
    return NeighbourIndex(references, work_px).query(queries, chunk, exclude_self)


def memorisation(synthetic: np.ndarray, train: np.ndarray, held_out: np.ndarray | None = None,
                 threshold: float | None = None, work_px: int = 64) -> dict:
    """Flag synthetic images that look copied from a training image.

    A synthetic image is flagged when its distance (1 − correlation) to the nearest training image is under
    half the smallest distance any held-out real image reaches (real, uncopied images can get that close;
    a plain maximum over a small held-out set flagged ordinary look-alikes) — without a held-out set, the
    smallest distance between two different training images — or over a given correlation ``threshold``
    (a fixed 0.95 flagged 12 of 1000 independent phantoms). Returns the
    count and the flagged (synthetic index, train index, correlation) pairs, most similar first, the eight
    closest pairs whether flagged or not, plus both
    nearest-neighbour distributions for plotting.
    """
    index, corr = nearest_neighbours(synthetic, train, work_px)
    given = threshold is not None
    if held_out is not None:
        reference = nearest_neighbours(held_out, train, work_px)[1]
    elif len(train) > 1:
        reference = nearest_neighbours(train, train, work_px, exclude_self=True)[1]
    else:
        raise InputError(None, "memorisation needs a held-out set or at least 2 training images")
    if threshold is None:
        threshold = float(1 - (1 - reference.max()) / 2)
    flagged = np.flatnonzero(corr > threshold)
    flagged = flagged[np.argsort(-corr[flagged])]
    return {
        "images": len(corr), "copies": len(flagged), "threshold": threshold,
        "threshold_from": "given" if given else "half the held-out minimum distance" if held_out is not None
        else "half the smallest distance between training images",
        "pairs": [(int(i), int(index[i]), float(corr[i])) for i in flagged],
        "closest": [(int(i), int(index[i]), float(corr[i])) for i in np.argsort(-corr)[:8]],
        "synthetic_nn_correlation": corr.tolist(),
        "reference_nn_correlation": reference.tolist(),
    }


def feature_copies(synthetic: np.ndarray, train: np.ndarray, held_out: np.ndarray | None = None) -> dict:
    """The copy check in a feature space (N, D): a synthetic image is flagged when its Euclidean distance to
    the nearest training feature is under half the smallest distance a held-out real image reaches (without
    held-out features: half the smallest distance between two training images), as :func:`memorisation`
    does for pixels. Coarser than the pixel check (an encoder trained on a few hundred images maps
    look-alikes close together), so it is reported beside it, and the pixel check makes the verdict.

    Example:
        >>> rng = np.random.default_rng(0); train = rng.normal(size=(20, 8))
        >>> feature_copies(np.concatenate([train[:2], rng.normal(size=(5, 8))]), train)["copies"]
        2
    """
    def nearest(queries: np.ndarray, references: np.ndarray, exclude_self: bool = False) -> tuple:
        d = np.sqrt(np.maximum((queries**2).sum(1)[:, None] + (references**2).sum(1)[None]
                               - 2 * queries @ references.T, 0))
        if exclude_self:
            np.fill_diagonal(d, np.inf)
        return d.argmin(1), d.min(1)

    synthetic, train = np.asarray(synthetic, np.float64), np.asarray(train, np.float64)
    index, distance = nearest(synthetic, train)
    if held_out is not None and len(held_out):
        reference = nearest(np.asarray(held_out, np.float64), train)[1]
    elif len(train) > 1:
        reference = nearest(train, train, exclude_self=True)[1]
    else:
        raise InputError(None, "the feature copy check needs a held-out set or at least 2 training images")
    threshold = float(reference.min() / 2)
    flagged = np.flatnonzero(distance < threshold)
    return {"images": len(distance), "copies": len(flagged), "distance_threshold": threshold,
            "pairs": [(int(i), int(index[i]), float(distance[i])) for i in flagged[np.argsort(distance[flagged])]],
            "synthetic_nn_distance_median": float(np.median(distance)),
            "reference_nn_distance_median": float(np.median(reference))}
