"""Do synthetic images help a classifier? One fixed downstream task — lesion vs normal on whole images —
trained three ways with the same architecture, budget and seeds: on real training images only, on real +
synthetic, and on synthetic only (train-synthetic-test-real, TSTR); every arm is tested on the same
held-out real images — the evaluation's held-out patients, whom the generator never saw — so no patient is
on both sides. AUCs carry 95 % bootstrap
intervals over the test images.

Limits: a small CNN at 64² from nothing, so absolute AUCs are modest; the comparison between arms is the
point. With few real lesions the intervals are wide — read them before the point estimates."""

from __future__ import annotations

import time

import numpy as np

from mammosynth.errors import InputError
from mammosynth.evaluate.classifier import auc_with_interval, fit_classifier, group_split, predict
from mammosynth.evaluate.stack import work_stack

ARMS = ("real", "real+synthetic", "synthetic")


def utility(
    real: np.ndarray,
    real_labels: np.ndarray,
    real_patients: list[str],
    synthetic: np.ndarray,
    synthetic_labels: np.ndarray,
    work_px: int = 64,
    steps: int = 400,
    test_fraction: float = 0.3,
    seed: int = 0,
    repeats: int = 1,
    held_out: np.ndarray | None = None,
) -> dict:
    """AUC of lesion-vs-normal on held-out real images for each training arm (see the module docstring).

    ``*_labels`` are 1 for an image with a lesion, 0 for a normal one; ``real_patients`` the pseudonymous
    patient keys that group the real images for the split. ``repeats`` > 1 retrains each arm with seeds
    ``seed … seed + repeats − 1`` and averages the test scores. ``held_out`` (boolean per real image) names
    the test images (the generator's unseen patients; the others are the real training arm); without it a
    patient-level split of ``test_fraction`` is drawn.
    """
    real_labels, synthetic_labels = np.asarray(real_labels, np.int64), np.asarray(synthetic_labels, np.int64)
    if len(real_labels) != len(real) or len(real_patients) != len(real):
        raise InputError(None, "utility: one label and one patient key per real image")
    if len(set(real_labels.tolist())) < 2:
        raise InputError(None, "utility needs real images with and without lesions")
    if held_out is not None:
        test = np.asarray(held_out, bool)
        if len(test) != len(real) or len(set(real_labels[test].tolist())) < 2:
            raise InputError(None, "utility: the held-out real images need lesion and normal images")
        if not (~test).any():
            raise InputError(None, "utility: no real training images beside the held-out ones")
        if {p for p, t in zip(real_patients, test, strict=True) if t} & {
            p for p, t in zip(real_patients, test, strict=True) if not t
        }:
            raise InputError(None, "utility: a patient is both in the held-out and the training images")
    else:
        test = group_split(real_patients, test_fraction, seed)
        for attempt in range(1, 50):  # re-draw until both sides hold both classes (patient groups are lumpy)
            if len(set(real_labels[test].tolist())) == 2 and len(set(real_labels[~test].tolist())) == 2:
                break
            test = group_split(real_patients, test_fraction, seed + 1000 * attempt)
        else:
            raise InputError(None, "utility: no patient-level split puts lesion and normal images on both sides")
    real_x, synthetic_x = work_stack(real, work_px, 2, "real"), work_stack(synthetic, work_px, 1, "synthetic")
    train_sets = {
        "real": (real_x[~test], real_labels[~test]),
        "real+synthetic": (
            np.concatenate([real_x[~test], synthetic_x]),
            np.concatenate([real_labels[~test], synthetic_labels]),
        ),
        "synthetic": (synthetic_x, synthetic_labels),
    }
    arms = {}
    for arm, (x, y) in train_sets.items():
        counts = {"lesion": int(y.sum()), "normal": int(len(y) - y.sum())}
        if min(counts.values()) == 0:
            arms[arm] = {"train_images": len(y), **counts, "skipped": "the training set has only one class"}
            continue
        started = time.perf_counter()
        scores = np.mean(
            [
                predict(fit_classifier(x, y, 2, steps=steps, seed=seed + r, augment=True), real_x[test])[:, 1]
                for r in range(repeats)
            ],
            axis=0,
        )
        arms[arm] = {
            "train_images": len(y),
            **counts,
            **auc_with_interval(scores, real_labels[test], seed=seed),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return {
        "task": "lesion vs normal, whole image",
        "work_px": work_px,
        "steps": steps,
        "repeats": repeats,
        "seed": seed,
        "test_images": int(test.sum()),
        "test_lesions": int(real_labels[test].sum()),
        "test_patients": len({p for p, t in zip(real_patients, test, strict=True) if t}),
        "train_patients": len({p for p, t in zip(real_patients, test, strict=True) if not t}),
        "arms": arms,
    }
