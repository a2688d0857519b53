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
