"""Conditional correctness: do images generated with a requested view, laterality, density or lesion show
it? For each field an independent classifier is trained on the real images (patient-level split; its
held-out accuracy on real images is reported as the ceiling and compared with chance), then asked about
every synthetic image that requested a value of that field; agreement is the share it answers as
requested. A field whose classifier cannot beat chance on real images is reported as not checkable from
pixels rather than given a meaningless agreement — laterality, for one, after ``prepare`` turns every
breast to the same side. Lesion kind and position are checked by the lesion verifier when its checkpoint
is given (:func:`verifier_agreement`)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from mammosynth.evaluate.classifier import fit_classifier, group_split, predict
from mammosynth.evaluate.stack import work_stack

FIELDS = ("view", "laterality", "density", "lesion")


def field_agreement(
    real: np.ndarray,
    real_values: list[str | None],
    real_patients: list[str],
    synthetic: np.ndarray,
    requested: list[str | None],
    work_px: int = 64,
    steps: int = 300,
    min_per_class: int = 4,
    test_fraction: float = 0.3,
    seed: int = 0,
    held_out: np.ndarray | None = None,
) -> dict:
    """Train a classifier for one field on real images and report its agreement with the requests.

    ``real_values`` / ``requested`` hold the field's value per image (``None`` = unknown / not requested).
    ``held_out`` (boolean per real image) names the real images that measure the classifier's ceiling (the
    evaluation's held-out patients; the rest train it); without it a patient-level split is drawn.
    Returns a ``skipped`` reason when the real set has fewer than two values with ``min_per_class`` images
    or no synthetic image requests one of them.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> bright = [np.full((32, 32), v) + rng.normal(0, .05, (32, 32)) for v in [.2] * 20 + [.8] * 20]
        >>> found = field_agreement(np.stack(bright), ["low"] * 20 + ["high"] * 20, [str(i) for i in range(40)],
        ...                         np.stack(bright[:5]), ["low"] * 5, work_px=32, steps=60)
        >>> found["agreement"], found["checkable"]
        (1.0, True)
    """
    counts = Counter(v for v in real_values if v is not None)
    classes = sorted(v for v, n in counts.items() if n >= min_per_class)
    if len(classes) < 2:
        return {"skipped": f"the real set has fewer than two values with {min_per_class}+ images ({dict(counts)})"}
    wanted = [i for i, v in enumerate(requested) if v in classes]
    if not wanted:
        return {"classes": classes, "skipped": "no synthetic image requests one of these values"}
    keep = [i for i, v in enumerate(real_values) if v in classes]
    labels = np.array([classes.index(real_values[i]) for i in keep])
    patients = [real_patients[i] for i in keep]
    x = work_stack(real[keep], work_px)
    test = group_split(patients, test_fraction, seed) if held_out is None else np.asarray(held_out, bool)[keep]
    if test.all() or not test.any():
        return {"classes": classes, "skipped": "too few patients for a held-out split"}
    model = fit_classifier(x[~test], labels[~test], len(classes), steps=steps, seed=seed, augment=True)
    real_accuracy = float((predict(model, x[test]).argmax(1) == labels[test]).mean())
    chance = max(Counter(labels[test].tolist()).values()) / int(test.sum())
    margin = 2 * np.sqrt(chance * (1 - chance) / int(test.sum()))
    predicted = predict(model, work_stack(synthetic[wanted], work_px)).argmax(1)
    target = np.array([classes.index(requested[i]) for i in wanted])
    per_value = {classes[c]: float((predicted[target == c] == c).mean()) for c in np.unique(target)}
    return {
        "classes": classes,
        "real_train_images": int((~test).sum()),
        "real_test_images": int(test.sum()),
        "real_accuracy": real_accuracy,
        "chance": float(chance),
        "checkable": bool(real_accuracy > chance + margin),
        "synthetic_images": len(wanted),
        "agreement": float((predicted == target).mean()),
        "agreement_per_value": per_value,
    }


def conditional_agreement(
    real: np.ndarray,
    real_fields: dict[str, list],
    real_patients: list[str],
    synthetic: np.ndarray,
    synthetic_fields: dict[str, list],
    seed: int = 0,
    steps: int = 300,
    held_out: np.ndarray | None = None,
) -> dict:
    """:func:`field_agreement` for every field in :data:`FIELDS` present in both dictionaries. Both stacks are
    cut to the working size once (a full-size copy of 10,000 requested images per field doubled the suite's
    memory)."""
    real, synthetic = work_stack(real, 64, 1, "real"), work_stack(synthetic, 64, 1, "synthetic")
    return {
        name: field_agreement(
            real,
            real_fields[name],
            real_patients,
            synthetic,
            synthetic_fields[name],
            work_px=64,
            seed=seed,
            steps=steps,
            held_out=held_out,
        )
        for name in FIELDS
        if name in real_fields and name in synthetic_fields
    }


def verifier_agreement(checker, images: np.ndarray, requests: list[dict], regions: list[np.ndarray | None]) -> dict:
    """Lesion presence, kind and position of synthetic images judged by a
    :class:`~mammosynth.generate.verify.LesionChecker` against what each image requested."""
    verdicts = [
        v
        for start in range(0, len(images), 64)
        for v in checker.check(images[start : start + 64], requests[start : start + 64], regions[start : start + 64])
    ]
    judged = [v for v in verdicts if v["requested"] != "unknown" and v.get("checked", True)]  # a patch verifier
    # leaves requests for no lesion unjudged (LesionChecker.check)
    lesions = [v for v in judged if v["requested"] != "none"]
    located = [
        v for v, r in zip(verdicts, regions, strict=True) if v["requested"] not in ("unknown", "none") and r is not None
    ]

    def share(items: list, key: str) -> float | None:
        return float(np.mean([bool(v[key]) for v in items])) if items else None

    return {
        "verifier": checker.model_id,
        "judged_images": len(judged),
        "accepted": share(judged, "accepted"),
        "lesion_requests": len(lesions),
        "lesion_present": share(lesions, "present"),
        "kind_matches": share(lesions, "kind_matches"),
        "inside_requested_region": share(located, "inside"),
        "normal_requests": len(judged) - len(lesions),
        "normal_clean": share([v for v in judged if v["requested"] == "none"], "accepted"),
    }
