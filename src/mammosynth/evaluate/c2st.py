"""Realism by a classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017), the machine stand-in for the
CC publication's expert questionnaire: train a small CNN to tell real from synthetic on one half of the
images and report its held-out accuracy and AUC (0.5 = indistinguishable) with a bootstrap interval.

The CNN (:func:`~mammosynth.evaluate.features.small_cnn`) trains in seconds on a CPU from nothing; no
pretrained weights are involved."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mammosynth.evaluate.features import small_cnn
from mammosynth.evaluate.stack import work_stack


def auc_score(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the rank (Mann–Whitney) formula, ties counted half.

    Example:
        >>> auc_score(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    positive, negative = scores[labels == 1], scores[labels == 0]
    greater = (positive[:, None] > negative[None]).sum() + 0.5 * (positive[:, None] == negative[None]).sum()
    return float(greater / (len(positive) * len(negative)))


def two_sample_test(real: np.ndarray, synthetic: np.ndarray, work_px: int = 64, steps: int = 300,
                    batch_size: int = 32, width: int = 16, seed: int = 0, bootstrap: int = 1000) -> dict:
    """Held-out accuracy and AUC of a real-vs-synthetic classifier, with a 95 % bootstrap interval on the AUC.

    Both sets are cut to the same size, split in half at random (``seed``), the CNN is trained on one half
    for ``steps`` Adam steps and scored on the other. Also returns the held-out synthetic images it finds
    most and least synthetic (indices into ``synthetic``).
    """
    real_images = work_stack(real, work_px, 4, "real")
    synthetic_images = work_stack(synthetic, work_px, 4, "synthetic")
    rng = np.random.default_rng(seed)
    n = min(len(real_images), len(synthetic_images))
    real_index, synthetic_index = rng.permutation(len(real_images))[:n], rng.permutation(len(synthetic_images))[:n]
    images = np.concatenate([real_images[real_index], synthetic_images[synthetic_index]])
    labels = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)
    source = np.concatenate([real_index, synthetic_index])
    order = rng.permutation(2 * n)
    half = np.zeros(2 * n, bool)
    for cls in (0, 1):  # stratified halves
        members = order[labels[order] == cls]
        half[members[: len(members) // 2]] = True
    torch.manual_seed(seed)
    model = small_cnn(width, 1)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.from_numpy(images)[:, None]
    y = torch.from_numpy(labels)
    train = np.flatnonzero(half)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        pick = torch.from_numpy(train)[torch.randint(0, len(train), (min(batch_size, len(train)),),
                                                     generator=generator)]
        loss = nn.functional.binary_cross_entropy_with_logits(model(x[pick]).squeeze(1), y[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test = np.flatnonzero(~half)
    with torch.no_grad():
        scores = torch.sigmoid(model(x[test]).squeeze(1)).numpy()
    test_labels = labels[test]
    auc = auc_score(scores, test_labels)
    boot = []
    for _ in range(bootstrap):
        sample = rng.integers(0, len(test), len(test))
        if 0 < test_labels[sample].sum() < len(sample):
            boot.append(auc_score(scores[sample], test_labels[sample]))
    synthetic_test = test[test_labels == 1]
    ranked = synthetic_test[np.argsort(-scores[test_labels == 1])]
    return {
        "accuracy": float(((scores > 0.5) == (test_labels == 1)).mean()),
        "auc": auc,
        "auc_ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "train_images": len(train), "test_images": len(test), "steps": steps, "seed": seed, "work_px": work_px,
        "most_synthetic": [int(source[i]) for i in ranked[:8]],
        "least_synthetic": [int(source[i]) for i in ranked[::-1][:8]],
    }
