"""Does a generator copy its training images? Nearest-neighbour search of every synthetic image among the
training images by Pearson correlation of downsampled pixels, judged against the same search for held-out
real patients (who are certainly not copies) — never against two images of one woman.

The pixel search is written by hand because it is one normalised matrix product per chunk (memory
bounded by ``chunk``; a k-d tree does not help in 4,096 dimensions); the feature-space search uses
``scipy.spatial.cKDTree``."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from mammosynth.errors import InputError
from mammosynth.evaluate.stack import work_stack


def _vectors(images: np.ndarray, work_px: int) -> np.ndarray:
    small = work_stack(images, work_px).reshape(len(images), -1).astype(np.float64)
    small -= small.mean(1, keepdims=True)
    norm = np.linalg.norm(small, axis=1, keepdims=True)
    return small / np.where(norm > 0, norm, 1)


class NeighbourIndex:
    """Reference images kept as normalised vectors, for repeated nearest-neighbour queries (the copy filter
    of an expansion asks once per batch). ``patients`` (one key per reference) lets the copy threshold
    compare different patients only."""

    def __init__(self, references: np.ndarray, work_px: int = 64, patients: list[str] | None = None) -> None:
        self.work_px = work_px
        self.vectors = _vectors(references, work_px)
        keys = [str(i) for i in range(len(references))] if patients is None else [str(p) for p in patients]
        if len(keys) != len(references):
            raise InputError(None, "copy check: one patient key per reference image")
        self.patients = np.unique(keys, return_inverse=True)[1]

    def _search(self, q: np.ndarray, chunk: int, own: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        index, best = np.empty(len(q), np.int64), np.empty(len(q))
        for start in range(0, len(q), chunk):
            sims = q[start : start + chunk] @ self.vectors.T
            if own is not None:  # a query's own patient (itself included) is never its neighbour
                sims[own[start : start + chunk, None] == self.patients[None]] = -np.inf
            index[start : start + chunk] = sims.argmax(1)
            best[start : start + chunk] = sims.max(1)
        return index, best

    def query(self, queries: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Index of each query's most correlated reference and that correlation (see
        :func:`nearest_neighbours`)."""
        return self._search(_vectors(queries, self.work_px), chunk, None)

    def across_patients(self, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Each reference image's most correlated reference of *another* patient, and that correlation."""
        return self._search(self.vectors, chunk, self.patients)

    def copy_threshold(self) -> float:
        """Correlation above which an image counts as a copy when no held-out set is given: half the
        smallest distance (1 − correlation) between images of two *different* patients (two views of one
        woman are closer than any two women and would make the threshold as permissive as it can be)."""
        if len(np.unique(self.patients)) < 2:
            raise InputError(None, "a copy threshold needs reference images of at least 2 patients")
        return float(1 - (1 - self.across_patients()[1].max()) / 2)


def nearest_neighbours(
    queries: np.ndarray, references: np.ndarray, work_px: int = 64, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the index of its most correlated reference image and that correlation (−1…1).

    Example:
        >>> rng = np.random.default_rng(0); refs = rng.random((5, 32, 32))
        >>> index, corr = nearest_neighbours(refs[[3]], refs, work_px=32)
        >>> int(index[0]), round(float(corr[0]), 6)
        (3, 1.0)
    """
    return NeighbourIndex(references, work_px).query(queries, chunk)


def memorisation(
    synthetic: np.ndarray,
    train: np.ndarray,
    held_out: np.ndarray | None = None,
    threshold: float | None = None,
    work_px: int = 64,
    train_patients: list[str] | None = None,
) -> dict:
    """Flag synthetic images that look copied from a training image.

    A synthetic image is flagged when its distance (1 − correlation) to the nearest training image is under
    half the smallest distance a held-out real patient reaches to the training patients (real, uncopied
    images can get that close; a plain maximum over a small held-out set flagged ordinary look-alikes) —
    without a held-out set, half the smallest distance between two training images of *different* patients
    (``train_patients``; every image its own patient when ``None``) — or over a given correlation
    ``threshold`` (a fixed 0.95 flagged 12 of 1000 independent phantoms). Returns the count and the flagged
    (synthetic index, train index, correlation) pairs, most similar first, the eight closest pairs whether
    flagged or not, plus both nearest-neighbour distributions for plotting.
    """
    index_ = NeighbourIndex(train, work_px, train_patients)
    index, corr = index_.query(synthetic)
    given = threshold is not None
    if held_out is not None and len(held_out):
        reference = index_.query(held_out)[1]
    elif len(np.unique(index_.patients)) > 1:
        reference = index_.across_patients()[1]
    else:
        raise InputError(None, "memorisation needs a held-out set or training images of at least 2 patients")
    if threshold is None:
        threshold = float(1 - (1 - reference.max()) / 2)
    flagged = np.flatnonzero(corr > threshold)
    flagged = flagged[np.argsort(-corr[flagged])]
    return {
        "images": len(corr),
        "train_images": len(train),
        "copies": len(flagged),
        "threshold": threshold,
        "threshold_from": "given"
        if given
        else "half the smallest held-out patient → training patient distance"
        if held_out is not None and len(held_out)
        else "half the smallest distance between two training patients",
        "pairs": [(int(i), int(index[i]), float(corr[i])) for i in flagged],
        "closest": [(int(i), int(index[i]), float(corr[i])) for i in np.argsort(-corr)[:8]],
        "synthetic_nn_correlation": corr.tolist(),
        "reference_nn_correlation": reference.tolist(),
    }


def feature_copies(
    synthetic: np.ndarray,
    train: np.ndarray,
    held_out: np.ndarray | None = None,
    train_patients: list[str] | None = None,
) -> dict:
    """The copy check in a feature space (N, D): a synthetic image is flagged when its Euclidean distance to
    the nearest training feature is under half the smallest distance a held-out real image reaches (without
    held-out features: half the smallest distance between training images of two different patients), as
    :func:`memorisation` does for pixels. Coarser than the pixel check (an encoder trained on a few hundred
    images maps look-alikes close together), so it is reported beside it, and the pixel check makes the
    verdict. Nearest neighbours by ``scipy.spatial.cKDTree`` (no N × N matrix).

    Example:
        >>> rng = np.random.default_rng(0); train = rng.normal(size=(20, 8))
        >>> feature_copies(np.concatenate([train[:2], rng.normal(size=(5, 8))]), train)["copies"]
        2
    """
    synthetic, train = np.asarray(synthetic, np.float64), np.asarray(train, np.float64)
    tree = cKDTree(train)
    distance, index = tree.query(synthetic, k=1)
    if held_out is not None and len(held_out):
        reference = tree.query(np.asarray(held_out, np.float64), k=1)[0]
    else:
        keys = np.unique(
            [str(i) for i in range(len(train))] if train_patients is None else [str(p) for p in train_patients],
            return_inverse=True,
        )[1]
        if len(np.unique(keys)) < 2:
            raise InputError(None, "the feature copy check needs a held-out set or training images of 2 patients")
        reference = np.array(
            [np.sqrt(((train[keys != keys[i]] - train[i]) ** 2).sum(1)).min() for i in range(len(train))]
        )
    threshold = float(reference.min() / 2)
    flagged = np.flatnonzero(distance < threshold)
    return {
        "images": len(distance),
        "copies": len(flagged),
        "distance_threshold": threshold,
        "pairs": [(int(i), int(index[i]), float(distance[i])) for i in flagged[np.argsort(distance[flagged])]],
        "synthetic_nn_distance_median": float(np.median(distance)),
        "reference_nn_distance_median": float(np.median(reference)),
    }
