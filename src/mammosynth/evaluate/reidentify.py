"""A re-identification-style privacy test: can a matcher link synthetic images to the generator's training
patients better than chance?

The matcher takes each synthetic image's nearest neighbour (pixel correlation, as in
:mod:`~mammosynth.evaluate.memorisation`) among the training images *and* held-out real images of the same
population that the generator never saw. A generator that learned the population and not its patients
lands on either side in proportion to their sizes; one that reproduces its training patients lands on the
training side more often. Reported: the link rate to training images, the chance rate, a one-sided
binomial p-value, and how concentrated the links are on single patients."""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import stats

from mammosynth.errors import InputError
from mammosynth.evaluate.memorisation import nearest_neighbours


def reidentification(
    synthetic: np.ndarray,
    train: np.ndarray,
    train_patients: list[str],
    held_out: np.ndarray,
    work_px: int = 64,
    alpha: float = 0.01,
) -> dict:
    """Link every synthetic image to its nearest real image and test the training side's share against chance.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> train, held = rng.random((20, 32, 32)), rng.random((20, 32, 32))
        >>> copies = train[:10] + rng.normal(0, 0.05, (10, 32, 32))
        >>> found = reidentification(copies, train, [f"p{i}" for i in range(20)], held, work_px=32)
        >>> found["link_rate"], found["better_than_chance"]
        (1.0, True)
    """
    if len(train_patients) != len(train):
        raise InputError(None, "re-identification: one patient key per training image")
    if not len(held_out) or not len(train):
        raise InputError(None, "re-identification needs training images and held-out real images")
    index, _ = nearest_neighbours(synthetic, np.concatenate([train, held_out]), work_px)
    to_train = index < len(train)
    chance = len(train) / (len(train) + len(held_out))
    links = int(to_train.sum())
    p_value = float(stats.binomtest(links, len(index), chance, alternative="greater").pvalue)
    patients = Counter(train_patients[i] for i in index[to_train])
    top = patients.most_common(1)[0][1] if patients else 0
    return {
        "synthetic_images": len(index),
        "train_images": len(train),
        "held_out_images": len(held_out),
        "links_to_train": links,
        "link_rate": float(links / len(index)),
        "chance": float(chance),
        "p_value": p_value,
        "better_than_chance": bool(p_value < alpha),
        "alpha": alpha,
        "train_patients_linked": len(patients),
        "train_patients": len(set(train_patients)),
        "most_links_to_one_patient": int(top),
    }
