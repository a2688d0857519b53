"""Realism by a classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017), the machine stand-in for the
CC publication's expert questionnaire: train a small CNN to tell real from synthetic on one half of the
images and report its held-out accuracy and AUC (0.5 = indistinguishable) with a bootstrap interval.

The CNN (:func:`~mammosynth.evaluate.features.small_cnn`) trains in seconds on a CPU from nothing; no
pretrained weights are involved."""

from __future__ import annotations

import numpy as np
import torch

from mammosynth.errors import InputError
from mammosynth.evaluate.classifier import auc_replicates, auc_score, fit_classifier, group_split, predict
from mammosynth.evaluate.stack import check_stack, work_stack


def two_sample_test(
    real: np.ndarray,
    synthetic: np.ndarray,
    real_patients: list[str] | None = None,
    work_px: int = 64,
    steps: int = 300,
    batch_size: int = 32,
    width: int = 16,
    seed: int = 0,
    bootstrap: int = 1000,
    repeats: int = 5,
    device: torch.device | None = None,
) -> dict:
    """Held-out accuracy and AUC of a real-vs-synthetic classifier, averaged over ``repeats`` independent
    splits and trainings, with a 95 % interval.

    Each repeat (seed ``seed + k``) cuts both sets to the same size at random and splits them in half: the
    real images **by patient** (``real_patients``, one key per image; every image its own patient when
    ``None``), so the classifier cannot score by recognising a woman whose other view it trained on; the
    synthetic images at random. The CNN is trained on one half for ``steps`` Adam steps and scored on the
    other. One split and one training are not enough: on 72 held-out mini-MIAS images the AUC of one set of
    synthetic images ranged 0.64–0.97 over six seeds, far outside one seed's bootstrap interval. So ``auc``
    is the mean over the repeats (each in ``auc_repeats``) and ``auc_ci95`` the 2.5–97.5 % percentiles of
    the bootstrap AUCs of every repeat pooled: it holds the spread between splits and trainings as well as
    the sampling of held-out images. ``device`` trains the CNN there (CPU when ``None``: same splits, same
    initial weights and batches). Also returns the held-out synthetic images the first repeat finds most
    and least synthetic (indices into ``synthetic``).
    """
    if repeats < 1:
        raise InputError(None, f"C2ST: repeats must be at least 1, got {repeats}")
    runs = [
        _single_test(real, synthetic, real_patients, work_px, steps, batch_size, width, seed + k, device)
        for k in range(repeats)
    ]
    pooled = [
        auc_replicates(r.pop("scores"), r.pop("labels"), seed=seed + k, bootstrap=bootstrap) for k, r in enumerate(runs)
    ]
    aucs = [r["auc"] for r in runs]
    interval = None
    if all(p is not None for p in pooled):
        interval = [float(v) for v in np.percentile(np.concatenate(pooled), [2.5, 97.5])]
    return {
        **runs[0],
        "accuracy": float(np.mean([r["accuracy"] for r in runs])),
        "auc": float(np.mean(aucs)),
        "auc_ci95": interval,
        "auc_repeats": [round(a, 4) for a in aucs],
        "repeats": repeats,
        "seed": seed,
    }


def _single_test(
    real: np.ndarray,
    synthetic: np.ndarray,
    real_patients: list[str] | None,
    work_px: int,
    steps: int,
    batch_size: int,
    width: int,
    seed: int,
    device: torch.device | None = None,
) -> dict:
    """One split and one training of :func:`two_sample_test`; its held-out scores and labels included."""
    patients = [str(i) for i in range(len(real))] if real_patients is None else list(real_patients)
    if len(patients) != len(real):
        raise InputError(None, "C2ST: one patient key per real image")
    real, synthetic = check_stack(real, 4, "real"), check_stack(synthetic, 4, "synthetic")
    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic))
    real_index, synthetic_index = rng.permutation(len(real))[:n], rng.permutation(len(synthetic))[:n]
    # only the n images used are cut to the working size (not all 10,000 of a large synthetic set)
    real_small, synthetic_small = work_stack(real[real_index], work_px), work_stack(synthetic[synthetic_index], work_px)
    kept_patients = [patients[i] for i in real_index]
    if len(set(kept_patients)) < 2:
        raise InputError(None, "C2ST needs real images of at least 2 patients (one for each half)")
    real_test = group_split(kept_patients, 0.5, seed)
    synthetic_test = np.zeros(n, bool)
    synthetic_test[rng.permutation(n)[: n // 2]] = True
    images = np.concatenate([real_small, synthetic_small])
    labels = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.int64)
    source = np.concatenate([real_index, synthetic_index])
    is_test = np.concatenate([real_test, synthetic_test])
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    model = fit_classifier(
        images[train],
        labels[train],
        2,
        steps=steps,
        batch_size=batch_size,
        width=width,
        seed=seed,
        balanced=True,
        device=device,
    )
    scores = predict(model, images[test])[:, 1]
    test_labels = labels[test]
    synthetic_held = test[test_labels == 1]
    ranked = synthetic_held[np.argsort(-scores[test_labels == 1])]
    return {
        "accuracy": float(((scores > 0.5) == (test_labels == 1)).mean()),
        "auc": auc_score(scores, test_labels),
        "positives": int(test_labels.sum()),
        "negatives": int((test_labels == 0).sum()),
        "scores": scores,
        "labels": test_labels,
        "split_by": "patient (real), image (synthetic)",
        "real_images": n,
        "synthetic_images": n,
        "real_patients": {
            "train": len({p for p, t in zip(kept_patients, real_test, strict=True) if not t}),
            "test": len({p for p, t in zip(kept_patients, real_test, strict=True) if t}),
        },
        "train_images": len(train),
        "test_images": len(test),
        "steps": steps,
        "seed": seed,
        "work_px": work_px,
        "most_synthetic": [int(source[i]) for i in ranked[:8]],
        "least_synthetic": [int(source[i]) for i in ranked[::-1][:8]],
    }
