"""Reader-study analysis on scripted answers whose numbers are worked out by hand (issue 7, analysis part)."""

from __future__ import annotations

import pytest

from mammosynth.errors import InputError
from mammosynth.evaluate.reader_study import analyse_reads, fleiss_kappa

TRUTH = {"r1": False, "r2": False, "r3": False, "s1": True, "s2": True, "s3": True}


def scripted() -> list[dict]:
    answers = []
    for image, synthetic in TRUTH.items():
        truth, opposite = ("synthetic", "real") if synthetic else ("real", "synthetic")
        answers.append({"reader": "expert", "image": image, "answer": truth, "confidence": 5})
        answers.append({"reader": "trusting", "image": image, "answer": "real", "confidence": 3})
        answers.append({"reader": "contrary", "image": image, "answer": opposite, "confidence": 2})
    return answers


def test_per_reader_numbers_match_the_hand_computed_ones():
    found = analyse_reads(scripted(), TRUTH)
    expert, trusting, contrary = (found["readers"][r] for r in ("expert", "trusting", "contrary"))
    assert (expert["accuracy"], expert["sensitivity"], expert["specificity"], expert["auc"]) == (1.0, 1.0, 1.0, 1.0)
    assert expert["binomial_p"] == pytest.approx(2 * 0.5**6)
    assert (trusting["accuracy"], trusting["sensitivity"], trusting["specificity"]) == (0.5, 0.0, 1.0)
    assert trusting["auc"] == 0.5 and trusting["binomial_p"] == pytest.approx(1.0)
    assert (contrary["accuracy"], contrary["auc"]) == (0.0, 0.0)
    assert found["pooled"]["correct"] == 6 + 3 + 0 and found["pooled"]["answers"] == 18


def test_agreement_and_fooled_rates():
    found = analyse_reads(scripted(), TRUTH)
    # every image gets two answers one way and one the other: P = 1/3, Pe = (2/3)² + (1/3)² = 5/9
    assert found["fleiss_kappa"] == pytest.approx((1 / 3 - 5 / 9) / (1 - 5 / 9))
    rates = {i["image"]: i["fooled_rate"] for i in found["images"]}
    assert rates == pytest.approx({"r1": 1 / 3, "r2": 1 / 3, "r3": 1 / 3, "s1": 2 / 3, "s2": 2 / 3, "s3": 2 / 3})
    assert found["synthetic_most_taken_for_real"] == ["s1", "s2", "s3"]
    assert found["images_rated_by_all"] == 6
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == 1.0


def test_bad_answers_are_refused():
    with pytest.raises(InputError, match="no answers"):
        analyse_reads([], TRUTH)
    with pytest.raises(InputError, match="unknown image 'x'"):
        analyse_reads([{"reader": "a", "image": "x", "answer": "real", "confidence": 1}], TRUTH)
    with pytest.raises(InputError, match="'maybe' is not one of"):
        analyse_reads([{"reader": "a", "image": "r1", "answer": "maybe", "confidence": 1}], TRUTH)
    with pytest.raises(InputError, match="same number"):
        fleiss_kappa([[2, 1], [1, 1]])
