"""Realism by a classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017), the machine stand-in for the
CC publication's expert questionnaire: train a small CNN to tell real from synthetic on one half of the
images and report its held-out accuracy and AUC (0.5 = indistinguishable) with a bootstrap interval.

The CNN (:func:`~mammosynth.evaluate.features.small_cnn`) trains in seconds on a CPU from nothing; no
pretrained weights are involved."""

from __future__ import annotations

import numpy as np

from mammosynth.evaluate.classifier import auc_with_interval, fit_classifier, predict
from mammosynth.evaluate.stack import work_stack


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
    train, test = np.flatnonzero(half), np.flatnonzero(~half)
    model = fit_classifier(images[train], labels[train].astype(np.int64), 2, steps=steps, batch_size=batch_size,
                           width=width, seed=seed, balanced=False)
    scores = predict(model, images[test])[:, 1]
    test_labels = labels[test]
    roc = auc_with_interval(scores, test_labels, seed=seed, bootstrap=bootstrap)
    synthetic_test = test[test_labels == 1]
    ranked = synthetic_test[np.argsort(-scores[test_labels == 1])]
    return {
        "accuracy": float(((scores > 0.5) == (test_labels == 1)).mean()),
        **roc,
        "train_images": len(train), "test_images": len(test), "steps": steps, "seed": seed, "work_px": work_px,
        "most_synthetic": [int(source[i]) for i in ranked[:8]],
        "least_synthetic": [int(source[i]) for i in ranked[::-1][:8]],
    }
