"""Analysis of a blinded reader study (real or synthetic?): per-reader accuracy, sensitivity and specificity
(a synthetic image called synthetic is a true positive), the AUC of the confidence ratings, a binomial
test against guessing, inter-reader agreement (Fleiss' κ) and per-image "fooled" rates — the human
counterpart of the two-sample classifier test. Plain functions on answer lists, so the web app, a CSV
from a paper questionnaire and the tests all use the same arithmetic.

Fleiss' κ is written by hand (a dozen lines of the published formula) because no kept library has it."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from scipy import stats

from mammosynth.errors import InputError
from mammosynth.evaluate.classifier import auc_score

ANSWERS = ("real", "synthetic")


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' κ of an (images, categories) table of how many readers put each image in each category;
    every row must sum to the same number of readers (≥ 2).

    Example (Fleiss 1971, as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories):
        >>> table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        ...          [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
        >>> round(fleiss_kappa(np.array(table)), 3)
        0.21
    """
    counts = np.asarray(counts, np.float64)
    raters = counts.sum(1)
    if counts.ndim != 2 or len(counts) < 1 or raters.min() < 2 or not np.allclose(raters, raters[0]):
        raise InputError(None, "Fleiss' κ needs every image rated by the same number (≥ 2) of readers")
    n = raters[0]
    agreement = ((counts * (counts - 1)).sum(1) / (n * (n - 1))).mean()
    shares = counts.sum(0) / counts.sum()
    chance = (shares**2).sum()
    return float((agreement - chance) / (1 - chance)) if chance < 1 else 1.0


def _scores(answers: list[dict]) -> np.ndarray:
    """Ordinal "how synthetic" score: −confidence for a real call, +confidence for a synthetic one."""
    return np.array(
        [(1 if a["answer"] == "synthetic" else -1) * int(a.get("confidence") or 3) for a in answers], np.float64
    )


def _summary(answers: list[dict], truth: dict[str, bool]) -> dict:
    said = np.array([a["answer"] == "synthetic" for a in answers])
    actual = np.array([truth[a["image"]] for a in answers])
    correct = int((said == actual).sum())
    out = {
        "answers": len(answers),
        "correct": correct,
        "accuracy": correct / len(answers),
        "sensitivity": float(said[actual].mean()) if actual.any() else None,
        "specificity": float((~said[~actual]).mean()) if (~actual).any() else None,
        "binomial_p": float(stats.binomtest(correct, len(answers), 0.5).pvalue),
    }
    out["auc"] = auc_score(_scores(answers), actual.astype(int)) if 0 < actual.sum() < len(actual) else None
    return out


def analyse_reads(answers: list[dict], truth: dict[str, bool]) -> dict:
    """Everything the reader-study page shows, from ``answers`` (dicts with ``reader``, ``image``,
    ``answer`` in :data:`ANSWERS`, ``confidence`` 1–5) and ``truth`` (image → is synthetic).

    Example:
        >>> truth = {"a": True, "b": False}
        >>> found = analyse_reads([{"reader": "r1", "image": "a", "answer": "synthetic", "confidence": 5},
        ...                        {"reader": "r1", "image": "b", "answer": "real", "confidence": 4}], truth)
        >>> found["readers"]["r1"]["accuracy"], found["readers"]["r1"]["auc"]
        (1.0, 1.0)
    """
    if not answers:
        raise InputError(None, "the study has no answers yet")
    for answer in answers:
        if answer["answer"] not in ANSWERS:
            raise InputError(None, f"answer {answer['answer']!r} is not one of {', '.join(ANSWERS)}")
        if answer["image"] not in truth:
            raise InputError(None, f"answer for unknown image {answer['image']!r}")
    by_reader: dict[str, list[dict]] = defaultdict(list)
    for answer in answers:
        by_reader[answer["reader"]].append(answer)
    readers = {reader: _summary(items, truth) for reader, items in sorted(by_reader.items())}
    by_image: dict[str, list[dict]] = defaultdict(list)
    for answer in answers:
        by_image[answer["image"]].append(answer)
    images = []
    for image, items in sorted(by_image.items()):
        wrong = sum((a["answer"] == "synthetic") != truth[image] for a in items)
        images.append(
            {
                "image": image,
                "synthetic": truth[image],
                "reads": len(items),
                "fooled_rate": wrong / len(items),
                "called_real": sum(a["answer"] == "real" for a in items) / len(items),
            }
        )
    complete = [image for image, items in by_image.items() if len({a["reader"] for a in items}) == len(readers)]
    kappa = None
    if len(readers) >= 2 and complete:
        table = np.array([[sum(a["answer"] == c for a in by_image[image]) for c in ANSWERS] for image in complete])
        kappa = fleiss_kappa(table)
    taken_for_real = sorted((i for i in images if i["synthetic"]), key=lambda i: (-i["called_real"], i["image"]))
    return {
        "pooled": _summary(answers, truth),
        "readers": readers,
        "fleiss_kappa": kappa,
        "images_rated_by_all": len(complete),
        "images": images,
        "synthetic_most_taken_for_real": [i["image"] for i in taken_for_real[:10] if i["called_real"] > 0],
        "answers_per_reader": dict(Counter(a["reader"] for a in answers)),
    }
