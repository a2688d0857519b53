"""The evaluation's one small image classifier: trained from nothing in seconds on a CPU, shared by the
two-sample test, the conditional-correctness checks and the utility arm (so every arm of every check has
the same architecture, budget and seeds), plus ROC AUC with a bootstrap interval and patient-level splits.

Written by hand because it is a dozen lines around :func:`~mammosynth.evaluate.features.small_cnn`;
a training framework would add more than it saves."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from torch import nn

from mammosynth.errors import InputError
from mammosynth.evaluate.features import small_cnn


def _auc(positive: np.ndarray, negative: np.ndarray, axis: int = -1) -> np.ndarray:
    """AUC of positives over negatives along ``axis`` from ranks (Mann–Whitney U / n₁n₀), O(n log n)."""
    ranks = stats.rankdata(np.concatenate([positive, negative], axis=axis), axis=axis)
    n_pos, n_neg = positive.shape[axis], negative.shape[axis]
    rank_sum = np.take(ranks, np.arange(n_pos), axis=axis).sum(axis=axis)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc_score(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the rank (Mann–Whitney) formula, ties counted half.

    Example:
        >>> auc_score(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    positive, negative = scores[labels == 1], scores[labels == 0]
    if not len(positive) or not len(negative):
        raise InputError(None, "an AUC needs positive and negative cases")
    return float(_auc(positive, negative))


def auc_with_interval(scores: np.ndarray, labels: np.ndarray, seed: int = 0, bootstrap: int = 1000) -> dict:
    """AUC and its 95 % percentile-bootstrap interval (``scipy.stats.bootstrap``), resampling positives and
    negatives separately so every resample has both classes; also the class counts the AUC rests on."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    replicates = auc_replicates(scores, labels, seed=seed, bootstrap=bootstrap)
    interval = None if replicates is None else [float(v) for v in np.percentile(replicates, [2.5, 97.5])]
    return {
        "auc": auc_score(scores, labels),
        "auc_ci95": interval,
        "positives": int((labels == 1).sum()),
        "negatives": int((labels == 0).sum()),
    }


def auc_replicates(scores: np.ndarray, labels: np.ndarray, seed: int = 0, bootstrap: int = 1000) -> np.ndarray | None:
    """``bootstrap`` AUCs of resamples drawn from the positives and the negatives separately (``None`` under
    2 of a class or with ``bootstrap`` 0): what :func:`auc_with_interval` takes percentiles of."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    positive, negative = scores[labels == 1], scores[labels == 0]
    if bootstrap <= 0 or min(len(positive), len(negative)) < 2:
        return None
    found = stats.bootstrap(
        (positive, negative),
        _auc,
        vectorized=True,
        n_resamples=bootstrap,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return np.asarray(found.bootstrap_distribution, np.float64)


def group_split(groups: list[str], test_fraction: float, seed: int) -> np.ndarray:
    """Boolean test mask that keeps every group (patient) wholly on one side.

    Example:
        >>> test = group_split(["a", "a", "b", "c", "c", "d"], 0.5, seed=0)
        >>> bool(test[0] == test[1]) and bool(test[3] == test[4])
        True
    """
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    wanted = max(1, round(test_fraction * len(names)))
    chosen = {names[i] for i in order[:wanted]}
    return np.array([g in chosen for g in groups])


def _shifted(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    shift = max(1, x.shape[-1] // 16)
    dy, dx = torch.randint(-shift, shift + 1, (2,), generator=generator).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def fit_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    classes: int,
    steps: int = 300,
    batch_size: int = 32,
    width: int = 16,
    seed: int = 0,
    balanced: bool = True,
    augment: bool = False,
    device: torch.device | None = None,
) -> nn.Module:
    """Train :func:`small_cnn` on (N, S, S) images with integer ``labels`` < ``classes`` for ``steps`` Adam
    steps; ``balanced`` draws every class equally often (rare conditions are not ignored), ``augment``
    adds small random shifts. ``device`` (CPU when ``None``) holds the model and the images; the initial
    weights and the batches drawn are the same on every device. Returns the model in eval mode; score with
    :func:`predict`."""
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = small_cnn(width, classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.from_numpy(np.asarray(images, np.float32))[:, None].to(device)
    y = torch.from_numpy(np.asarray(labels, np.int64))
    weights = torch.ones(len(y), dtype=torch.float64)
    if balanced:
        counts = torch.bincount(y, minlength=classes).double()
        weights = 1.0 / counts[y]
    model.train()
    for _ in range(steps):
        pick = torch.multinomial(weights, min(batch_size, len(y)), replacement=True, generator=generator)
        batch = _shifted(x[pick.to(device)], generator) if augment else x[pick.to(device)]
        loss = nn.functional.cross_entropy(model(batch), y[pick].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Class probabilities (N, classes) of a model from :func:`fit_classifier`, on the model's device."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.asarray(images, np.float32))[:, None]
    chunks = [model(x[i : i + batch_size].to(device)).softmax(1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(chunks).numpy()
